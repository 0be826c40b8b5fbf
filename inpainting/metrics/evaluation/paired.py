"""Pairs whose mask belongs to its image: ``evaluate.py --pair-by-name`` and ``--lama-dir``.

Unlike a mask pool (one mask set for all images, reused cyclically; ``.pairs``), each image
here has its own mask, of its own size, found by name (``masks.paired``: the rule training's
``masks.source: paired`` uses too). Each pair is scored at its image's size unless
``--image-size`` asks for one size; sizes are read from the file headers before any decoding,
so a missing mask or a mask of another size stops the run with one line.
"""

from __future__ import annotations

from pathlib import Path

from inpainting.engine.errors import UserInputError
from inpainting.engine.images import image_size
from inpainting.metrics.evaluation.pairs import MaskRecord, Pair
from masks.paired import MaskIndex

__all__ = ["MIN_SIDE", "file_size", "pair_images_by_name", "pair_sizes"]

# The smallest side scored: SSIM's 11 x 11 window (evaluate.py's --image-size has the same bound).
MIN_SIDE = 11


def file_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of an image file as it is decoded (upright), from its header.

    Raises:
        UserInputError: (``ImageDecodeError``) the file cannot be read as an image.
    """
    width, height = image_size(path)
    return height, width


def _relative_name(image: Path, root: Path) -> str:
    try:
        return image.relative_to(root).as_posix()
    except ValueError:
        return image.as_posix()


def pair_images_by_name(
    images: list[Path], image_root: Path, records: list[MaskRecord]
) -> list[Pair]:
    """Each image with the mask of its name (``masks.paired``); masks no image names are unused.

    Raises:
        UserInputError: Naming the first image without a mask, or two masks of one name.
    """
    index = MaskIndex((record.name, record) for record in records)
    pairs = []
    for image in images:
        name = _relative_name(image, image_root)
        record = index.find(name)
        if record is None:
            raise UserInputError(
                f"image '{image}' has no mask of its name in --masks (--pair-by-name needs one "
                f"per image, e.g. '{Path(name).with_suffix('.png').as_posix()}')")
        pairs.append(Pair(image, name, record))
    return pairs


def pair_sizes(pairs: list[Pair], own_size: bool = True) -> list[tuple[int, int]]:
    """``(H, W)`` of every pair, checked to be its mask's size too.

    Args:
        pairs: The pairs.
        own_size: The pairs are scored at their own size, so each side must be at least
            :data:`MIN_SIDE`.

    Raises:
        UserInputError: Naming the first mask whose size is not its image's, or (``own_size``)
            the first image with a side under :data:`MIN_SIDE`.
    """
    sizes = []
    for pair in pairs:
        image, mask = file_size(pair.image), file_size(pair.mask.path)
        if image != mask:
            raise UserInputError(
                f"mask '{pair.mask.path}' is {mask[1]}x{mask[0]} but its image '{pair.image}' "
                f"is {image[1]}x{image[0]}; a paired mask must have its image's size")
        if own_size and min(image) < MIN_SIDE:
            raise UserInputError(
                f"image '{pair.image}' is {image[1]}x{image[0]}; scoring at its own size needs "
                f"sides of at least {MIN_SIDE} px (SSIM's window): pass --image-size")
        sizes.append(image)
    return sizes
