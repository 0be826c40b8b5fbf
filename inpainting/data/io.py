"""Image files of a data set: listing folders, seeded splits (lists: ``file_lists``).

Decoding is :mod:`inpainting.engine.images`, the project's one image reader, whose
``load_image`` (``(H, W, 3)`` uint8 RGB, EXIF orientation applied; 16-bit, float, alpha and
palette files converted as described there) and ``ImageDecodeError`` are re-exported here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from inpainting.engine.errors import UserInputError
from inpainting.engine.images import ALPHA_BACKGROUND, ImageDecodeError, load_image

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
# Datasets decode an image reduced while its shorter side stays >= this times the sample side
# (``load_image(reduce_to=...)``): enough for any crop or resize, and a bound on memory.
DECODE_SIDE_MULTIPLE = 4


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
