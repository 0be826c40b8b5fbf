"""inpainting.models.losses: each term by hand, the VGG-16 extractor, weights, overfitting."""

import dataclasses
import logging
import urllib.error

import pytest
import torch
import torchvision
from torch import nn

from inpainting.engine.errors import EnvironmentProblem, UserInputError
from inpainting.models import PConvUNet
from inpainting.models.losses import (
    DEFAULT_WEIGHTS,
    InpaintingLoss,
    VGG16Features,
    gram_matrix,
    hole_loss,
    imagenet_cache_file,
    perceptual_loss,
    style_loss,
    total_variation_loss,
    valid_loss,
)
from inpainting.tasks.inpainting.model import LossWeights

# A 1 x 1 x 2 x 2 example worked out by hand; the hole is the top-right pixel.
TARGET = torch.tensor([[[[0.2, 0.4], [0.6, 0.8]]]])
OUTPUT = torch.tensor([[[[0.0, 1.0], [0.6, 0.5]]]])
MASK = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])
# composite = [[0.2, 1.0], [0.6, 0.8]]
HAND = {
    "valid": (0.2 + 0.0 + 0.3) / 4,
    "hole": 0.6 / 4,
    # identity features: mean|out - gt| + mean|comp - gt|
    "perceptual": (0.2 + 0.6 + 0.0 + 0.3) / 4 + 0.6 / 4,
    # 1-channel Gram = sum(x^2) / (1 * 2 * 2): gt 1.2 / 4, out 1.61 / 4, comp 2.04 / 4
    "style_out": (1.61 - 1.2) / 4,
    "style_comp": (2.04 - 1.2) / 4,
    # the dilated hole covers all 4 pixels: |1.0-0.2| + |0.8-0.6| + |0.6-0.2| + |0.8-1.0|
    "tv": (0.8 + 0.2 + 0.4 + 0.2) / 4,
}


class _IdentityFeatures(nn.Module):
    """Stands in for VGG: a single 'layer' that is the image itself."""

    def forward(self, image):
        return [image]


@pytest.fixture(scope="module")
def random_vgg_loss():
    return InpaintingLoss(vgg_weights="none")


def _hand_loss(**kwargs) -> InpaintingLoss:
    loss = InpaintingLoss(vgg_weights="none", **kwargs)
    loss.vgg = _IdentityFeatures()
    return loss


def test_pixel_terms_by_hand():
    assert valid_loss(OUTPUT, TARGET, MASK).item() == pytest.approx(HAND["valid"])
    assert hole_loss(OUTPUT, TARGET, MASK).item() == pytest.approx(HAND["hole"])


def test_pixel_terms_normalise_by_all_image_elements():
    output, target = torch.ones(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)
    mask = torch.zeros(2, 1, 4, 4)
    mask[..., :1, :] = 1  # a quarter of the pixels known
    assert valid_loss(output, target, mask).item() == pytest.approx(0.25)
    assert hole_loss(output, target, mask).item() == pytest.approx(0.75)


def test_every_term_and_total_by_hand():
    terms = _hand_loss()(OUTPUT, TARGET, MASK)
    for key, value in HAND.items():
        assert terms[key].item() == pytest.approx(value, abs=1e-6), key
    expected_total = sum(DEFAULT_WEIGHTS[k] * HAND[k] for k in HAND)
    assert terms["total"].item() == pytest.approx(expected_total, rel=1e-6)
    assert DEFAULT_WEIGHTS == {"valid": 1.0, "hole": 6.0, "perceptual": 0.05, "style_out": 120.0,
                               "style_comp": 120.0, "tv": 0.1}


def test_config_defaults_are_the_loss_defaults():
    """One table of Eq. 7 weights: the config's ``loss.weights`` defaults read it."""
    assert list(dataclasses.asdict(LossWeights()).items()) == list(DEFAULT_WEIGHTS.items())
    assert InpaintingLoss(vgg_weights="none").weights == dataclasses.asdict(LossWeights())


