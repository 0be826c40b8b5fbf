"""The patchmatch baseline: seeded, any size and hole ratio, known pixels kept, sharper than
diffusion on texture. Without the package: test_baselines.py."""

import numpy as np
import pytest
import torch

from inpainting.metrics.baselines import opencv_telea, patchmatch
from inpainting.metrics.patchmatch import patch_size_for, patchmatch_fill

pytest.importorskip("patchmatch_cython", reason="needs the patchmatch extra")


def textured(size: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """(1, C, size, size) in [0, 1]: a random tile of 8 px repeated (a texture to copy from)."""
    tile = torch.from_numpy(np.random.default_rng(seed).random((channels, 8, 8))).float()
    reps = -(-size // 8)
    return tile.repeat(1, reps, reps)[None, :, :size, :size].contiguous()


def square_hole(size: int, lo: int, hi: int) -> torch.Tensor:
    mask = torch.ones(1, 1, size, size)
    mask[..., lo:hi, lo:hi] = 0
    return mask


def test_same_seed_same_result_other_seed_may_differ():
    image, mask = textured(48), square_hole(48, 14, 34)
    first = patchmatch(image * mask, mask)
    assert torch.equal(first, patchmatch(image * mask, mask))
    assert torch.equal(first, patchmatch(image * mask, mask, seed=0))


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("size", [11, 12, 31, 32, 64])
def test_every_size_from_11_px_keeps_known_pixels(size, channels):
    image = textured(size, channels)
    mask = square_hole(size, size // 4, size // 2 + 1)
    output = patchmatch(image * mask, mask)
    assert output.shape == image.shape and output.dtype == image.dtype
    assert torch.isfinite(output).all() and output.min() >= 0 and output.max() <= 1
    known = mask.bool().expand_as(image)
    assert torch.equal(output[known], image[known])
    # the holes are filled from the image's colours, not left black
    assert output[~known].mean() > 0.2


def test_patch_size_follows_the_image():
    assert [patch_size_for(s, s) for s in (11, 31, 32, 63, 64, 512)] == [3, 3, 5, 5, 7, 7]
    assert patch_size_for(64, 20) == 3  # the short side decides


def test_all_hole_mask_is_grey():
    image = textured(16)
    output = patchmatch(image, torch.zeros(1, 1, 16, 16))
    assert torch.allclose(output, torch.full_like(image, 128 / 255))


def test_no_known_window_falls_back_to_telea():
    # known pixels on a 4 px grid only: no 3x3 window is fully known
    image, mask = textured(16), torch.zeros(1, 1, 16, 16)
    mask[..., ::4, ::4] = 1
    assert torch.equal(patchmatch(image * mask, mask), opencv_telea(image * mask, mask))


def test_thin_strokes_everywhere_still_fill():
    # 1 px hole lines every 8 px: 7x7 known windows exist, but every coarse pyramid pixel
    # covers a line, so the package's pyramid would lose all known pixels (module docstring)
    image, mask = textured(64), torch.ones(1, 1, 64, 64)
    mask[..., ::8, :] = 0
    mask[..., :, ::8] = 0
    output = patchmatch(image * mask, mask)
    known = mask.bool().expand_as(image)
    assert torch.equal(output[known], image[known]) and output[~known].mean() > 0.2


def test_no_hole_returns_the_input():
    image = textured(16)
    assert torch.equal(patchmatch(image, torch.ones(1, 1, 16, 16)), image)


def _gradient_energy(image: torch.Tensor, hole: torch.Tensor) -> float:
    """Mean squared horizontal + vertical difference over the pixel pairs inside the hole."""
    dx = (image[..., :, 1:] - image[..., :, :-1]).pow(2) * hole[..., :, 1:] * hole[..., :, :-1]
    dy = (image[..., 1:, :] - image[..., :-1, :]).pow(2) * hole[..., 1:, :] * hole[..., :-1, :]
    return float((dx.sum() + dy.sum()) / hole.sum())


def test_texture_stays_sharp_where_diffusion_blurs():
    image, mask = textured(64), square_hole(64, 20, 44)
    hole = 1 - mask
    truth = _gradient_energy(image, hole)
    pm = _gradient_energy(patchmatch(image * mask, mask), hole)
    telea = _gradient_energy(opencv_telea(image * mask, mask), hole)
    assert telea < 0.1 * truth  # diffusion smooths the texture away
    assert abs(pm - truth) < 0.1 * truth  # copied patches keep its contrast


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="mask must have shape"):
        patchmatch(torch.rand(1, 3, 16, 16), torch.ones(1, 1, 16, 15))
    with pytest.raises(ValueError, match="patch_size must be odd"):
        patchmatch_fill(np.zeros((16, 16, 3), np.uint8), np.ones((16, 16), bool), patch_size=4)

