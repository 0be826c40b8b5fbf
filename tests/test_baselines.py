"""inpainting.metrics.baselines: OpenCV Telea / Navier-Stokes and PatchMatch behind the batch
interface (PatchMatch's own checks: test_patchmatch.py)."""

import functools
import importlib.util
import sys

import pytest
import torch

from inpainting.engine.errors import UserInputError
from inpainting.metrics.baselines import BASELINES, get_baseline, opencv_telea
from inpainting.metrics.image import psnr

# PatchMatch needs the optional patchmatch extra; the other methods are always there.
HAS_PATCHMATCH = importlib.util.find_spec("patchmatch_cython") is not None
METHODS = [pytest.param(name, marks=pytest.mark.skipif(
    name == "patchmatch" and not HAS_PATCHMATCH, reason="needs the patchmatch extra"))
    for name in sorted(BASELINES)]


def smooth_images(batch: int, channels: int, size: int = 32) -> torch.Tensor:
    """(batch, channels, size, size) in [0, 1]: smooth ramps and waves, different per image."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    images = []
    for b in range(batch):
        planes = [0.5 + 0.4 * torch.sin(3 * x + 2 * y * (c + 1) + b) for c in range(channels)]
        images.append(torch.stack(planes))
    return torch.stack(images)


def hole_mask(batch: int, size: int = 32) -> torch.Tensor:
    """(batch, 1, size, size), 1 = known, with a small square hole at a different place each."""
    mask = torch.ones(batch, 1, size, size)
    for b in range(batch):
        top = 8 + 4 * b
        mask[b, :, top:top + 6, 10:16] = 0
    return mask


def test_registry_names():
    assert set(BASELINES) == {"opencv-telea", "opencv-ns", "patchmatch"}
    assert get_baseline("opencv-telea") is opencv_telea


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="opencv-ns, opencv-telea, patchmatch"):
        get_baseline("opencv-magic")


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("channels", [3, 1])
def test_fills_holes_close_to_truth_and_keeps_known_pixels(name, channels):
    image = smooth_images(2, channels)
    mask = hole_mask(2)
    masked = image * mask  # holes zeroed, as evaluate.py passes them
    output = get_baseline(name)(masked, mask)
    assert output.shape == image.shape and output.dtype == image.dtype
    assert output.min() >= 0 and output.max() <= 1
    known = mask.bool().expand_as(image)
    assert torch.equal(output[known], image[known])
    # Scored on the hole only: far better than leaving the zeros there.
    hole = ~known
    error_filled = (output[hole] - image[hole]).abs().mean()
    error_zeros = (masked[hole] - image[hole]).abs().mean()
    assert error_filled < 0.15 * error_zeros
    assert (psnr(output, image) > psnr(masked, image) + 10).all()


def test_images_are_filled_independently():
    image = smooth_images(3, 3)
    mask = hole_mask(3)
    together = opencv_telea(image, mask)
    one_by_one = torch.cat([opencv_telea(image[i:i + 1], mask[i:i + 1]) for i in range(3)])
    assert torch.equal(together, one_by_one)


def test_radius_is_configurable():
    image = torch.rand(1, 3, 32, 32)
    mask = torch.ones(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 0
    wide = functools.partial(opencv_telea, inpaint_radius=9)(image, mask)
    assert not torch.equal(wide, opencv_telea(image, mask))


def test_without_holes_returns_the_input():
    image = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    output = get_baseline("opencv-ns")(image, torch.ones(2, 1, 16, 16))
    assert torch.equal(output, image)


@pytest.mark.parametrize("bad_image, bad_mask, message", [
    (torch.rand(2, 4, 16, 16), torch.ones(2, 1, 16, 16), "C = 1 or 3"),
    (torch.rand(3, 16, 16), torch.ones(2, 1, 16, 16), "C = 1 or 3"),
    (torch.randint(0, 255, (2, 3, 16, 16), dtype=torch.uint8), torch.ones(2, 1, 16, 16),
     "floating"),
    (torch.rand(2, 3, 16, 16), torch.ones(2, 3, 16, 16), "mask must have shape"),
    (torch.rand(2, 3, 16, 16), torch.ones(2, 1, 16, 15), "mask must have shape"),
])
def test_bad_inputs_raise(bad_image, bad_mask, message):
    with pytest.raises(ValueError, match=message):
        opencv_telea(bad_image, bad_mask)


def test_bad_radius_raises():
    with pytest.raises(ValueError, match="inpaint_radius"):
        opencv_telea(torch.rand(1, 3, 16, 16), torch.ones(1, 1, 16, 16), inpaint_radius=0)


def test_patchmatch_without_its_package_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "patchmatch_cython", None)  # import raises ImportError
    with pytest.raises(UserInputError, match=r"pip install '\.\[patchmatch\]'") as error:
        get_baseline("patchmatch")
    assert "\n" not in str(error.value)