def test_custom_weights_override_defaults():
    terms = _hand_loss(weights={"hole": 1.0, "style_out": 0.0, "style_comp": 0.0})(
        OUTPUT, TARGET, MASK)
    expected = HAND["valid"] + HAND["hole"] + 0.05 * HAND["perceptual"] + 0.1 * HAND["tv"]
    assert terms["total"].item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("weights, message", [({"holes": 1.0}, "unknown loss weight 'holes'"),
                                              ({"tv": -1.0}, "must be a number >= 0")])
def test_bad_weights_raise(weights, message):
    with pytest.raises(ValueError, match=message):
        InpaintingLoss(weights=weights, vgg_weights="none")


def test_gram_matrix_by_hand_and_in_float32():
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (1, 2, 1, 2)
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4
    assert torch.allclose(gram_matrix(features), expected)
    # float16 sums of squares overflow (300^2 * 64 > 65504); the Gram must not
    big = torch.full((1, 2, 8, 8), 300.0, dtype=torch.float16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gram = gram_matrix(big)
    assert gram.dtype == torch.float32 and torch.allclose(gram, torch.full((1, 2, 2), 45000.0))


def test_style_and_perceptual_sum_over_layers():
    gt = [torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 1, 1)]
    feats = [torch.full((1, 1, 2, 2), 2.0), torch.tensor([[[[1.0]], [[3.0]]]])]
    # layer 1: Gram 4*4/4 = 4; layer 2: Gram [[1, 3], [3, 9]] / 2, mean of |.| = 16 / 2 / 4 = 2
    assert style_loss(feats, gt).item() == pytest.approx(4.0 + 2.0)
    # layer 1: mean 2 (twice), layer 2: mean 2 (twice)
    assert perceptual_loss(feats, feats, gt).item() == pytest.approx(2 * 2.0 + 2 * 2.0)


def test_tv_by_hand_counts_only_pairs_inside_the_dilated_hole():
    comp = torch.arange(25.0).view(1, 1, 5, 5)
    mask = torch.ones(1, 1, 5, 5)
    mask[..., 2, 2] = 0  # P = rows 1..3 x cols 1..3: 6 horizontal (diff 1), 6 vertical (diff 5)
    assert total_variation_loss(comp, mask).item() == pytest.approx((6 * 1 + 6 * 5) / 25)


def _ramps(horizontal, vertical, size=4):
    """(len(horizontal), size, size): channel c is horizontal[c] * col + vertical[c] * row, so
    every horizontal step differs by |horizontal[c]| and every vertical step by |vertical[c]|."""
    line = torch.arange(size, dtype=torch.float32)
    rows, cols = torch.meshgrid(line, line, indexing="ij")
    return torch.stack([h * cols + v * rows for h, v in zip(horizontal, vertical)])


def test_tv_divides_each_image_by_c_h_w_and_averages_over_the_batch():
    # Convention pinned here (Eq. 6): per image, the sum over all channels of |difference| over
    # horizontal and vertical neighbour pairs with BOTH pixels in that image's P (hole dilated
    # by a 3x3 pixel), divided by N = C*H*W; the batch loss is the mean over images.
    comp = torch.stack([_ramps((1, 2, 3), (4, 5, 6)), _ramps((1, 0, 2), (3, 1, 0))])  # (2,3,4,4)
    mask = torch.ones(2, 1, 4, 4)
    mask[0, 0, 1, 1] = 0  # P = rows 0-2 x cols 0-2: 6 horizontal and 6 vertical pairs
    mask[1, 0, 3, 3] = 0  # P = rows 2-3 x cols 2-3: 2 horizontal and 2 vertical pairs
    image0 = 6 * (1 + 2 + 3) + 6 * (4 + 5 + 6)  # 126
    image1 = 2 * (1 + 0 + 2) + 2 * (3 + 1 + 0)  # 14
    n = 3 * 4 * 4
    expected = (image0 / n + image1 / n) / 2  # 35 / 24
    assert total_variation_loss(comp, mask).item() == pytest.approx(expected)
    # the same through the full loss, where I_comp = I_gt when I_out = I_gt
    assert _hand_loss()(comp, comp, mask)["tv"].item() == pytest.approx(expected)


