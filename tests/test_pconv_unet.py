"""Tests for inpainting.models: the PConv U-Net and the model registry."""

import pytest
import torch
from torch import nn

from inpainting.models import MODELS, PConvUNet, build_model


def _layer_params(c_in: int, c_out: int, kernel: int, bias: bool, batch_norm: bool) -> int:
    weights = c_in * c_out * kernel * kernel
    return weights + (c_out if bias else 0) + (2 * c_out if batch_norm else 0)


# The paper's 512x512 network (Liu et al. 2018, supplementary table), written out by hand:
# (input channels, output channels, kernel, bias, BatchNorm).
PAPER_ENCODER = [
    (3, 64, 7, True, False),      # PConv1
    (64, 128, 5, False, True),    # PConv2
    (128, 256, 5, False, True),   # PConv3
    (256, 512, 3, False, True),   # PConv4
    (512, 512, 3, False, True),   # PConv5
    (512, 512, 3, False, True),   # PConv6
    (512, 512, 3, False, True),   # PConv7
    (512, 512, 3, False, True),   # PConv8
]
PAPER_DECODER = [
    (512 + 512, 512, 3, False, True),  # PConv9: up(PConv8) + PConv7
    (512 + 512, 512, 3, False, True),  # PConv10
    (512 + 512, 512, 3, False, True),  # PConv11
    (512 + 512, 512, 3, False, True),  # PConv12: up + PConv4
    (512 + 256, 256, 3, False, True),  # PConv13: up + PConv3
    (256 + 128, 128, 3, False, True),  # PConv14
    (128 + 64, 64, 3, False, True),    # PConv15
    (64 + 3, 3, 3, True, False),       # PConv16: up + input image
]


