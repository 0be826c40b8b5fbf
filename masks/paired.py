"""Masks paired with images by name: each image has its own mask, of its own size.

One rule, for training (``masks.source: paired``) and ``evaluate.py --pair-by-name``: an image's
mask is the file under the mask folder whose path relative to that folder, without extension,
equals the end of the image's path without extension, the longest such match winning. So
``photos/a/x.jpg`` pairs with ``masks/a/x.png``, or with ``masks/x.png`` in a flat mask folder;
where both exist, ``a/x.png`` wins.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePath
from typing import Generic, TypeVar

import numpy as np

from inpainting.engine.errors import UserInputError
from masks.io import IMAGE_SUFFIXES, check_polarity, iter_mask_files, load_mask

__all__ = ["MaskIndex", "PairedMaskSource", "mask_key"]

T = TypeVar("T")


def mask_key(relative: str | os.PathLike) -> str:
    """A mask's pairing key: its path relative to the mask folder, POSIX style, no extension."""
    return PurePath(relative).with_suffix("").as_posix()


class MaskIndex(Generic[T]):
    """Find an image's mask by name (the module's rule).

    Args:
        entries: ``(path relative to the mask folder, item)`` for every mask; ``item`` is what
            :meth:`find` returns (a path, a record).

    Raises:
        UserInputError: Two masks with the same name but for the extension.
    """

    def __init__(self, entries: Iterable[tuple[str, T]]) -> None:
        self._items: dict[str, T] = {}
        names: dict[str, str] = {}
        for relative, item in entries:
            key = mask_key(relative)
            if key in names:
                raise UserInputError(f"masks '{names[key]}' and '{relative}' both pair with the "
                                     f"image named '{key}'; keep one of them")
            self._items[key], names[key] = item, str(relative)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> MaskIndex[Path]:
        """Every mask image under ``folder`` (recursive), found by name.

        Raises:
            UserInputError: The folder is missing or holds no mask image.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise UserInputError(f"mask folder '{folder}' does not exist")
        index = cls((path.relative_to(folder).as_posix(), path)
                    for path in iter_mask_files(folder))
        if not index:
            raise UserInputError(f"mask folder '{folder}' holds no {', '.join(IMAGE_SUFFIXES)} "
                                 "files")
        return index

    def __len__(self) -> int:
        return len(self._items)

    def find(self, image: str | os.PathLike) -> T | None:
        """The mask of ``image`` (a path, absolute or relative), or ``None``."""
        parts = PurePath(image).with_suffix("").parts
        for start in range(len(parts)):  # the longest tail first
            item = self._items.get("/".join(parts[start:]))
            if item is not None:
                return item
        return None


class PairedMaskSource:
    """``masks.source: paired``: every training image's own mask, from ``folder``.

    Not a ``MaskSource`` (``(rng) -> mask``): the dataset asks for the mask of the image it
    read (:meth:`load`) and crops, resizes and flips both alike. The masks are not augmented.

    Args:
        folder: The mask folder (see the module docstring for the names).
        polarity: ``"known_white"`` or ``"hole_white"``.

    Raises:
        UserInputError: A missing or empty folder, an unknown polarity, or two masks of one name.
    """

    def __init__(self, folder: str | os.PathLike, polarity: str = "known_white") -> None:
        self.folder = Path(folder)
        self.polarity = check_polarity(polarity)
        self.index = MaskIndex.from_folder(self.folder)

    def check_images(self, images: Sequence[Path], key: str = "data.train") -> None:
        """Check that every image has its mask (names only, no decoding).

        Raises:
            UserInputError: Naming the first image without a mask.
        """
        for image in images:
            if self.index.find(image) is None:
                raise UserInputError(
                    f"image '{image}' of {key} has no mask in '{self.folder}'; masks.source "
                    f"paired needs a mask of the same name for every image (e.g. "
                    f"'{self.folder / Path(image).with_suffix('.png').name}')")

    def load(self, image: Path, shape: tuple[int, int]) -> np.ndarray:
        """The mask of ``image``, checked to have the image's ``(H, W)``.

        Returns:
            uint8 (H, W), 1 = known, 0 = hole.

        Raises:
            UserInputError: No mask for the image, or a mask of another size.
        """
        path = self.index.find(image)
        if path is None:
            self.check_images([image])
        mask = load_mask(path, self.polarity)
        if mask.shape != tuple(shape):
            raise UserInputError(
                f"mask '{path}' is {mask.shape[1]}x{mask.shape[0]} but its image '{image}' is "
                f"{shape[1]}x{shape[0]}; a paired mask must have its image's size")
        return mask
