"""Model options beyond the paper: masked BatchNorm and the diffusion prefill (models/)."""

import pytest
import torch
from torch import nn

from inpainting.engine.config import ConfigError
from inpainting.models import PConvUNet, build_model
from inpainting.models.masked_norm import MaskedBatchNorm2d
from inpainting.models.prefill import diffusion_fill
from inpainting.tasks import load_config


def _pair(channels=4):
    plain, masked = nn.BatchNorm2d(channels), MaskedBatchNorm2d(channels)
    masked.load_state_dict(plain.state_dict())
    return plain, masked


def test_masked_batch_norm_with_all_known_is_batch_norm():
    plain, masked = _pair()
    x = torch.randn(3, 4, 5, 6) * 2 + 1
    for _ in range(2):
        assert torch.allclose(masked(x, torch.ones(3, 1, 5, 6)), plain(x), atol=1e-5)
    assert torch.allclose(masked.running_mean, plain.running_mean, atol=1e-6)
    assert torch.allclose(masked.running_var, plain.running_var, atol=1e-5)
    assert masked.num_batches_tracked == plain.num_batches_tracked == 2
    plain.eval(), masked.eval()
    assert torch.allclose(masked(x, torch.ones(3, 1, 5, 6)), plain(x), atol=1e-6)


def test_masked_batch_norm_statistics_ignore_the_holes():
    """Zeros in holes (what a partial conv returns there) change nothing at known positions,
    whatever the hole ratio: the train / eval mismatch of plain BatchNorm is gone."""
    known = torch.randn(2, 4, 6, 6) + 3
    outputs = []
    for hole_rows in (1, 3):
        mask = torch.zeros(2, 1, 12, 6)
        mask[:, :, hole_rows:6 + hole_rows] = 1
        x = torch.zeros(2, 4, 12, 6)
        x[:, :, hole_rows:6 + hole_rows] = known
        _, layer = _pair()
        out = layer(x, mask)[:, :, hole_rows:6 + hole_rows]
        outputs.append((out, layer.running_mean.clone()))
    plain = nn.BatchNorm2d(4)
    reference = plain(known)
    for out, running_mean in outputs:
        assert torch.allclose(out, reference, atol=1e-5)
        assert torch.allclose(running_mean, plain.running_mean, atol=1e-6)


def test_masked_batch_norm_keeps_fp32_statistics_for_fp16_input():
    """fp16 sums overflow past 65504: 6 x 128 x 128 positions of values near 1 already do."""
    x = torch.rand(6, 2, 128, 128) + 0.5
    mask = torch.ones(6, 1, 128, 128)
    mask[:, :, 40:90, 30:100] = 0
    reference, half = MaskedBatchNorm2d(2), MaskedBatchNorm2d(2)
    expected = reference(x, mask)
    out = half(x.half(), mask.half())
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), expected, atol=2e-2, rtol=1e-2)
    torch.testing.assert_close(half.running_var, reference.running_var, atol=1e-3, rtol=1e-3)


def test_masked_batch_norm_gradients_are_finite_on_an_all_hole_batch():
    _, layer = _pair()
    x = torch.zeros(2, 4, 3, 3, requires_grad=True)
    out = layer(x, torch.zeros(2, 1, 3, 3))
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


def test_diffusion_fill_keeps_known_pixels_and_fills_flat_and_linear_images():
    mask = torch.ones(1, 1, 32, 32)
    mask[..., 8:24, 6:26] = 0
    flat = torch.full((1, 3, 32, 32), 0.8)
    assert torch.allclose(diffusion_fill(flat * mask, mask), flat, atol=1e-6)
    # a linear ramp is harmonic, so Laplace's equation returns it (up to the few iterations)
    ramp = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(2, 3, 32, 32)
    filled = diffusion_fill(ramp * mask, mask)
    assert torch.equal(filled * mask, ramp * mask)
    assert (filled - ramp).abs().max() < 0.03
    assert torch.allclose(diffusion_fill(ramp, torch.zeros(2, 1, 32, 32)),
                          torch.full((2, 3, 32, 32), 0.5))
    odd = torch.rand(1, 3, 20, 13)
    odd_mask = (torch.rand(1, 1, 20, 13) > 0.5).float()
    assert diffusion_fill(odd, odd_mask).shape == odd.shape


def test_prefill_network_starts_as_the_fill_and_learns_a_residual():
    model = PConvUNet(depth=3, base_channels=8, prefill="diffusion", norm="masked_batch")
    image = torch.rand(2, 3, 32, 32)
    mask = (torch.rand(2, 1, 32, 32) > 0.4).float()
    output, final_mask = model(image * mask, mask)
    assert torch.allclose(output, diffusion_fill(image * mask, mask), atol=1e-6)
    assert final_mask.shape == (2, 1, 32, 32)
    output.sum().backward()
    assert model.decoder[0].conv.weight.grad.abs().sum() > 0


def test_paper_model_is_unchanged_by_default():
    model = build_model("pconv_unet", depth=3, base_channels=8)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and not any(isinstance(m, MaskedBatchNorm2d) for m in norms)
    assert model.encoder[0].conv.in_channels == 3 and model.prefill == "none"
    # a masked model loads the paper model's weights (same state dict)
    masked = build_model("pconv_unet", depth=3, base_channels=8, norm="masked_batch")
    masked.load_state_dict(model.state_dict())


@pytest.mark.parametrize("override, message", [
    ("model.norm=group", "model.norm"),
    ("model.prefill=telea", "model.prefill"),
])
def test_model_option_config_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])
    with pytest.raises(ValueError, match=message.split(".")[1]):
        PConvUNet(depth=2, base_channels=4, **{message.split(".")[1]: "bogus"})


def test_sync_bn_with_masked_batch_norm_is_a_config_error():
    with pytest.raises(ConfigError, match="sync_bn"):
        load_config(None, ["model.norm=masked_batch", "train.sync_bn=true"])


def test_a_symmetric_model_computes_in_minus_one_to_one_and_answers_in_zero_to_one():
    """value_range: symmetric (mmagic's models) is the unit model on 2x - 1, mapped back."""
    torch.manual_seed(0)
    unit = PConvUNet(depth=3, base_channels=4).eval()
    symmetric = PConvUNet(depth=3, base_channels=4, value_range="symmetric").eval()
    symmetric.load_state_dict(unit.state_dict())
    image, mask = torch.rand(2, 3, 32, 32), (torch.rand(2, 1, 32, 32) > 0.3).float()
    with torch.no_grad():
        expected = (unit(image * 2 - 1, mask)[0] + 1) / 2
        output = symmetric(image, mask)[0]
        noisy = symmetric(torch.where(mask > 0, image, torch.rand_like(image) * 9), mask)[0]
    assert torch.allclose(output, expected, atol=1e-6)
    assert torch.equal(output, noisy)  # hole values never matter
    with pytest.raises(ValueError, match="value_range"):
        PConvUNet(depth=3, value_range="zero-one")
