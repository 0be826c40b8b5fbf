"""Which image is scored with which mask.

Masks come from a folder (optionally described by a ``manifest.json`` written by
``python -m masks generate``) or are generated into the report folder. They are paired with the
test images in one of two deterministic ways:

* **by name**, when every image has a mask at the same relative path without extension
  (``images/a/x.jpg`` <-> ``masks/a/x.png``): each image is scored once, with its mask;
* **by assignment** otherwise: the image list is shuffled once with ``seed`` and mask ``i`` is
  scored on image ``order[i mod N]`` (N images), so every mask is used exactly once, images
  repeat when there are fewer images than masks, and a subset is drawn when there are more.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inpainting.engine.errors import UserInputError
from inpainting.engine.images import image_size
from masks.io import iter_mask_files
from masks.manifest import read_manifest

__all__ = [
    "MaskRecord",
    "Pair",
    "assign_pairs",
    "check_mask_sizes",
    "make_pairs",
    "masks_from_folder",
    "masks_from_manifest",
    "pair_by_name",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MaskRecord:
    """One mask file.

    Attributes:
        path: The PNG (or other image) file.
        name: Its path relative to the mask root, POSIX style (used in reports and pairing).
        border: From the manifest (True = holes kept away from the edge), or ``None`` when
            unknown; it is then measured on the mask (see ``evaluation.runner``).
    """

    path: Path
    name: str
    border: bool | None = None


@dataclass(frozen=True)
class Pair:
    """A test image and the mask it is scored with; ``name`` is the image's report name."""

    image: Path
    name: str
    mask: MaskRecord


def masks_from_folder(folder: str | os.PathLike) -> list[MaskRecord]:
    """All mask images under ``folder`` (recursive, sorted), border unknown.

    Raises:
        UserInputError: If the folder is missing or holds no PNG/JPEG/BMP file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserInputError(f"mask folder '{folder}' does not exist; pass a folder of mask PNGs")
    records = [
        MaskRecord(path, path.relative_to(folder).as_posix()) for path in iter_mask_files(folder)
    ]
    if not records:
        raise UserInputError(f"no mask images (.png, .jpg, .bmp) in '{folder}'")
    return records


def masks_from_manifest(
    manifest: str | os.PathLike, root: str | os.PathLike | None = None
) -> tuple[list[MaskRecord], str]:
    """Masks listed in a ``manifest.json`` (``masks.manifest``, any of its versions).

    Args:
        manifest: The JSON file.
        root: Folder the ``file`` entries are relative to; defaults to the manifest's folder.

    Returns:
        ``(records, polarity)``: the masks in manifest order, with the border mode each entry
        records, and the file polarity.

    Raises:
        UserInputError: If the manifest is missing, malformed or lists no masks, or a listed file
            is missing.
    """
    manifest = Path(manifest)
    content = read_manifest(manifest)
    if not content.masks:
        raise UserInputError(f"manifest '{manifest}' lists no masks")
    root = Path(root) if root is not None else manifest.parent
    records = []
    for entry in content.masks:
        path = root / entry.file
        if not path.is_file():
            raise UserInputError(f"mask '{path}' listed in '{manifest}' does not exist")
        records.append(MaskRecord(path, entry.file, entry.border))
    return records, content.polarity


def check_mask_sizes(records: list[MaskRecord], height: int, width: int) -> None:
    """Check every mask file is ``height x width`` from its header (no decoding), upright as
    ``load_mask`` reads it (a quarter-turn EXIF orientation swaps the sides).

    Raises:
        UserInputError: Naming the first mask of another size and how to fix it, or a mask
            that is not an image.
    """
    for record in records:
        mask_width, mask_height = image_size(record.path)
        if (mask_height, mask_width) != (height, width):
            raise UserInputError(
                f"mask '{record.path}' is {mask_width}x{mask_height} but images are evaluated "
                f"at {width}x{height}; pass --image-size {mask_width} (or --fit none for images "
                f"of the masks' size), or use masks of size {width}x{height}"
            )


def _key(name: str) -> str:
    """Relative path without extension, the pairing key."""
    return str(Path(name).with_suffix("").as_posix())


def pair_by_name(
    images: list[Path], image_root: Path, records: list[MaskRecord]
) -> list[Pair] | None:
    """Pair each image with the mask of the same relative name, if every image has one.

    Returns:
        The pairs in image order, or ``None`` if some image has no mask of its name.
    """
    by_key = {_key(record.name): record for record in records}
    pairs = []
    for image in images:
        name = _image_name(image, image_root)
        record = by_key.get(_key(name))
        if record is None:
            return None
        pairs.append(Pair(image, name, record))
    return pairs


def assign_pairs(
    images: list[Path], image_root: Path, records: list[MaskRecord], seed: int
) -> list[Pair]:
    """Mask ``i`` with image ``order[i mod N]``, ``order`` a seeded permutation of the images."""
    order = np.random.default_rng(seed).permutation(len(images))
    pairs = []
    for i, record in enumerate(records):
        image = images[order[i % len(images)]]
        pairs.append(Pair(image, _image_name(image, image_root), record))
    return pairs


def make_pairs(
    images: list[Path], image_root: Path, records: list[MaskRecord], seed: int
) -> list[Pair]:
    """Pair by name when possible, otherwise by seeded assignment (see the module docstring)."""
    if not images or not records:
        raise UserInputError("need at least one image and one mask to evaluate")
    pairs = pair_by_name(images, image_root, records)
    if pairs is not None:
        logger.info("pairing %d images with the masks of the same name", len(pairs))
        return pairs
    logger.info(
        "pairing %d masks with %d images: mask i gets image order[i mod %d], order shuffled "
        "with seed %d", len(records), len(images), len(images), seed,
    )
    return assign_pairs(images, image_root, records, seed)


def _image_name(image: Path, root: Path) -> str:
    try:
        return image.relative_to(root).as_posix()
    except ValueError:
        return image.as_posix()