def _trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _holes(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    """(batch, 1, size, size) mask with two rectangular holes each, 1 = known."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.ones(batch, 1, size, size)
    for b in range(batch):
        for _ in range(2):
            y, x = torch.randint(0, size - size // 4, (2,), generator=gen).tolist()
            mask[b, :, y:y + size // 4, x:x + size // 5] = 0
    return mask


def test_parameter_count_matches_paper_table():
    expected_depth8 = sum(_layer_params(*row) for row in PAPER_ENCODER + PAPER_DECODER)
    # depth 7 drops one 512 -> 512 encoder layer and one 1024 -> 512 decoder layer
    expected_depth7 = (expected_depth8 - _layer_params(*PAPER_ENCODER[-1])
                       - _layer_params(*PAPER_DECODER[0]))
    assert expected_depth8 == 32_859_796 and expected_depth7 == 25_779_860
    assert _trainable(PConvUNet(depth=8, base_channels=64)) == expected_depth8
    assert _trainable(PConvUNet(depth=7, base_channels=64)) == expected_depth7


def test_layer_table_of_small_model():
    model = PConvUNet(depth=4, base_channels=8, in_channels=3)
    encoder = [(b.conv.in_channels, b.conv.out_channels, b.conv.kernel_size[0],
                b.conv.bias is not None, isinstance(b.norm, nn.BatchNorm2d)) for b in model.encoder]
    assert encoder == [(3, 8, 7, True, False), (8, 16, 5, False, True),
                       (16, 32, 5, False, True), (32, 64, 3, False, True)]
    decoder = [(b.conv.in_channels, b.conv.out_channels, b.conv.bias is not None,
                isinstance(b.norm, nn.BatchNorm2d)) for b in model.decoder]
    # decoder[0] is the last layer: base + in_channels inputs, image channels out, bias, no BN
    assert decoder == [(8 + 3, 3, True, False), (16 + 8, 8, False, True),
                       (32 + 16, 16, False, True), (64 + 32, 32, False, True)]
    assert all(b.conv.stride == (2, 2) for b in model.encoder)
    assert isinstance(model.decoder[0].act, nn.Identity)
    assert isinstance(model.decoder[1].act, nn.LeakyReLU)
    assert model.decoder[1].act.negative_slope == 0.2


def test_output_shape_and_final_mask_all_ones_for_moderate_holes():
    model = PConvUNet(depth=5, base_channels=8)
    image, mask = torch.rand(2, 3, 64, 64), _holes(2, 64)
    assert (mask == 0).any()
    output, final_mask = model(image, mask)
    assert output.shape == (2, 3, 64, 64) and output.dtype == torch.float32
    assert final_mask.shape == (2, 1, 64, 64)
    assert torch.equal(final_mask, torch.ones_like(final_mask))
    assert torch.isfinite(output).all()


def test_all_hole_input_gives_finite_output_and_empty_final_mask():
    model = PConvUNet(depth=3, base_channels=8).eval()
    output, final_mask = model(torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))
    assert torch.isfinite(output).all()
    assert torch.equal(final_mask, torch.zeros_like(final_mask))


@pytest.mark.parametrize("training", [True, False])
def test_output_does_not_depend_on_hole_values(training):
    model = PConvUNet(depth=4, base_channels=8).train(training)
    image, mask = torch.rand(2, 3, 64, 64), _holes(2, 64)
    other = torch.where(mask.bool(), image, torch.rand_like(image) * 100 - 50)
    assert not torch.equal(image, other)
    out_a, _ = model(image, mask)
    out_b, _ = model(other, mask)
    assert torch.equal(out_a, out_b)


def test_no_gradient_reaches_hole_pixels():
    model = PConvUNet(depth=3, base_channels=8)
    image = torch.rand(2, 3, 32, 32, requires_grad=True)
    mask = _holes(2, 32)
    output, _ = model(image, mask)
    output.square().sum().backward()
    holes = (mask == 0).expand_as(image)
    assert torch.count_nonzero(image.grad[holes]) == 0
    assert torch.count_nonzero(image.grad[~holes]) > 0


def _encoder_bn_state(model: PConvUNet) -> dict:
    return {k: v.clone() for k, v in model.encoder.state_dict().items() if "norm" in k}


def test_freeze_encoder_bn_holds_after_train_and_a_training_step():
    model = PConvUNet(depth=3, base_channels=8)
    model.set_freeze_encoder_bn(True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    norms = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)
    assert all(not p.requires_grad for m in norms for p in m.parameters())
    assert model.decoder[1].norm.training
    before = _encoder_bn_state(model)
    decoder_mean = model.decoder[1].norm.running_mean.clone()
    conv_weight = model.encoder[1].conv.weight.detach().clone()

    output, _ = model(torch.rand(2, 3, 32, 32) * 5, _holes(2, 32))
    output.mean().backward()
    optimizer.step()

    after = _encoder_bn_state(model)
    assert before.keys() == after.keys() and len(before) == 5 * len(norms)  # affine, stats, counter
    for key in before:
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(decoder_mean, model.decoder[1].norm.running_mean)
    assert not torch.equal(conv_weight, model.encoder[1].conv.weight)


def test_unfreezing_restores_training_mode_and_gradients():
    model = PConvUNet(depth=3, base_channels=8, freeze_encoder_bn=True)
    assert model.freeze_encoder_bn
    model.set_freeze_encoder_bn(False).train()
    norms = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(m.training for m in norms)
    assert all(p.requires_grad for m in norms for p in m.parameters())
    model.eval()
    assert not any(m.training for m in model.modules())


@pytest.mark.parametrize("freeze_before_conversion", [True, False])
def test_freeze_encoder_bn_holds_after_convert_sync_batchnorm(freeze_before_conversion):
    model = PConvUNet(depth=3, base_channels=8, freeze_encoder_bn=freeze_before_conversion)
    model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if not freeze_before_conversion:
        model.set_freeze_encoder_bn(True)
    model.train()
    encoder_norms = [m for m in model.encoder.modules() if isinstance(m, nn.SyncBatchNorm)]
    assert len(encoder_norms) == 2  # every encoder layer but the first
    assert not any(m.training for m in encoder_norms)
    assert all(not p.requires_grad for m in encoder_norms for p in m.parameters())
    decoder_norms = [m for m in model.decoder.modules() if isinstance(m, nn.SyncBatchNorm)]
    assert decoder_norms and all(m.training for m in decoder_norms)
    assert all(p.requires_grad for m in decoder_norms for p in m.parameters())
    model.set_freeze_encoder_bn(False).train()
    assert all(m.training for m in encoder_norms)
    assert all(p.requires_grad for m in encoder_norms for p in m.parameters())
    # SyncBatchNorm runs on the CPU in eval mode only (training needs CUDA)
    output, _ = model.eval()(torch.rand(2, 3, 32, 32), _holes(2, 32))
    assert torch.isfinite(output).all()


def test_size_not_divisible_raises_with_sizes_and_fix():
    model = PConvUNet(depth=3, base_channels=8)
    with pytest.raises(ValueError, match=r"60x40 is not divisible by 2\*\*depth = 8.*64x40"):
        model(torch.rand(1, 3, 60, 40), torch.ones(1, 1, 60, 40))


@pytest.mark.parametrize("mask_shape", [(1, 3, 32, 32), (2, 1, 32, 16), (3, 1, 32, 32), (32, 32)])
def test_wrong_mask_shape_raises(mask_shape):
    model = PConvUNet(depth=3, base_channels=8)
    with pytest.raises(ValueError, match="mask must have shape"):
        model(torch.rand(2, 3, 32, 32), torch.ones(mask_shape))


def test_wrong_image_channels_raise():
    with pytest.raises(ValueError, match=r"image must be \(B, 3, H, W\)"):
        PConvUNet(depth=3, base_channels=8)(torch.rand(1, 1, 32, 32), torch.ones(1, 1, 32, 32))


def test_grayscale_bool_mask_and_bilinear_upsampling():
    model = PConvUNet(depth=3, base_channels=8, in_channels=1, upsampling="bilinear")
    output, final_mask = model(torch.rand(2, 1, 32, 32), _holes(2, 32).bool())
    assert output.shape == (2, 1, 32, 32) and final_mask.shape == (2, 1, 32, 32)


def test_batch_one_mask_broadcasts_over_the_batch():
    model = PConvUNet(depth=3, base_channels=8).eval()
    image, mask = torch.rand(2, 3, 32, 32), _holes(1, 32)
    output, final_mask = model(image, mask)
    assert final_mask.shape == (2, 1, 32, 32)
    assert torch.equal(output, model(image, mask.expand(2, -1, -1, -1))[0])


def test_bad_constructor_arguments_raise():
    with pytest.raises(ValueError, match="valid: nearest, bilinear"):
        PConvUNet(depth=3, upsampling="cubic")
    with pytest.raises(ValueError, match="depth"):
        PConvUNet(depth=0)


def test_kaiming_initialisation_and_zero_biases():
    model = PConvUNet(depth=3, base_channels=16)
    weight = model.decoder[2].conv.weight  # fan_in = 64 * 9
    expected_std = (2.0 / weight[0].numel()) ** 0.5
    assert abs(weight.std().item() / expected_std - 1) < 0.05
    assert torch.count_nonzero(model.encoder[0].conv.bias) == 0


def test_bf16_autocast_forward_is_finite():
    model = PConvUNet(depth=3, base_channels=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output, final_mask = model(torch.rand(2, 3, 32, 32), _holes(2, 32))
    assert torch.isfinite(output.float()).all() and final_mask.dtype == torch.float32


def test_bf16_autocast_gradients_are_finite_with_fully_masked_windows():
    model = PConvUNet(depth=3, base_channels=8)
    image = torch.rand(2, 3, 32, 32, requires_grad=True)
    mask = torch.ones(2, 1, 32, 32)
    mask[..., 4:28, 4:28] = 0  # most windows of the first layers see only holes
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output, _ = model(image, mask)
    output.float().square().mean().backward()
    assert torch.isfinite(image.grad).all()
    assert torch.all(image.grad[..., 4:28, 4:28] == 0)
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_build_model_registry():
    assert MODELS["pconv_unet"] is PConvUNet
    model = build_model("pconv_unet", depth=3, base_channels=8)
    assert isinstance(model, PConvUNet) and model.depth == 3
    with pytest.raises(ValueError, match=r"unknown model.name 'unet' \(valid: pconv_unet\)"):
        build_model("unet")
    with pytest.raises(ValueError, match="unknown argument.*dept.*valid: depth"):
        build_model("pconv_unet", dept=3)