def test_style_and_perceptual_average_over_batch_and_channels():
    # Layer of (B, C, H, W) = (2, 2, 1, 3); K_p = 1 / (C*H*W) = 1 / 6; I_gt features are 0.
    feats = torch.tensor([[[[1.0, 1.0, 1.0]], [[0.0, 1.0, 2.0]]],
                          [[[2.0, 0.0, 0.0]], [[0.0, 0.0, 1.0]]]])
    gt = torch.zeros_like(feats)
    # Gram / 6: image 0 [[3, 3], [3, 5]] / 6, image 1 [[4, 0], [0, 1]] / 6; the style term is the
    # mean of |G(x) - G(gt)| over the B x C x C = 8 entries.
    assert style_loss([feats], [gt]).item() == pytest.approx((14 + 5) / 6 / 8)
    # Perceptual: mean |.| over all B*C*H*W = 12 elements, once for I_out and once for I_comp.
    comp = torch.zeros_like(feats)
    comp[1] = 3.0
    assert perceptual_loss([feats], [comp], [gt]).item() == pytest.approx(9 / 12 + 18 / 12)


def test_tv_ignores_pixels_far_from_holes():
    comp = torch.rand(2, 3, 16, 16)
    mask = torch.ones(2, 1, 16, 16)
    mask[..., 4, 4] = 0
    base = total_variation_loss(comp, mask)
    far = comp.clone()
    far[..., 6:, :] = torch.rand_like(far[..., 6:, :])  # two or more pixels from the hole
    far[..., :, 6:] = torch.rand_like(far[..., :, 6:])
    assert total_variation_loss(far, mask).item() == pytest.approx(base.item())
    near = comp.clone()
    near[..., 5, 5] += 1.0  # inside the one-pixel dilation
    assert total_variation_loss(near, mask).item() != pytest.approx(base.item())


def test_vgg_runs_once_with_autograd_on_out_and_comp_and_once_without(random_vgg_loss):
    calls = []
    hook = random_vgg_loss.vgg.features[0].register_forward_hook(
        lambda module, args, out: calls.append((args[0].shape[0], torch.is_grad_enabled())))
    try:
        output = torch.rand(2, 3, 32, 32, requires_grad=True)
        random_vgg_loss(output, torch.rand(2, 3, 32, 32), torch.ones(2, 1, 32, 32))
    finally:
        hook.remove()
    assert calls == [(4, True), (2, False)]


def test_vgg_is_frozen_in_eval_and_passes_gradients_to_the_image(random_vgg_loss):
    random_vgg_loss.train()
    assert not random_vgg_loss.vgg.training and not random_vgg_loss.vgg.features.training
    assert all(not p.requires_grad for p in random_vgg_loss.parameters())
    output = torch.rand(2, 3, 32, 32, requires_grad=True)
    mask = torch.ones(2, 1, 32, 32)
    mask[..., 8:20, 8:20] = 0
    terms = random_vgg_loss(output, torch.rand(2, 3, 32, 32), mask)
    terms["perceptual"].backward()
    assert output.grad is not None and torch.count_nonzero(output.grad) > 0
    assert all(p.grad is None for p in random_vgg_loss.parameters())


def test_vgg_normalises_inside_and_taps_pool1_to_pool3(random_vgg_loss):
    vgg = random_vgg_loss.vgg
    seen = []
    hook = vgg.features[0].register_forward_hook(lambda m, args, out: seen.append(args[0]))
    image = torch.rand(1, 3, 32, 32)
    try:
        taps = vgg(image)
    finally:
        hook.remove()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(seen[0], (image - mean) / std)
    assert [t.shape for t in taps] == [(1, 64, 16, 16), (1, 128, 8, 8), (1, 256, 4, 4)]


