"""Classical (non-learned) inpainting baselines from OpenCV, with the project's batch interface.

Scored side by side with the network by ``evaluate.py`` (and by validation, ``train.val_baseline``):
- ``opencv-telea``: fast marching, A. Telea, "An image inpainting technique based on the fast
  marching method", Journal of Graphics Tools 9(1), 2004.
- ``opencv-ns``: Navier-Stokes, M. Bertalmio, A. L. Bertozzi, G. Sapiro, "Navier-Stokes, fluid
  dynamics, and image and video inpainting", CVPR 2001.
- ``patchmatch``: PatchMatch (Barnes et al., SIGGRAPH 2009), the paper's "PM" row; needs the
  ``patchmatch`` extra (``inpainting.metrics.patchmatch``).

The OpenCV methods are ``fn(image, mask, inpaint_radius=3)``, PatchMatch is
``fn(image, mask, seed=0)``, with ``image: (B, C, H, W) in [0, 1]``, ``C`` 1 or 3, and
``mask: (B, 1, H, W), 1 = known, 0 = hole``. They work on 8-bit images, so the holes are filled
from the image quantised to 8 bits; known pixels are returned unchanged.

Example:
    >>> fill = get_baseline("opencv-telea")
    >>> output = fill(image, mask)  # or functools.partial(fill, inpaint_radius=5)
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch

from inpainting.engine.errors import UserInputError
from inpainting.metrics.patchmatch import import_solver, patchmatch_fill

Baseline = Callable[..., torch.Tensor]


def _check_inputs(image: torch.Tensor, mask: torch.Tensor, inpaint_radius: int = 1) -> None:
    """Raise ValueError unless image is (B, 1 or 3, H, W) and mask (B, 1, H, W)."""
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] not in (1, 3):
        got = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"image must have shape (B, C, H, W) with C = 1 or 3, got {got}")
    if not image.is_floating_point():
        raise ValueError(f"image must be a floating tensor in [0, 1], got {image.dtype}")
    expected = (image.shape[0], 1, *image.shape[2:])
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != expected:
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must have shape (B, 1, H, W) = {expected}, got {got}")
    if isinstance(inpaint_radius, bool) or not isinstance(inpaint_radius, int) or (
        inpaint_radius < 1
    ):
        raise ValueError(f"inpaint_radius must be an integer >= 1, got {inpaint_radius!r}")


def _fill_each(
    image: torch.Tensor, mask: torch.Tensor, fill: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> torch.Tensor:
    """Fill the holes of each image on the 8-bit grid with ``fill(pixels, known)``.

    ``fill`` takes (H, W, C) uint8 pixels and an (H, W) bool map, True = known, and returns
    (H, W, C) or (H, W) uint8; see the module docstring for the tensors.
    """
    known = mask.detach() >= 0.5  # (B, 1, H, W) bool
    # (B, C, H, W) in [0, 1] -> (B, H, W, C) uint8, the layout and type the methods expect.
    pixels = image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    pixels = pixels.permute(0, 2, 3, 1).cpu().numpy()
    known_maps = known[:, 0].cpu().numpy()  # (B, H, W)
    filled = np.empty_like(pixels)
    for index in range(len(pixels)):  # the methods take one image at a time
        result = fill(np.ascontiguousarray(pixels[index]), known_maps[index])
        filled[index] = result.reshape(filled.shape[1:])  # a 1-channel result may come back 2-D
    # (B, H, W, C) uint8 -> (B, C, H, W) in [0, 1]
    output = torch.from_numpy(filled).permute(0, 3, 1, 2).to(image.device, image.dtype) / 255
    # Known pixels come straight from the input, so the 8-bit round trip touches only the holes.
    return torch.where(known.to(image.device), image, output)


def _opencv_inpaint(
    image: torch.Tensor, mask: torch.Tensor, inpaint_radius: int, method: int
) -> torch.Tensor:
    """Fill the holes of each image with ``cv2.inpaint``; see the module docstring for shapes."""
    _check_inputs(image, mask, inpaint_radius)

    def fill(pixels: np.ndarray, known: np.ndarray) -> np.ndarray:
        # OpenCV's mask marks the pixels to fill with non-zero values: 255 = hole.
        holes = np.where(known, 0, 255).astype(np.uint8)
        return cv2.inpaint(pixels, holes, inpaint_radius, method)

    return _fill_each(image, mask, fill)


def opencv_telea(
    image: torch.Tensor, mask: torch.Tensor, inpaint_radius: int = 3
) -> torch.Tensor:
    """Telea's fast-marching inpainting (``cv2.INPAINT_TELEA``).

    Args:
        image: (B, C, H, W) in [0, 1], C = 1 or 3; hole pixels are ignored.
        mask: (B, 1, H, W), 1 = known, 0 = hole (values >= 0.5 count as known).
        inpaint_radius: Radius in pixels of the neighbourhood each filled pixel draws from.

    Returns:
        (B, C, H, W) in [0, 1] on the input's device and dtype: the known pixels of ``image``
        and the holes filled on the 8-bit grid.

    Raises:
        ValueError: On a wrong image or mask shape or a radius below 1.
    """
    return _opencv_inpaint(image, mask, inpaint_radius, cv2.INPAINT_TELEA)


def opencv_ns(image: torch.Tensor, mask: torch.Tensor, inpaint_radius: int = 3) -> torch.Tensor:
    """Navier-Stokes inpainting (``cv2.INPAINT_NS``); arguments as :func:`opencv_telea`."""
    return _opencv_inpaint(image, mask, inpaint_radius, cv2.INPAINT_NS)


def patchmatch(image: torch.Tensor, mask: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """PatchMatch inpainting (``inpainting.metrics.patchmatch.patchmatch_fill``), seeded.

    Args:
        image: (B, C, H, W) in [0, 1], C = 1 or 3, H and W >= 3; hole pixels are ignored.
        mask: (B, 1, H, W), 1 = known, 0 = hole (values >= 0.5 count as known).
        seed: Seed of the random search; the same seed gives the same output.

    Returns:
        (B, C, H, W) in [0, 1] on the input's device and dtype, known pixels unchanged.

    Raises:
        ValueError: On a wrong image or mask shape.
        UserInputError: ``patchmatch-cython`` is not installed (the message names the extra).
    """
    _check_inputs(image, mask)
    return _fill_each(image, mask, lambda pixels, known: patchmatch_fill(pixels, known, seed))


BASELINES: dict[str, Baseline] = {
    "opencv-telea": opencv_telea, "opencv-ns": opencv_ns, "patchmatch": patchmatch,
}
# name -> a check that raises UserInputError when the method's optional package is missing
_REQUIREMENTS: dict[str, Callable[[], object]] = {"patchmatch": import_solver}


def get_baseline(name: str) -> Baseline:
    """Look up a baseline by name.

    Args:
        name: One of the keys of :data:`BASELINES` (``opencv-telea``, ``opencv-ns``,
            ``patchmatch``).

    Returns:
        The function ``fn(image, mask) -> (B, C, H, W)``.

    Raises:
        UserInputError: For an unknown name (the message lists the valid ones), or a method
            whose optional package is not installed (the message names the extra).
    """
    if name not in BASELINES:
        raise UserInputError(f"unknown baseline {name!r} (valid: {', '.join(sorted(BASELINES))})")
    if name in _REQUIREMENTS:
        _REQUIREMENTS[name]()
    return BASELINES[name]
