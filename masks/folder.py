"""Masks loaded from a folder of mask images (e.g. the public irregular-mask dataset), or from
the per-frame object masks of videos (e.g. DAVIS annotations)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from inpainting.engine.errors import UserInputError
from inpainting.engine.images import ImageDecodeError, open_image
from masks.augment import Augmentation
from masks.io import IMAGE_SUFFIXES, check_polarity, iter_mask_files, load_mask, resize_mask

logger = logging.getLogger(__name__)


class _FileMasks:
    """What folder and video masks share: a random file per call, resized (nearest) to
    (height, width) and, with ``augment``, randomly rotated, cropped, translated and dilated.

    Subclasses read the file in ``_read(rng) -> uint8 (H, W), 1 = known, 0 = hole``.
    """

    def __init__(self, height: int, width: int, augment: bool,
                 rng: np.random.Generator | int | None, augmentation: Augmentation | None
                 ) -> None:
        if int(height) <= 0 or int(width) <= 0:
            raise ValueError(f"mask size must be positive, got {height}x{width}")
        self.height, self.width = int(height), int(width)
        self.augment = augment
        self._augmentation = augmentation or Augmentation()
        self._rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def _read(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, rng: np.random.Generator | None = None) -> np.ndarray:
        """Read, resize and augment one random mask.

        Args:
            rng: Random source for this mask; defaults to the source's own.

        Returns:
            uint8 (height, width) mask, 1 = known, 0 = hole.
        """
        rng = self._rng if rng is None else rng
        known = resize_mask(self._read(rng), self.height, self.width)
        if not self.augment:
            return known
        holes = self._augmentation((known == 0).view(np.uint8) * np.uint8(255), rng)
        return (holes == 0).view(np.uint8)


class FolderMaskSource(_FileMasks):
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
        super().__init__(height, width, augment, rng, augmentation)
        self.polarity = check_polarity(polarity)
        if not os.path.isdir(folder):
            raise UserInputError(f"mask folder {os.fspath(folder)!r} does not exist")
        self.files = list(iter_mask_files(folder))
        if not self.files:
            suffixes = ", ".join(IMAGE_SUFFIXES)
            raise UserInputError(f"mask folder {os.fspath(folder)!r} holds no {suffixes} "
                                 "files")
        logger.info("found %d mask files in %s", len(self.files), os.fspath(folder))

    def __len__(self) -> int:
        return len(self.files)

    def _read(self, rng: np.random.Generator) -> np.ndarray:
        return load_mask(self.files[int(rng.integers(len(self.files)))], self.polarity)


def _sequences(folder: Path) -> list[list[Path]]:
    """Every folder under ``folder`` (itself included) that directly holds mask images: its
    files in sorted order, one list per sequence."""
    frames: dict[Path, list[Path]] = {}
    for path in iter_mask_files(folder):
        frames.setdefault(path.parent, []).append(path)
    return [frames[parent] for parent in sorted(frames)]


def load_object_mask(path: str | os.PathLike) -> np.ndarray:
    """One frame of object annotations -> uint8 (H, W) mask, 1 = known, 0 = hole.

    Every non-zero label (a palette index, a grey or colour value) is an object, and objects
    are the holes: a moving occluder, as in the paper's video-derived masks.

    Raises:
        UserInputError: the file cannot be decoded; the message names it.
    """
    try:
        image = open_image(path)  # the raw labels, upright as the video's frames
    except ImageDecodeError as error:
        raise UserInputError(f"cannot decode video mask frame '{os.fspath(path)}': "
                             f"{error.reason}") from error
    labels = np.asarray(image)
    if "A" in image.getbands():  # transparency is not a label
        labels = labels[..., :-1]
    hole = labels != 0 if labels.ndim == 2 else np.any(labels != 0, axis=2)
    return (~hole).view(np.uint8)


class VideoMaskSource(_FileMasks):
    """Random masks from the per-frame object masks of videos, augmented like folder masks.

    The folder holds one sequence per sub-folder of frame masks (a DAVIS-style
    ``Annotations/480p/<sequence>/00000.png``, or one sequence directly). Each call picks a
    sequence uniformly (so long videos do not dominate), then one of its frames, whose objects
    (every non-zero label, ``load_object_mask``) become the hole; it is resized to
    (height, width) with nearest-neighbour sampling and, with ``augment``, randomly rotated,
    cropped, translated and dilated. The hole ratio is not controlled.

    Args:
        folder: the video mask folder (searched recursively for ``.png``, ``.jpg``, ``.jpeg``,
            ``.bmp``).
        height, width: output mask size in pixels.
        augment: apply the paper's augmentation (``masks.Augmentation``).
        rng: default random source: a ``np.random.Generator``, an integer seed or ``None``.
        augmentation: augmentation settings; ``None`` uses the defaults.

    Raises:
        UserInputError: the folder is missing or holds no frame masks.
        ValueError: a size is not positive.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        height: int,
        width: int,
        augment: bool = True,
        rng: np.random.Generator | int | None = None,
        augmentation: Augmentation | None = None,
    ) -> None:
        super().__init__(height, width, augment, rng, augmentation)
        if not os.path.isdir(folder):
            raise UserInputError(f"video mask folder {os.fspath(folder)!r} does not exist")
        self.sequences = _sequences(Path(folder))
        if not self.sequences:
            raise UserInputError(
                f"video mask folder {os.fspath(folder)!r} holds no frame masks "
                f"({', '.join(IMAGE_SUFFIXES)}); point masks.folder at one folder of frames "
                "per video, e.g. DAVIS Annotations/480p")
        logger.info("found %d video mask sequences (%d frames) in %s", len(self.sequences),
                    sum(map(len, self.sequences)), os.fspath(folder))

    def __len__(self) -> int:
        return sum(map(len, self.sequences))

    def _read(self, rng: np.random.Generator) -> np.ndarray:
        frames = self.sequences[int(rng.integers(len(self.sequences)))]
        return load_object_mask(frames[int(rng.integers(len(frames)))])
