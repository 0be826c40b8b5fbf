"""The inpainting dataset: image files + a mask source -> ``{"image", "mask", ...}`` samples.

Reproducibility: every random choice of sample ``index`` (crop, flip, mask) comes from
generators derived from ``(seed, epoch, index)`` for training and ``(seed, index)`` for
evaluation, so a sample is the same whatever the number of DataLoader workers, their start
method or the order they are visited in. ``set_epoch`` must be called before the DataLoader
iterator is created (non-persistent workers copy the dataset at that moment).

When the transform does not depend on the image's pixel scale (the ``resize`` and
``random_resized_crop`` training modes, the ``resize`` eval mode), images whose shorter side is
at least twice ``reduce_to`` are decoded reduced by an integer factor (``load_image``), so a huge
file costs memory in proportion to the sample size ``S``, not to the file. ``reduce_to`` is
``DECODE_SIDE_MULTIPLE * S``, divided by ``sqrt(rrc_scale[0])`` for random resized crops, so that
even the smallest window keeps more than ``S`` source pixels a side and is only ever shrunk.
Plain crops (random or centre) cut ``S`` pixels at the file's own resolution, so they always
decode at full size: a reduced decode would change what the crop shows.

Training sets keep decoded images in a per-process cache of ``decode_cache_mb`` megabytes
(``DecodeCache``, least recently used out first): with a long-lived loader (``engine.batches``)
a small set of large photos is decoded once per worker instead of once per sample, and a large
set costs at most that much memory per worker. The cache holds the decoded file, before any
random choice, so a sample is the same with or without it.

Paired masks (``masks.PairedMaskSource``, ``masks.source: paired``) are each image's own mask:
the mask rides through the transform as a fourth channel, so it is cropped, resized and flipped
exactly as its image, then re-binarised at 50 %. Such images are always decoded at full size
(the mask has the file's size).

Undecodable files never crash a run (unless ``strict``): the sample falls back to the next
decodable file in order, logs a warning naming the bad file and reports how many files it
skipped in ``sample["bad_files"]``, which the default collate turns into a ``(B,)`` tensor that
the trainer can sum over an epoch (counters on the dataset object would stay in the workers).
"""

from __future__ import annotations

import logging
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inpainting.data.fixed_masks import FixedMaskSet
from inpainting.data.io import DECODE_SIDE_MULTIPLE, ImageDecodeError, load_image
from inpainting.data.transforms import SCALE_FREE_TRAIN_MODES, EvalTransform, TrainTransform
from inpainting.engine.errors import UserInputError
from masks.paired import PairedMaskSource

__all__ = [
    "MAX_CONSECUTIVE_BAD_FILES",
    "DecodeCache",
    "InpaintingDataset",
    "MaskSource",
    "StrictDecodeError",
    "load_decodable",
    "sample_rngs",
]

logger = logging.getLogger(__name__)

MaskSource = Callable[[np.random.Generator], np.ndarray]
"""Any callable ``(rng) -> uint8 (S, S)`` mask, 1 = known, 0 = hole (e.g. ``MaskGenerator``)."""

# A sample gives up (and raises) after this many undecodable files in a row: at that point
# the dataset itself is broken (wrong format, unmounted disk), not a few files in it.
MAX_CONSECUTIVE_BAD_FILES = 32


class StrictDecodeError(ImageDecodeError):
    """``strict`` stopped on an undecodable image; the message names the file and the choices.

    A DataLoader worker's exception is re-created in the main process as ``type(message)``,
    so this error is built from its message alone (``ImageDecodeError`` needs a path and a
    reason and would come back as a ``RuntimeError`` with a traceback). ``path`` and ``reason``
    are set when it is raised here, ``None`` on the copy from a worker.
    """

    def __init__(self, message: str, path: Path | None = None, reason: str | None = None
                 ) -> None:
        UserInputError.__init__(self, message)
        self.path, self.reason = path, reason

    @classmethod
    def of(cls, error: ImageDecodeError) -> StrictDecodeError:
        """The error ``strict`` (the config's ``data.strict``) raises for ``error``."""
        return cls(f"{error}; data.strict is on: fix or remove the file, or set "
                   "data.strict=false to skip undecodable images", error.path, error.reason)