def test_channels_last_vgg_and_gram_match_contiguous():
    fast = VGG16Features("none", channels_last=True)
    slow = VGG16Features("none", channels_last=False)
    slow.load_state_dict(fast.state_dict())
    image = torch.rand(2, 3, 32, 32)
    for a, b in zip(fast(image), slow(image)):
        assert a.is_contiguous(memory_format=torch.channels_last) and b.is_contiguous()
        assert torch.allclose(a, b, atol=1e-5)
        assert torch.allclose(gram_matrix(a), gram_matrix(b), rtol=1e-4, atol=1e-9)


def test_grayscale_equals_replicated_rgb(random_vgg_loss):
    gray_out, gray_gt = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    mask = torch.ones(2, 1, 32, 32)
    mask[..., 4:12, 10:30] = 0
    gray = random_vgg_loss(gray_out, gray_gt, mask)
    rgb = random_vgg_loss(gray_out.expand(-1, 3, -1, -1), gray_gt.expand(-1, 3, -1, -1), mask)
    for key in gray:
        assert gray[key].item() == pytest.approx(rgb[key].item(), rel=1e-5), key


def test_bad_shapes_raise(random_vgg_loss):
    with pytest.raises(ValueError, match="mask must have shape"):
        random_vgg_loss(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), torch.ones(2, 3, 8, 8))
    with pytest.raises(ValueError, match="equal shape"):
        random_vgg_loss(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 4), torch.ones(2, 1, 8, 8))


def test_batch_one_mask_broadcasts_over_the_batch(random_vgg_loss):
    output, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    mask = torch.ones(1, 1, 32, 32)
    mask[..., 8:20, 4:24] = 0
    broadcast = random_vgg_loss(output, target, mask)
    expanded = random_vgg_loss(output, target, mask.expand(2, -1, -1, -1))
    for key in expanded:
        assert broadcast[key].item() == pytest.approx(expanded[key].item(), rel=1e-6), key
    with pytest.raises(ValueError, match="mask must have shape"):
        random_vgg_loss(output, target, torch.ones(3, 1, 32, 32))


def test_bf16_autocast_gives_finite_float32_terms(random_vgg_loss):
    output = torch.rand(2, 3, 32, 32, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = random_vgg_loss(output, torch.rand(2, 3, 32, 32), torch.ones(2, 1, 32, 32))
    assert all(t.dtype == torch.float32 and torch.isfinite(t) for t in terms.values())
    terms["total"].backward()
    assert torch.isfinite(output.grad).all()


def test_none_weights_log_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="inpainting.models.losses.vgg"):
        VGG16Features("none")
    assert any("RANDOMLY" in r.getMessage() for r in caplog.records)


def test_offline_imagenet_fails_with_file_to_place_and_alternatives(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    with pytest.raises(EnvironmentProblem) as info:  # the machine's problem: exit code 3
        InpaintingLoss(vgg_weights="imagenet")
    message = str(info.value)
    assert str(imagenet_cache_file()) in message
    assert imagenet_cache_file().name == "vgg16-397923af.pth"
    assert "name resolution" in message and "'none'" in message and "local" in message


def _random_features_state(prefix: str) -> dict:
    return {prefix + k: v for k, v in VGG16Features("none").features.state_dict().items()}


@pytest.mark.parametrize("prefix", ["features.", ""])
def test_local_state_dict_loads(tmp_path, prefix):
    state = _random_features_state(prefix)
    # a full vgg16 state dict also has later feature layers and the classifier
    state[prefix + "17.weight"] = torch.zeros(1)
    state["classifier.0.weight"] = torch.zeros(1)
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    loaded = VGG16Features(str(path)).features.state_dict()
    assert loaded.keys() == VGG16Features("none").features.state_dict().keys()
    for key, value in loaded.items():
        assert torch.equal(value, state[prefix + key]), key


def test_local_file_errors(tmp_path):
    with pytest.raises(UserInputError, match="neither 'imagenet', 'none' nor an existing"):
        VGG16Features(str(tmp_path / "missing.pth"))
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, bad)
    with pytest.raises(UserInputError, match="not a VGG-16 state dict: missing 0.bias"):
        VGG16Features(str(bad))


