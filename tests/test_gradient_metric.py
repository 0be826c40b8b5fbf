"""grad-ratio: 1 for the ground truth, below 1 for a blurred fill, above for a noisy one."""

import math

import cv2
import numpy as np
import pytest
import torch

from inpainting.metrics.gradient import GRAD_RATIO_FLOOR, grad_ratio, gradient_magnitude
from inpainting.metrics.scoring import score


def _textured(size: int = 32, channels: int = 3) -> torch.Tensor:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (size // 4, size // 4, channels), dtype=np.uint8)
    image = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC).reshape(size, size, -1)
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255


def _square_hole(size: int = 32, lo: int = 8, hi: int = 24) -> torch.Tensor:
    mask = torch.ones(1, 1, size, size)
    mask[..., lo:hi, lo:hi] = 0
    return mask


def test_ground_truth_scores_one_blur_below_noise_above():
    target, mask = _textured(), _square_hole()
    blurred = torch.from_numpy(cv2.GaussianBlur(target[0].permute(1, 2, 0).numpy(), (0, 0), 2))
    blurred = blurred.permute(2, 0, 1)[None]
    noisy = (target + 0.2 * torch.randn_like(target)).clamp(0, 1)
    fill = {name: mask * target + (1 - mask) * x for name, x in
            (("truth", target), ("blur", blurred), ("noise", noisy))}
    assert grad_ratio(fill["truth"], target, mask).item() == pytest.approx(1.0)
    assert grad_ratio(fill["blur"], target, mask).item() < 0.7
    assert grad_ratio(fill["noise"], target, mask).item() > 1.15


def test_hand_computed_step_and_the_floor():
    """A vertical step of height h: the Prewitt magnitude (rows of [1, 0, -1] / 3) is h at the
    two columns beside it; a flat fill of that hole scores the floor over (mean + floor)."""
    target = torch.zeros(1, 1, 11, 11)
    target[..., 5:] = 0.3
    magnitude = gradient_magnitude(target)
    assert magnitude.shape == (1, 1, 9, 9)
    assert torch.allclose(magnitude[0, 0, :, 3:5], torch.full((9, 2), 0.3))
    assert magnitude[0, 0, :, :3].max() < 1e-6 and magnitude[0, 0, :, 5:].max() < 1e-6
    mask = torch.zeros(1, 1, 11, 11)  # all hole: the 9x9 interior counts
    flat = torch.full_like(target, 0.15)
    mean = 0.3 * 2 / 9  # two columns of 0.3 out of nine
    expected = GRAD_RATIO_FLOOR / (mean + GRAD_RATIO_FLOOR)
    assert grad_ratio(flat, target, mask).item() == pytest.approx(expected, rel=1e-5)


def test_no_hole_is_nan_and_grey_and_small_images_work():
    target = _textured(11, channels=1)
    assert math.isnan(grad_ratio(target, target, torch.ones(1, 1, 11, 11)).item())
    assert grad_ratio(target, target, torch.zeros(1, 1, 11, 11)).item() == pytest.approx(1.0)
    tiny = torch.rand(2, 3, 3, 3)
    assert grad_ratio(tiny, tiny, torch.zeros(2, 1, 3, 3)).shape == (2,)
    assert grad_ratio(tiny.double(), tiny.double(), torch.zeros(2, 1, 3, 3)).dtype == torch.float64


@pytest.mark.parametrize("pred, target, mask", [
    (torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9), torch.ones(1, 1, 8, 8)),
    (torch.rand(1, 2, 8, 8), torch.rand(1, 2, 8, 8), torch.ones(1, 1, 8, 8)),
    (torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), torch.ones(1, 8, 8)),
    (torch.rand(1, 3, 2, 8), torch.rand(1, 3, 2, 8), torch.ones(1, 1, 2, 8)),
])
def test_bad_shapes_raise(pred, target, mask):
    with pytest.raises(ValueError):
        grad_ratio(pred, target, mask)


def test_score_computes_the_names_asked_for():
    target, mask = _textured(), _square_hole()
    metrics, merged = score(target, mask, torch.zeros_like(target), ("l1", "grad-ratio"))
    assert list(metrics) == ["l1", "grad-ratio"]
    assert metrics["grad-ratio"].item() == pytest.approx(
        grad_ratio(merged, target, mask).item())
    default, _ = score(target, mask, torch.zeros_like(target))
    assert list(default) == ["psnr", "ssim", "l1", "l1_hole"]  # validation's, unchanged
    with pytest.raises(ValueError, match="unknown metric 'fid'"):
        score(target, mask, target, ("fid",))