def load_decodable(
    paths: Sequence[Path], index: int, strict: bool = False, reduce_to: int | None = None
) -> tuple[np.ndarray, int, int]:
    """Decode ``paths[index]``, or the next decodable file after it (wrapping around).

    Args:
        paths: the dataset's files.
        index: the file wanted.
        strict: raise on the first undecodable file instead of skipping it.
        reduce_to: passed to ``load_image`` (a bound on the decode of huge files).

    Returns:
        ``(image, used_index, skipped)``: ``(H, W, 3)`` uint8 RGB, the index of the file
        decoded, and how many undecodable files were skipped to reach it (each logged).

    Raises:
        StrictDecodeError: with ``strict``, ``paths[index]`` is undecodable.
        UserInputError: ``MAX_CONSECUTIVE_BAD_FILES`` undecodable files in a row.
    """
    attempts = min(len(paths), MAX_CONSECUTIVE_BAD_FILES + 1)
    for skipped in range(attempts):
        used = (index + skipped) % len(paths)
        try:
            return load_image(paths[used], reduce_to=reduce_to), used, skipped
        except ImageDecodeError as error:
            if strict:
                raise StrictDecodeError.of(error) from error
            logger.warning("skipping undecodable image (%s)", error)
    raise UserInputError(
        f"{attempts} image files in a row from '{paths[index]}' on could not be "
        "decoded; check the dataset (format, permissions, mounted disk)"
    )


class DecodeCache:
    """Decoded images by dataset index, least recently used out first, within a byte budget.

    Args:
        max_bytes: the most image bytes held; an image larger than this is never kept. 0: off.

    Cached arrays are shared between samples: callers must not write into them (the
    transforms return new arrays).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self._images: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._images)

    def get(self, index: int) -> np.ndarray | None:
        """The image of ``index`` (now the most recently used), or None."""
        image = self._images.get(index)
        if image is not None:
            self._images.move_to_end(index)
        return image

    def put(self, index: int, image: np.ndarray) -> None:
        """Keep ``image`` for ``index``, dropping the least recently used ones to make room."""
        if image.nbytes > self.max_bytes or index in self._images:
            return
        while self.bytes + image.nbytes > self.max_bytes:
            self.bytes -= self._images.popitem(last=False)[1].nbytes
        self._images[index] = image
        self.bytes += image.nbytes


def sample_rngs(
    seed: int, epoch: int | None, index: int
) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent image and mask generators for one sample.

    Two streams, so that changing the augmentation (e.g. turning a flip off) leaves the masks
    unchanged.

    Args:
        seed: base seed (>= 0).
        epoch: epoch number, or ``None`` for evaluation (epoch-independent).
        index: dataset index.

    Returns:
        ``(image_rng, mask_rng)``.
    """
    keys = [seed, index] if epoch is None else [seed, epoch, index]
    image_seed, mask_seed = np.random.SeedSequence(keys).spawn(2)
    return np.random.default_rng(image_seed), np.random.default_rng(mask_seed)


def _reduce_to(image_size: int, train: bool, train_resize: str,
               rrc_scale: tuple[float, float], eval_mode: str) -> int | None:
    """The ``load_image(reduce_to=...)`` bound of a dataset (module docstring), None: full size."""
    if not train:
        return DECODE_SIDE_MULTIPLE * image_size if eval_mode == "resize" else None
    if train_resize not in SCALE_FREE_TRAIN_MODES:
        return None
    smallest = rrc_scale[0] if train_resize == "random_resized_crop" else 1.0
    return math.ceil(DECODE_SIDE_MULTIPLE * image_size / math.sqrt(smallest))


