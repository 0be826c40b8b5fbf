"""Image files: decoding to 8-bit RGB, listing folders, seeded splits (lists: ``file_lists``).

Every decoded image is a ``np.ndarray`` of shape ``(H, W, 3)``, dtype ``uint8``, RGB order, with
the EXIF orientation applied. Conversions from the other layouts:

* grayscale (``L``, ``1``) is repeated over the three channels;
* 16-bit grayscale (``I;16*``, and ``I``, which Pillow uses for 16-bit PNG/TIFF) is rescaled
  from ``[0, 65535]`` to ``[0, 255]`` with rounding (Pillow's own ``convert("L")`` clips instead);
  16-bit RGB(A) files come out of Pillow already reduced to 8 bits by their high byte;
* 32-bit float (``F``) is taken to be in ``[0, 1]`` and clipped to it;
* an alpha channel (``RGBA``, ``LA``, ``PA``, palettes with transparency) is composited over a
  white background (``ALPHA_BACKGROUND``), so fully transparent pixels, whose stored colour is
  arbitrary, become a fixed, predictable colour instead of leaking hidden data;
* palette, CMYK, YCbCr and the other Pillow modes go through ``Image.convert("RGB")``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from inpainting.engine.errors import UserInputError

__all__ = [
    "ALPHA_BACKGROUND",
    "DECODE_SIDE_MULTIPLE",
    "IMAGE_EXTENSIONS",
    "ImageDecodeError",
    "list_images",
    "load_image",
    "split_holdout",
    "split_paths",
]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
ALPHA_BACKGROUND = (255, 255, 255)
# Datasets decode an image reduced while its shorter side stays >= this times the sample side
# (``load_image(reduce_to=...)``): enough for any crop or resize, and a bound on memory.
DECODE_SIDE_MULTIPLE = 4

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


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


def load_image(path: str | os.PathLike, reduce_to: int | None = None) -> np.ndarray:
    """Decode an image file to 8-bit RGB with its EXIF orientation applied.

    Args:
        path: any file Pillow can read (see the module docstring for the conversions).
        reduce_to: if given, an image whose shorter side is at least twice this is decoded
            reduced by an integer factor, keeping the shorter side ``>= reduce_to`` (a JPEG by
            DCT scaling while decoding, other files by Pillow's box ``reduce`` right after it),
            so that a huge image never becomes a full-size array. Smaller images decode exactly
            as without it. ``None``: always full size.

    Returns:
        ``(H, W, 3)`` ``uint8`` array, RGB, values in ``[0, 255]``.

    Raises:
        ImageDecodeError: the file is missing, truncated, not an image or in an unsupported
            layout; the message names the file.
    """
    try:
        with Image.open(path) as opened:
            if reduce_to is not None:
                _draft_reduced(opened, reduce_to)
            opened.load()
            image = _reduced(opened, reduce_to) if reduce_to is not None else opened
            array = _to_rgb_uint8(_apply_exif_orientation(image, path))
    except Exception as error:
        # Pillow reports broken files as OSError (incl. UnidentifiedImageError), but its format
        # plugins can also raise ValueError, SyntaxError, EOFError, struct.error, IndexError or
        # DecompressionBombError on malformed data: all of them mean "this file is unusable".
        raise ImageDecodeError(path, str(error) or type(error).__name__) from error
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageDecodeError(path, "image has zero size")
    return array


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


def _to_rgb_uint8(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode == "RGB":
        return np.array(image, dtype=np.uint8)  # one writable copy
    if mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.float64)
        gray = np.rint(np.clip(values, 0, 65535) * (255.0 / 65535.0)).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        gray = np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("1", "L"):
        gray = np.asarray(image.convert("L"), dtype=np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _composite_alpha(np.asarray(image.convert("RGBA"), dtype=np.uint8))
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _composite_alpha(rgba: np.ndarray) -> np.ndarray:
    """``(H, W, 4)`` uint8 RGBA -> ``(H, W, 3)`` uint8 RGB over ``ALPHA_BACKGROUND``."""
    alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
    background = np.asarray(ALPHA_BACKGROUND, dtype=np.float32)
    rgb = rgba[:, :, :3].astype(np.float32) * alpha + background * (1.0 - alpha)
    return np.rint(rgb).astype(np.uint8)


def _is_folder(entry: os.DirEntry) -> bool:
    """True for a folder or a link to one; a link that loops is not one (``is_dir`` raises)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_image_name(name: str) -> bool:
    # Hidden files (e.g. macOS "._x.jpg" AppleDouble files) are never images.
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(root: str | os.PathLike) -> list[Path]:
    """List image files under a folder, recursively, in sorted order.

    Symbolic links to folders are followed (each real folder once). Hidden files are skipped, and
    so are symbolic links that loop (``ln -s loop.png loop.png``) or point to nothing, each with
    a warning naming it: they hold no image, and resolving them later would fail.

    Args:
        root: folder to search.

    Returns:
        Sorted paths whose extension is one of ``IMAGE_EXTENSIONS`` (case-insensitive).

    Raises:
        UserInputError: ``root`` is missing, not a folder, or holds no image file.
    """
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise UserInputError(
            f"image folder '{root}' {what}; point the config at a folder of images "
            f"({', '.join(IMAGE_EXTENSIONS)})"
        )
    found: list[Path] = []
    visited: set[str] = set()
    pending = [root]
    while pending:
        folder = pending.pop()
        real = os.path.realpath(folder)
        if real in visited:  # a symlink cycle or a second link to the same folder
            continue
        visited.add(real)
        subfolders, files = _scan(folder)
        pending.extend(subfolders)
        found.extend(files)
    if not found:
        raise UserInputError(
            f"no images found under '{root}' (looked recursively for "
            f"{', '.join(IMAGE_EXTENSIONS)}); put images there or point the config elsewhere"
        )
    return sorted(found)


def _scan(folder: Path) -> tuple[list[Path], list[Path]]:
    """The subfolders and image files of one folder; broken symbolic links are left out.

    ``os.scandir`` knows from the directory entry whether a name is a link, so only links cost
    a ``stat`` (listings run to millions of files). An unreadable folder is skipped, as
    ``os.walk`` does.
    """
    subfolders, files = [], []
    try:
        entries = list(os.scandir(folder))
    except OSError as error:
        logger.warning("skipping unreadable folder '%s': %s", folder, error.strerror or error)
        return [], []
    for entry in entries:
        path = folder / entry.name
        if _is_folder(entry):
            subfolders.append(path)
        elif _is_image_name(entry.name):
            if entry.is_symlink() and not os.path.exists(path):
                logger.warning("skipping '%s': a symbolic link that loops or points to nothing",
                               path)
            else:
                files.append(path)
    return subfolders, files


def split_paths(
    paths: Sequence[Path], val_fraction: float, seed: int
) -> tuple[list[Path], list[Path]]:
    """Split paths into train and validation sets, reproducibly.

    The result depends only on the set of paths, ``val_fraction`` and ``seed`` (not on the
    input order). Each part keeps sorted order.

    Args:
        paths: the images of one folder or list.
        val_fraction: share of images for validation, in ``(0, 1)``; at least one image goes
            to each side.
        seed: seed of the shuffle.

    Returns:
        ``(train, val)``.

    Raises:
        ValueError: ``val_fraction`` outside ``(0, 1)``.
        UserInputError: fewer than two paths.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if len(paths) < 2:
        raise UserInputError(f"cannot split {len(paths)} image(s) into train and val; need >= 2")
    train, val, _ = split_holdout(paths, seed, val_fraction)
    return train, val


def split_holdout(
    paths: Sequence[Path], seed: int, val_fraction: float, test_fraction: float = 0.0
) -> tuple[list[Path], list[Path], list[Path]]:
    """Seeded train / validation / test split of one folder or list.

    One permutation seeded by ``seed`` of the sorted paths gives the validation images first,
    then the test images, so adding a test share leaves the validation images unchanged.
    ``val_fraction`` 0 (with a separate validation folder) holds out test images only.

    Args:
        paths: the images.
        seed: seed of the permutation.
        val_fraction: share for validation, in ``[0, 1)``; a positive share is >= 1 image.
        test_fraction: share for testing, in ``[0, 1)``; a positive share is >= 1 image.

    Returns:
        ``(train, val, test)``, each in sorted order; train keeps at least one image.

    Raises:
        ValueError: a share outside ``[0, 1)`` (the config checks them first).
        UserInputError: too few paths for the requested parts.
    """
    for name, share in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= share < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {share}")
    ordered = sorted(Path(p) for p in paths)
    parts = 1 + (val_fraction > 0) + (test_fraction > 0)
    if len(ordered) < parts:
        raise UserInputError(f"cannot split {len(ordered)} image(s) into {parts} parts "
                             "(train, val, test); add images")
    counts = [min(max(1, round(len(ordered) * share)), len(ordered) - 1) if share > 0 else 0
              for share in (val_fraction, test_fraction)]
    # keep one image for training and, when asked for, one for testing
    counts[0] = min(counts[0], len(ordered) - 1 - (test_fraction > 0))
    counts[1] = min(counts[1], len(ordered) - 1 - counts[0])
    order = np.random.default_rng(seed).permutation(len(ordered)).tolist()
    val_set = set(order[:counts[0]])
    test_set = set(order[counts[0]:counts[0] + counts[1]])
    pick = [[], [], []]
    for index, path in enumerate(ordered):
        pick[1 if index in val_set else 2 if index in test_set else 0].append(path)
    return pick[0], pick[1], pick[2]