def _write_bytes(path, data):
    path.write_bytes(data)
    return path


def test_unreadable_local_file_raises_one_clear_user_input_error(tmp_path):
    state = _random_features_state("features.")
    torch.save(state, tmp_path / "good.pth")
    good = (tmp_path / "good.pth").read_bytes()
    torch.save(nn.Conv2d(1, 1, 1), tmp_path / "module.pth")  # a pickled module, not a state dict
    files = [
        _write_bytes(tmp_path / "garbage.pth", b"this is not a torch file\n" * 10),
        _write_bytes(tmp_path / "truncated.pth", good[: len(good) // 2]),
        _write_bytes(tmp_path / "empty.pth", b""),
        tmp_path / "module.pth",
    ]
    for path in files:
        with pytest.raises(UserInputError) as info:
            VGG16Features(str(path))
        message = str(info.value)
        assert f"vgg_weights file {path} cannot be read" in message, path.name
        assert "vgg16().state_dict()" in message and "vgg16().features.state_dict()" in message
        assert "'imagenet'" in message and "'none'" in message
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(UserInputError, match=r"does not hold a state dict \(got Tensor\).*'none'"):
        VGG16Features(str(tmp_path / "tensor.pth"))


def test_state_dict_of_another_network_raises_user_input_error(tmp_path):
    vgg19 = torchvision.models.vgg19().features.state_dict()  # conv at index 16, not a pool
    torch.save(vgg19, tmp_path / "vgg19.pth")
    with pytest.raises(UserInputError,
                       match=r"not a VGG-16 state dict: unexpected 16.bias, 16.weight"):
        VGG16Features(str(tmp_path / "vgg19.pth"))
    gray = _random_features_state("")
    gray["0.weight"] = torch.zeros(64, 1, 3, 3)
    torch.save(gray, tmp_path / "gray.pth")
    with pytest.raises(UserInputError, match=r"wrong shapes 0.weight \(64, 1, 3, 3\) instead of "
                                         r"\(64, 3, 3, 3\).*'imagenet'"):
        VGG16Features(str(tmp_path / "gray.pth"))


def test_corrupt_cached_imagenet_weights_name_the_file(monkeypatch):
    def torn_cache(*args, **kwargs):
        raise RuntimeError("invalid hash value (expected \"397923af\", got \"0000\")")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", torn_cache)
    with pytest.raises(UserInputError, match="delete the file to download it again") as info:
        InpaintingLoss(vgg_weights="imagenet")
    assert str(imagenet_cache_file()) in str(info.value)


def test_unreadable_local_file_stays_an_os_error(tmp_path, monkeypatch):
    """Permissions are the environment's problem (exit code 3), not a bad weights file."""
    path = tmp_path / "vgg16.pth"
    torch.save(_random_features_state(""), path)

    def denied(file, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(torch, "load", denied)
    with pytest.raises(PermissionError):
        VGG16Features(str(path))


@pytest.mark.slow
def test_imagenet_weights_load_through_torchvision():
    features = VGG16Features("imagenet").features
    reference = torchvision.models.vgg16(weights="IMAGENET1K_V1").features
    assert torch.equal(features[14].weight, reference[14].weight)


def test_total_loss_decreases_when_overfitting_one_batch():
    model = PConvUNet(depth=4, base_channels=8)
    loss_fn = InpaintingLoss(vgg_weights="none")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    ramp_y, ramp_x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64),
                                    indexing="ij")
    image = torch.stack([ramp_x, ramp_y, (ramp_x + ramp_y) / 2]).repeat(2, 1, 1, 1)
    image[1] = image[1].flip(-1)
    mask = torch.ones(2, 1, 64, 64)
    mask[..., 20:40, 16:36] = 0
    history = []
    for _ in range(30):
        output, _ = model(image * mask, mask)
        terms = loss_fn(output, image, mask)
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
        history.append(terms["total"].item())
    assert all(torch.isfinite(torch.tensor(history)))
    assert history[-1] < 0.25 * history[0]
    assert sum(history[-5:]) < sum(history[5:10])