class InpaintingDataset(torch.utils.data.Dataset):
    """Images from a list of files, each paired with a mask, at a fixed square size ``S``.

    Args:
        paths: image files (see ``list_images`` / ``read_file_list`` / ``split_paths``).
        image_size: side ``S`` of the square samples.
        train: random (seeded) crop and flip if true, else the deterministic ``eval_mode``.
        mask_source: a callable ``(rng) -> uint8 (S, S)`` mask (``masks.MaskGenerator``,
            ``masks.FolderMaskSource``), a ``FixedMaskSet`` of size ``S``, whose mask
            ``index % len(set)`` goes with sample ``index``, or a ``PairedMaskSource`` (each
            image's own mask, transformed with it).
        seed: base seed (>= 0) of all per-sample randomness.
        eval_mode: ``"center_crop"`` or ``"resize"`` (used when ``train`` is false).
        train_resize: training framing, a key of ``TRAIN_RESIZE_MODES``: ``crop``, ``resize``
            or ``random_resized_crop``.
        rrc_scale: area-fraction range of the random resized crop.
        hflip: training only: random horizontal flip.
        strict: raise ``StrictDecodeError`` (an ``ImageDecodeError`` that survives the
            DataLoader worker boundary) on an undecodable file instead of skipping it.
        decode_cache_mb: megabytes of decoded images each process keeps (``DecodeCache``);
            0: decode every sample.

    Samples are dicts:
        ``image``: FloatTensor ``(3, S, S)`` in ``[0, 1]``, RGB.
        ``mask``: FloatTensor ``(1, S, S)``, 1 = known, 0 = hole.
        ``index``: int, the dataset index.
        ``path``: str, the file actually used (differs from ``paths[index]`` after a skip).
        ``bad_files``: int, undecodable files skipped to produce this sample.

    Raises:
        ValueError: empty ``paths``, negative ``seed``, bad sizes or modes, or a
            ``FixedMaskSet`` of another size (the caller's contract; the config checks first).
        UserInputError: when a sample is read, ``MAX_CONSECUTIVE_BAD_FILES`` undecodable files
            in a row (``StrictDecodeError`` at once with ``strict``).
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        image_size: int,
        train: bool,
        mask_source: MaskSource | FixedMaskSet | PairedMaskSource,
        seed: int,
        eval_mode: str = "center_crop",
        train_resize: str = "crop",
        rrc_scale: tuple[float, float] = (0.5, 1.0),
        hflip: bool = True,
        strict: bool = False,
        decode_cache_mb: float = 0.0,
    ) -> None:
        if len(paths) == 0:
            raise ValueError("InpaintingDataset needs at least one image path")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if decode_cache_mb < 0:
            raise ValueError(f"decode_cache_mb must be >= 0, got {decode_cache_mb}")
        if isinstance(mask_source, FixedMaskSet) and mask_source.size != image_size:
            raise ValueError(
                f"fixed masks are {mask_source.size}x{mask_source.size} but image_size is "
                f"{image_size}; build the FixedMaskSet at the image size"
            )
        self.paths = [Path(p) for p in paths]
        self.image_size = image_size
        self.train = train
        self.mask_source = mask_source
        self.seed = seed
        self.strict = strict
        self.epoch = 0
        if train:
            self.transform: TrainTransform | EvalTransform = TrainTransform(
                image_size, mode=train_resize, rrc_scale=rrc_scale, hflip=hflip)
        else:
            self.transform = EvalTransform(image_size, mode=eval_mode)
        # A bound on the memory of huge files, where it cannot change the sample (module doc).
        self.reduce_to = _reduce_to(image_size, train, train_resize, rrc_scale, eval_mode)
        if isinstance(mask_source, PairedMaskSource):
            self.reduce_to = None  # the mask file has the image file's size
        self.cache = DecodeCache(int(decode_cache_mb * 2**20))

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose randomness training samples use (no effect on eval)."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        image_rng, mask_rng = sample_rngs(self.seed, self.epoch if self.train else None, index)
        image, path, bad_files = self._load_decodable(index)
        paired = isinstance(self.mask_source, PairedMaskSource)
        if paired:  # (H, W, 3) -> (H, W, 4): the mask, 255 = known, as a fourth channel
            known = self.mask_source.load(path, image.shape[:2])
            image = np.dstack([image, known * np.uint8(255)])
        image = self.transform(image, image_rng)
        if paired:  # (S, S, 4) -> (S, S, 3) and the (S, S) mask, re-binarised at 50 %
            image, mask = np.ascontiguousarray(image[:, :, :3]), (image[:, :, 3] >= 128)
        sample: dict[str, Any] = {
            # (S, S, 3) uint8 -> (3, S, S) float in [0, 1]
            "image": torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0).contiguous(),
            "index": index,
            "path": str(path),
            "bad_files": bad_files,
        }
        if paired:
            mask = mask.view(np.uint8)
        elif isinstance(self.mask_source, FixedMaskSet):
            mask = self.mask_source[index % len(self.mask_source)]
        else:
            mask = self.mask_source(mask_rng)
        sample["mask"] = self._mask_tensor(mask)
        return sample

    def _load_decodable(self, index: int) -> tuple[np.ndarray, Path, int]:
        image = self.cache.get(index)
        if image is not None:
            return image, self.paths[index], 0
        image, used, skipped = load_decodable(self.paths, index, self.strict, self.reduce_to)
        self.cache.put(used, image)
        return image, self.paths[used], skipped

    def _mask_tensor(self, mask: np.ndarray) -> torch.Tensor:
        size = self.image_size
        if mask.shape != (size, size):
            raise ValueError(f"mask source returned shape {mask.shape}, expected ({size}, {size})")
        if mask.max(initial=0) > 1:
            raise ValueError("mask source returned values > 1; masks must be 1 = known, 0 = hole")
        # (S, S) uint8 -> (1, S, S) float
        return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)).unsqueeze(0)
