"""Image files: the one decoder every command, dataset and mask reader goes through.

Training, evaluation, ``predict``, the app, the classification folders and mask files all read
images with :func:`open_image` (directly or through :func:`load_image`, :func:`load_gray` and
:func:`load_image_and_alpha`), so a file means the same pixels everywhere: a phone photo shows,
trains and inpaints upright, and a mask painted on it fits it. No other module opens image
files (``tests/test_engine_images.py`` checks the sources).

:func:`open_image` applies the EXIF orientation (JPEG, PNG ``eXIf``, TIFF, WebP);
:func:`image_size` gives the same displayed size from the header alone. The conversions to
8-bit arrays:

* grayscale (``L``, ``1``) is repeated over the three channels;
* 16-bit grayscale (``I;16*``, and ``I``, which Pillow uses for 16-bit PNG/TIFF) is rescaled
  from ``[0, 65535]`` to ``[0, 255]`` with rounding (Pillow's own ``convert("L")`` clips instead);
  16-bit RGB(A) files come out of Pillow already reduced to 8 bits by their high byte;
* 32-bit float (``F``) is taken to be in ``[0, 1]`` and clipped to it (NaN becomes 0);
* an alpha channel (``RGBA``, ``LA``, ``PA``, palettes with transparency) is composited over a
  white background (``ALPHA_BACKGROUND``), so fully transparent pixels, whose stored colour is
  arbitrary, become a fixed, predictable colour instead of leaking hidden data;
  :func:`load_image_and_alpha` also returns the alpha channel;
* palette, CMYK, YCbCr and the other Pillow modes go through ``Image.convert("RGB")``;
* :func:`load_gray` takes the luma (ITU-R 601) of that RGB image; grey files stay as they are.

This module imports nothing from the project but ``inpainting.engine.errors``, so ``masks``
and every layer above it may use it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from inpainting.engine.errors import UserInputError

__all__ = [
    "ALPHA_BACKGROUND",
    "ImageDecodeError",
    "image_size",
    "load_gray",
    "load_image",
    "load_image_and_alpha",
    "open_image",
]

logger = logging.getLogger(__name__)

ALPHA_BACKGROUND = (255, 255, 255)

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_ORIENTATION_TAG = 0x0112
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)  # the transposes and the quarter turns


class ImageDecodeError(UserInputError):
    """An image file could not be opened or decoded: the user's data is unusable (exit code 2).

    Attributes:
        path: the file that failed.
        reason: the underlying error message.
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot decode image '{self.path}': {reason}")


def open_image(path: str | os.PathLike, reduce_to: int | None = None) -> Image.Image:
    """Decode an image file with its EXIF orientation applied: the project's one image reader.

    Args:
        path: any file Pillow can read.
        reduce_to: if given, an image whose shorter side is at least twice this is decoded
            reduced by an integer factor, keeping the shorter side ``>= reduce_to`` (a JPEG by
            DCT scaling while decoding, other files by Pillow's box ``reduce`` right after it),
            so that a huge image never becomes a full-size array. Smaller images decode exactly
            as without it. ``None``: always full size.

    Returns:
        The decoded Pillow image, upright, in the file's own mode (see the module docstring
        for the conversions the other functions apply).

    Raises:
        ImageDecodeError: the file is missing, truncated, not an image or in an unsupported
            layout, or has zero size; the message names the file.
    """
    try:
        with Image.open(path) as opened:
            if reduce_to is not None:
                _draft_reduced(opened, reduce_to)
            opened.load()
            image = _reduced(opened, reduce_to) if reduce_to is not None else opened
            image = _apply_exif_orientation(image, path)
            if image is opened:  # keep the pixels once the file is closed
                image = opened.copy()
    except Exception as error:
        # Pillow reports broken files as OSError (incl. UnidentifiedImageError), but its format
        # plugins can also raise ValueError, SyntaxError, EOFError, struct.error, IndexError or
        # DecompressionBombError on malformed data: all of them mean "this file is unusable".
        raise ImageDecodeError(path, str(error) or type(error).__name__) from error
    if image.width == 0 or image.height == 0:
        raise ImageDecodeError(path, "image has zero size")
    return image


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image as :func:`open_image` returns it, from the header only.

    A quarter-turn EXIF orientation swaps the stored sides, as decoding does.

    Raises:
        ImageDecodeError: the file is missing or not an image.
    """
    try:
        with Image.open(path) as opened:
            width, height = opened.size
            orientation = _exif_orientation(opened)
    except Exception as error:  # as in open_image: every Pillow error means "unusable"
        raise ImageDecodeError(path, str(error) or type(error).__name__) from error
    return (height, width) if orientation in _SWAPPING_ORIENTATIONS else (width, height)


def load_image(path: str | os.PathLike, reduce_to: int | None = None) -> np.ndarray:
    """Decode an image file to 8-bit RGB with its EXIF orientation applied.

    Args:
        path: any file Pillow can read (see the module docstring for the conversions).
        reduce_to: a bound on the decoded size, as in :func:`open_image`.

    Returns:
        ``(H, W, 3)`` ``uint8`` array, RGB, values in ``[0, 255]``.

    Raises:
        ImageDecodeError: as :func:`open_image`.
    """
    return _converted(path, _to_rgb_uint8, open_image(path, reduce_to))


def load_image_and_alpha(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode an image file to 8-bit RGB (as :func:`load_image`) and its alpha channel.

    Returns:
        ``(rgb, alpha)``: ``(H, W, 3)`` uint8 RGB, transparent pixels composited over white,
        and ``(H, W)`` uint8 alpha (0 = fully transparent), or None when the file has none.

    Raises:
        ImageDecodeError: as :func:`open_image`.
    """
    image = open_image(path)
    if image.mode not in _ALPHA_MODES and "transparency" not in image.info:
        return _converted(path, _to_rgb_uint8, image), None
    rgba = _converted(path, lambda i: np.asarray(i.convert("RGBA"), dtype=np.uint8), image)
    return _composite_alpha(rgba), rgba[:, :, 3].copy()


