"""How large an image file the tools on a trained model take (``predict``, the app), checked from
the file's header before a pixel is decoded.

A small file can hold a huge image (a PNG of one colour at 13000x13000 is a few kB and decodes
to 500 MB), so the size is read from the header (Pillow's ``Image.open`` reads no pixels) and a
file over :data:`MAX_IMAGE_PIXELS` is refused with one line naming it, its size and the limit.
"""

from __future__ import annotations

import os
import warnings
from typing import IO

from PIL import Image

from inpainting.engine.errors import UserInputError

__all__ = ["MAX_IMAGE_PIXELS", "check_image_file", "megapixels"]

MAX_IMAGE_PIXELS = 50_000_000  # 50 MP: 150 MB as 8-bit RGB, 600 MB as float32


def megapixels(pixels: int, limit: int = MAX_IMAGE_PIXELS) -> str:
    """``pixels`` in megapixels with the decimals that tell it from ``limit`` (``"50.3"``,
    ``"50.000001"``), so that a refusal never reads "50 megapixels; the limit is 50"."""
    for decimals in range(7):
        text = f"{pixels / 1e6:.{decimals}f}"
        if (float(text) > limit / 1e6) == (pixels > limit) and float(text) * 1e6 != limit:
            return text
    return f"{pixels / 1e6:.6f}"


def check_image_file(file: str | os.PathLike | IO[bytes], name: str,
                     max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[int, int] | None:
    """The ``(width, height)`` of an image file, read from its header; refuse it over the limit.

    Args:
        file: a path or an open binary file (its position is left at the start).
        name: how the message names the file (``"'photo.jpg'"``, ``"a painted layer"``).
        max_pixels: the largest ``width * height`` taken.

    Returns:
        ``(width, height)``, or None for a file Pillow cannot identify (missing, not an image):
        the decoder that follows says what is wrong in its own words.

    Raises:
        UserInputError: more than ``max_pixels`` pixels (one line: the size, the limit, the fix).
    """
    try:
        with warnings.catch_warnings():  # Pillow warns from 89 MP on: the check below decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(file) as opened:
                width, height = opened.size
    except Image.DecompressionBombError:  # over Pillow's own limit (179 MP): size not given
        raise UserInputError(
            f"{name} has more than {megapixels(2 * Image.MAX_IMAGE_PIXELS, max_pixels)} "
            f"megapixels; the limit is {max_pixels / 1e6:g} megapixels, so downscale it first"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError):  # Pillow's ways of "not an image"
        return None
    finally:
        if hasattr(file, "seek"):
            file.seek(0)
    if width * height > max_pixels:
        raise UserInputError(
            f"{name} is {width}x{height} = {megapixels(width * height, max_pixels)} megapixels; "
            f"the limit is {max_pixels / 1e6:g} megapixels, so downscale it first")
    return width, height
