"""Reading, writing, resizing and measuring binary masks.

Convention (everywhere in this package): a mask array is ``uint8 (H, W)`` with 1 on known
pixels and 0 in holes. On disk a mask is a lossless single-channel 8-bit PNG with 255 on known
pixels and 0 in holes (``polarity="known_white"``). Masks made elsewhere with white holes on
black (for example NVIDIA's public irregular-mask test set) are read with
``polarity="hole_white"``; the polarity is never guessed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from inpainting.engine.errors import UserInputError
from inpainting.engine.files import TMP_PREFIX, TMP_SUFFIX, atomic_write
from inpainting.engine.images import load_gray

POLARITIES: tuple[str, ...] = ("known_white", "hole_white")
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp")
# Grey values >= this count as white when a file is not exactly black and white
# (JPEG masks, anti-aliased drawings): it is the integer midpoint, i.e. a cut at 127.5.
WHITE_THRESHOLD = 128


def check_polarity(polarity: str) -> str:
    """Return ``polarity`` if it is valid.

    Args:
        polarity: ``"known_white"`` or ``"hole_white"``.

    Returns:
        The same string.

    Raises:
        UserInputError: For any other value; the message lists the valid ones.
    """
    if polarity not in POLARITIES:
        valid = ", ".join(POLARITIES)
        raise UserInputError(f"unknown mask polarity {polarity!r} (valid: {valid})")
    return polarity


def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of hole pixels.

    Args:
        mask: (H, W) array, 1 = known, 0 = hole (any dtype).

    Returns:
        Number of zeros divided by the number of pixels, in [0, 1].
    """
    return np.count_nonzero(mask == 0) / mask.size


def load_mask(path: str | os.PathLike, polarity: str = "known_white") -> np.ndarray:
    """Read a mask image from disk.

    The file is decoded by the project's one image reader
    (:func:`inpainting.engine.images.load_gray`), so its EXIF orientation is applied as it is
    to the photo it was painted on, and colour, alpha and 16-bit files become grey as images
    do. Files that are not exactly black and white are binarised at 127.5: grey values >= 128
    are white, lower values black.

    Args:
        path: PNG, JPEG or BMP file.
        polarity: ``"known_white"`` (white = known pixel, the default and the format written by
            :func:`save_mask`) or ``"hole_white"`` (white = hole).

    Returns:
        uint8 (H, W) mask, 1 = known, 0 = hole.

    Raises:
        UserInputError: If ``polarity`` is unknown or the file is missing or cannot be decoded
            as an image (``ImageDecodeError``, naming the file).
    """
    check_polarity(polarity)
    white = load_gray(path) >= WHITE_THRESHOLD
    known = white if polarity == "known_white" else ~white
    return known.view(np.uint8)


def encode_mask(mask: np.ndarray) -> bytes:
    """Encode a binary mask as single-channel PNG bytes (255 = known, 0 = hole).

    Args:
        mask: (H, W) array with values exactly in {0, 1}, 1 = known, 0 = hole.

    Returns:
        The PNG file contents.

    Raises:
        ValueError: If ``mask`` is not 2-D or not exactly binary.
    """
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2-D (H, W), got shape {mask.shape}")
    known = mask == 1
    if np.count_nonzero(known) + np.count_nonzero(mask == 0) != mask.size:
        raise ValueError("a mask must contain only 0 (hole) and 1 (known); binarise it first")
    ok, buffer = cv2.imencode(".png", known.view(np.uint8) * np.uint8(255))
    if not ok:
        raise ValueError("OpenCV could not encode the mask as PNG")
    return buffer.tobytes()


def save_mask(path: str | os.PathLike, mask: np.ndarray) -> None:
    """Write a mask as a lossless single-channel PNG, 255 = known, 0 = hole, atomically.

    Args:
        path: Destination ``.png`` file; its folder must exist.
        mask: (H, W) array with values exactly in {0, 1}, 1 = known, 0 = hole.

    Raises:
        ValueError: If ``mask`` is not 2-D or not exactly binary.
    """
    atomic_write(path, encode_mask(mask))


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete temporary files left by an interrupted write (``atomic_write``) under ``folder``.

    Returns:
        The number of files removed.
    """
    removed = 0
    for tmp in Path(folder).rglob(f"{TMP_PREFIX}*{TMP_SUFFIX}"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a mask with nearest-neighbour sampling and re-binarise it.

    Args:
        mask: (H, W) array, 1 = known, 0 = hole; float masks count values >= 0.5 as known.
        height: Output height in pixels (> 0).
        width: Output width in pixels (> 0).

    Returns:
        uint8 (height, width) mask with values in {0, 1}.

    Raises:
        ValueError: If the mask is not 2-D or the size is not positive.
    """
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2-D (H, W), got shape {mask.shape}")
    if height <= 0 or width <= 0:
        raise ValueError(f"mask size must be positive, got {height}x{width}")
    known = (mask >= 0.5).view(np.uint8)
    if known.shape == (height, width):
        return known.copy()
    # NEAREST_EXACT samples pixel centres, so no half-pixel shift is introduced.
    resized = cv2.resize(known, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
    return (resized > 0).view(np.uint8)


def iter_mask_files(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield mask image files under ``folder`` (recursive), sorted, hidden files skipped."""
    for path in sorted(Path(folder).rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
            if path.is_file():
                yield path