def load_gray(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to 8-bit grey (masks): its luma, EXIF orientation applied.

    Returns:
        ``(H, W)`` ``uint8`` array.

    Raises:
        ImageDecodeError: as :func:`open_image`.
    """
    return _converted(path, _to_gray_uint8, open_image(path))


def _converted(path: str | os.PathLike, convert, image: Image.Image) -> np.ndarray:
    """``convert(image)``, with Pillow's errors on odd layouts reported as decode errors."""
    try:
        return convert(image)
    except Exception as error:  # a mode Pillow cannot convert: the file is unusable here
        raise ImageDecodeError(path, str(error) or type(error).__name__) from error


def _exif_orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block means no orientation, as decoding
        return 1


def _draft_reduced(image: Image.Image, reduce_to: int) -> None:
    """Ask a JPEG decoder for a 1/2, 1/4 or 1/8 scale that keeps the shorter side >= reduce_to."""
    width, height = image.size
    factor = min(width, height) // reduce_to
    if image.format == "JPEG" and factor >= 2:
        # draft() keeps the result at least as large as the requested size.
        image.draft(image.mode, (-(-width // factor), -(-height // factor)))


def _reduced(image: Image.Image, reduce_to: int) -> Image.Image:
    """Box-reduce a decoded image by the integer factor that keeps its shorter side >= reduce_to.

    Modes that Pillow cannot reduce (palette, 1-bit, 16-bit) stay as they are.
    """
    factor = min(image.size) // reduce_to
    if factor < 2 or image.mode in ("P", "1") or image.mode.startswith("I;16"):
        return image
    reduced = image.reduce(factor)
    reduced.info = image.info  # keeps the EXIF orientation and the transparency
    return reduced


def _apply_exif_orientation(image: Image.Image, path: str | os.PathLike) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except Exception as error:  # noqa: BLE001 - a broken EXIF block must not lose the pixels
        logger.debug("ignoring unreadable EXIF orientation in %s: %s", path, error)
        return image


def _high_range_gray(image: Image.Image) -> np.ndarray | None:
    """``(H, W)`` uint8 of a 16-bit or float grey image (rescaled, see above); else None."""
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.float64)
        return np.rint(np.clip(values, 0, 65535) * (255.0 / 65535.0)).astype(np.uint8)
    if image.mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        return np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
    return None


def _to_rgb_uint8(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode == "RGB":
        return np.array(image, dtype=np.uint8)  # one writable copy
    gray = _high_range_gray(image)
    if gray is None and mode in ("1", "L"):
        gray = np.asarray(image.convert("L"), dtype=np.uint8)
    if gray is not None:
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        return _composite_alpha(np.asarray(image.convert("RGBA"), dtype=np.uint8))
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _to_gray_uint8(image: Image.Image) -> np.ndarray:
    gray = _high_range_gray(image)
    if gray is not None:
        return gray
    if image.mode in ("1", "L"):
        return np.array(image.convert("L"), dtype=np.uint8)
    rgb = Image.fromarray(_to_rgb_uint8(image))
    return np.array(rgb.convert("L"), dtype=np.uint8)  # luma: 0.299 R + 0.587 G + 0.114 B


def _composite_alpha(rgba: np.ndarray) -> np.ndarray:
    """``(H, W, 4)`` uint8 RGBA -> ``(H, W, 3)`` uint8 RGB over ``ALPHA_BACKGROUND``."""
    alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
    background = np.asarray(ALPHA_BACKGROUND, dtype=np.float32)
    rgb = rgba[:, :, :3].astype(np.float32) * alpha + background * (1.0 - alpha)
    return np.rint(rgb).astype(np.uint8)
