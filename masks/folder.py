"""Masks loaded from a folder of mask images (e.g. the public irregular-mask dataset)."""

from __future__ import annotations

import logging
import os

import numpy as np

from inpainting.errors import UserInputError
from masks.augment import Augmentation
from masks.io import IMAGE_SUFFIXES, check_polarity, iter_mask_files, load_mask, resize_mask

logger = logging.getLogger(__name__)


class FolderMaskSource:
    """Random masks from the image files in a folder, augmented like generated masks.

    Each call picks one file uniformly at random, reads it with the given polarity, resizes it
    to (height, width) with nearest-neighbour sampling and, if ``augment`` is set, applies the
    paper's random rotation, cropping, translation and dilation. The hole ratio is whatever the
    file and the augmentation give; it is not controlled.

    Args:
        folder: Folder searched recursively for ``.png``, ``.jpg``, ``.jpeg`` and ``.bmp`` files.
        height: Output mask height in pixels.
        width: Output mask width in pixels.
        polarity: ``"known_white"`` (white = known, this package's format) or ``"hole_white"``
            (white = hole, e.g. NVIDIA's irregular-mask test set).
        augment: Apply random rotation, cropping, translation and dilation.
        rng: Default random source: a ``np.random.Generator``, an integer seed or ``None``.
        augmentation: Augmentation settings; ``None`` uses :class:`Augmentation` defaults.

    Raises:
        UserInputError: If the folder is missing or holds no mask images, or the polarity is
            unknown.
        ValueError: If the size is not positive.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        height: int,
        width: int,
        polarity: str = "known_white",
        augment: bool = True,
        rng: np.random.Generator | int | None = None,
        augmentation: Augmentation | None = None,
    ) -> None:
        if int(height) <= 0 or int(width) <= 0:
            raise ValueError(f"mask size must be positive, got {height}x{width}")
        self.polarity = check_polarity(polarity)
        if not os.path.isdir(folder):
            raise UserInputError(f"mask folder {os.fspath(folder)!r} does not exist")
        self.files = list(iter_mask_files(folder))
        if not self.files:
            suffixes = ", ".join(IMAGE_SUFFIXES)
            raise UserInputError(f"mask folder {os.fspath(folder)!r} holds no {suffixes} "
                                 "files")
        logger.info("found %d mask files in %s", len(self.files), os.fspath(folder))
        self.height, self.width = int(height), int(width)
        self.augment = augment
        self._augmentation = augmentation or Augmentation()
        self._rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def __len__(self) -> int:
        return len(self.files)

    def __call__(self, rng: np.random.Generator | None = None) -> np.ndarray:
        """Load, resize and augment one random mask.

        Args:
            rng: Random source for this mask; defaults to the source's own.

        Returns:
            uint8 (height, width) mask, 1 = known, 0 = hole.
        """
        rng = self._rng if rng is None else rng
        path = self.files[int(rng.integers(len(self.files)))]
        known = resize_mask(load_mask(path, self.polarity), self.height, self.width)
        if not self.augment:
            return known
        holes = self._augmentation((known == 0).view(np.uint8) * np.uint8(255), rng)
        return (holes == 0).view(np.uint8)
