"""PatchMatch inpainting (the "PM" row of Liu et al., ECCV 2018, Table 1) for one 8-bit image.

C. Barnes, E. Shechtman, A. Finkelstein, D. B. Goldman, "PatchMatch: a randomized
correspondence algorithm for structural image editing", SIGGRAPH 2009. The solver is the
``patchmatch-cython`` package (BSD-3-Clause; wheels for CPython 3.10-3.14 on x86_64 Linux,
Windows and macOS, and on macOS arm64), installed by the ``patchmatch`` extra:
``pip install '.[patchmatch]'``. Elsewhere (Linux aarch64) the extra installs nothing, since the
sdist needs a C++ compiler.
``inpainting.metrics.baselines`` puts :func:`patchmatch_fill` behind the batch interface as
``patchmatch``.

What this module adds to the package's coarse-to-fine solver, so that every size and hole
ratio ``evaluate.py`` accepts gets an answer:

- The patch side follows the image (:func:`patch_size_for`): 7 px from 64 px up, 5 px from 32,
  3 px below (an 11 px image still has windows to copy from).
- A hole that leaves no fully known ``patch x patch`` window cannot be filled by copying
  patches: it falls back to OpenCV's Telea (diffusion from the known pixels), and an image
  with no known pixel at all is filled with mid-grey (0.5).
- The package's pyramid marks a coarse pixel as hole when any pixel under it is one, so a
  mask of thin strokes over the whole image can leave a coarse level without known pixels;
  then the image is solved at full resolution only (``inpaint_single``).

The package's Poisson blending of the seam is off: the fill is the copied patches' vote, as
in Barnes et al. Results are deterministic: the solver draws from a generator seeded by
``seed``.
"""

from __future__ import annotations

import platform
import sys
from types import ModuleType

import cv2
import numpy as np

from inpainting.engine.errors import UserInputError

__all__ = ["INSTALL_HINT", "import_solver", "patch_size_for", "patchmatch_fill"]

INSTALL_HINT = "pip install '.[patchmatch]' (the patchmatch-cython package)"
# Iterations of the single-scale solve, the package's count for a pyramid's finest level.
_SINGLE_SCALE_ITERATIONS = 7
_GREY = 128  # the fill of an image without any known pixel


def import_solver() -> ModuleType:
    """The ``patchmatch_cython`` module.

    Raises:
        UserInputError: The package is not installed; the message names the extra.
    """
    try:
        import patchmatch_cython
    except ImportError:
        if _has_wheel():
            raise UserInputError(f"the patchmatch baseline needs the patchmatch extra: "
                                 f"{INSTALL_HINT}") from None
        raise UserInputError(
            f"the patchmatch baseline needs patchmatch-cython, which has no wheel for "
            f"{sys.platform} {platform.machine()}: install a C++ compiler, then "
            "pip install patchmatch-cython") from None
    return patchmatch_cython


def _has_wheel() -> bool:
    """Whether patchmatch-cython has a wheel here (the extra's marker in setup.cfg)."""
    return platform.machine() in ("x86_64", "AMD64") or sys.platform == "darwin"


def patch_size_for(height: int, width: int) -> int:
    """Odd patch side for an image: 7 px from a short side of 64 px, 5 px from 32, else 3."""
    short = min(height, width)
    return 7 if short >= 64 else 5 if short >= 32 else 3


def _has_known_window(known: np.ndarray, patch: int) -> bool:
    """True if some ``patch x patch`` window inside the image is entirely known."""
    kernel = np.ones((patch, patch), np.uint8)
    # Outside the image counts as unknown, so a window must lie inside it.
    eroded = cv2.erode(known.view(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT,
                       borderValue=0)
    return bool(eroded.any())


def patchmatch_fill(pixels: np.ndarray, known: np.ndarray, seed: int = 0,
                    patch_size: int | None = None) -> np.ndarray:
    """Fill the holes of one image by PatchMatch (with the fallbacks of the module docstring).

    Args:
        pixels: (H, W, C) uint8, C = 1 or 3; hole pixels are ignored.
        known: (H, W) bool, True = known pixel, False = hole.
        seed: Seed of the solver's random search.
        patch_size: Odd patch side; default :func:`patch_size_for` of the image.

    Returns:
        (H, W, C) uint8: the known pixels of ``pixels`` and the filled holes.

    Raises:
        UserInputError: ``patchmatch-cython`` is not installed.
        ValueError: Mismatched shapes or an even patch size.
    """
    if pixels.ndim != 3 or known.shape != pixels.shape[:2]:
        raise ValueError(f"pixels must be (H, W, C) and known (H, W), got {pixels.shape} and "
                         f"{known.shape}")
    patch = patch_size or patch_size_for(*known.shape)
    if patch % 2 == 0 or patch > min(known.shape):
        raise ValueError(f"patch_size must be odd and fit the image, got {patch} for "
                         f"{known.shape[1]}x{known.shape[0]}")
    if known.all():
        return pixels.copy()
    if not known.any():
        return np.full_like(pixels, _GREY)
    if not _has_known_window(known, patch):
        holes = np.where(known, 0, 255).astype(np.uint8)
        filled = cv2.inpaint(np.ascontiguousarray(pixels), holes, 3, cv2.INPAINT_TELEA)
        return filled.reshape(pixels.shape)  # a 1-channel result comes back 2-D
    solver = import_solver()
    hole = ~known  # the package marks the pixels to fill with True
    # No Poisson blending: Barnes et al.'s fill, the copied patches' votes as they are (the
    # package's blend smooths a band of 8 px along the hole's edge, half of a small hole).
    options = {"patch_size": patch, "seed": seed, "poisson_blend": False}
    try:
        filled = solver.inpaint_pyramid(pixels, hole, **options)
    except ValueError:
        # Known windows exist at full size (checked above), so the only error left is a
        # coarse pyramid level that lost every known pixel (module docstring).
        filled = solver.inpaint_single(pixels, hole, iterations=_SINGLE_SCALE_ITERATIONS,
                                       **options)
    return np.where(known[:, :, None], pixels, filled.reshape(pixels.shape))
