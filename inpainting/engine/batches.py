"""An endless, resumable stream of training batches.

The order of the images in epoch ``e`` is a permutation seeded by ``(seed, e)``
(``DistributedSampler``, also with a single process), and the dataset derives every
per-sample random choice from ``(seed, epoch, index)``. The position in the data is therefore
just ``(epoch, batch)``: resuming starts the sampler at that epoch and skips the indices of the
batches already used, without loading them.

One DataLoader iterator runs across all epochs: the sampler hands out ``(epoch, index)`` keys
(``ResumableSampler``) and ``EpochKeyed`` sets the dataset's epoch from each key inside the
worker, so workers (and what they cache) live for the whole run instead of being re-created at
every epoch boundary, which with a few images is every batch or two.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from inpainting.engine.errors import UserInputError

__all__ = ["BatchStream", "EpochKeyed", "ResumableSampler", "ShardSampler", "check_batch_fits",
           "make_train_loader"]

logger = logging.getLogger(__name__)


class ResumableSampler(Sampler[tuple[int, int]]):
    """Endless ``(epoch, index)`` keys: each epoch a seeded permutation (split across ranks)
    cut to whole batches, starting at a given position.

    Args:
        dataset: the training set (only its length is used).
        seed: seed of the permutations.
        batch_size: each epoch yields ``len(base) // batch_size`` whole batches of keys (the
            rest of the permutation is dropped, as ``drop_last`` would).
        rank, world_size: this process's share under DDP (0, 1 in a single process).
    """

    def __init__(self, dataset: Dataset, seed: int, batch_size: int, rank: int = 0,
                 world_size: int = 1) -> None:
        self.base = DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                       shuffle=True, seed=seed)
        self.batch_size = batch_size
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Begin at epoch ``epoch``, skipping its first ``start`` indices."""
        self.epoch, self.start = int(epoch), int(start)

    @property
    def batches_per_epoch(self) -> int:
        """Full batches in one epoch of this process's share (the rest is dropped)."""
        return len(self.base) // self.batch_size

    def epoch_indices(self, epoch: int) -> list[int]:
        """The indices epoch ``epoch`` uses, in order (whole batches only)."""
        self.base.set_epoch(epoch)
        return list(self.base)[:self.batches_per_epoch * self.batch_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, start = self.epoch, self.start
        while True:
            for index in self.epoch_indices(epoch)[start:]:
                yield epoch, index
            epoch, start = epoch + 1, 0


class EpochKeyed(Dataset):
    """A dataset read with ``(epoch, index)`` keys: sets the epoch, then reads the index.

    The epoch is set in whichever process reads the sample (a worker's own copy), so one
    long-lived loader serves every epoch. A plain integer key reads ``dataset[key]`` as is.

    Args:
        dataset: a map-style dataset, with ``set_epoch(epoch)`` if its samples depend on it.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | tuple[int, int]) -> Any:
        if isinstance(key, tuple):
            epoch, key = key
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
        return self.dataset[key]


def check_batch_fits(images: int, batch_size: int, world_size: int = 1) -> None:
    """Raise UserInputError when a process's share of ``images`` holds no full batch."""
    if images // world_size < batch_size:
        per_process = " per process" if world_size > 1 else ""
        raise UserInputError(f"the training set has {images} images, fewer than "
                             f"data.batch_size {batch_size}{per_process}; add images or lower "
                             "data.batch_size")


def make_train_loader(dataset: Dataset, batch_size: int, num_workers: int, seed: int,
                      rank: int = 0, world_size: int = 1, pin_memory: bool = False
                      ) -> DataLoader:
    """A training DataLoader of endless full batches (``ResumableSampler`` + ``EpochKeyed``).

    ``loader.dataset`` is the ``EpochKeyed`` wrapper; ``loader.dataset.dataset`` the dataset.

    Raises:
        UserInputError: fewer images per process than ``batch_size`` (no full batch per epoch).
    """
    check_batch_fits(len(dataset), batch_size, world_size)
    return DataLoader(
        EpochKeyed(dataset),
        batch_size=batch_size,
        sampler=ResumableSampler(dataset, seed, batch_size, rank, world_size),
        num_workers=num_workers,
        drop_last=True,
        pin_memory=pin_memory,
        # The loader's own generator keeps it from drawing on the global torch RNG.
        generator=torch.Generator().manual_seed(seed),
    )


class BatchStream:
    """Endless batches from a loader made by ``make_train_loader``, tracking the position.

    One loader iterator serves the whole stream (its workers live as long as the stream).

    Args:
        loader: the training DataLoader.
        epoch: epoch to start in.
        batch: batches of that epoch already used (skipped). A position at or past the epoch's
            end (checkpoints of older versions, or a resume with a larger batch size or more
            processes) goes on with the next epoch.

    Attributes:
        epoch, batch: the position after the last batch handed out.
    """

    def __init__(self, loader: DataLoader, epoch: int = 0, batch: int = 0) -> None:
        self.loader = loader
        self.epoch, self.batch = int(epoch), int(batch)
        if self.batch >= self.batches_per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0
        self._iterator: Iterator[dict[str, Any]] | None = None
        self._bad_files = 0

    @property
    def batches_per_epoch(self) -> int:
        """Full batches in one epoch of this process's share (the sampler drops the rest)."""
        return self.loader.sampler.batches_per_epoch

    def __next__(self) -> dict[str, Any]:
        if self._iterator is None:
            self.loader.sampler.set_epoch(self.epoch, self.batch * self.loader.batch_size)
            self._iterator = iter(self.loader)
        batch = next(self._iterator)
        self.batch += 1
        if "bad_files" in batch:
            self._bad_files += int(batch["bad_files"].sum())
        if self.batch >= self.batches_per_epoch:
            # Close the epoch with its last batch, so that the position saved after it is
            # (epoch + 1, 0) and the skipped-file report comes at epoch end.
            self._end_epoch()
        return batch

    def __iter__(self) -> BatchStream:
        return self

    def _end_epoch(self) -> None:
        if self._bad_files:
            logger.warning("epoch %d: skipped %d undecodable image file(s) (named in the "
                           "warnings above); set data.strict: true to stop on them instead",
                           self.epoch, self._bad_files)
        self.epoch, self.batch, self._bad_files = self.epoch + 1, 0, 0

    @property
    def position(self) -> dict[str, int]:
        """``{"epoch", "batch"}`` for the checkpoint."""
        return {"epoch": self.epoch, "batch": self.batch}

    def close(self) -> None:
        """Shut down the loader's workers."""
        self._iterator = None


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world_size, ...`` of a dataset: the ranks' shards are disjoint and
    together hold every index once (unlike ``DistributedSampler``, which pads the last shard
    with repeated indices), so counts summed over ranks count each sample exactly once.

    Args:
        length: the dataset's length.
        rank, world_size: this process's share (0, 1 in a single process).
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = range(rank, length, world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
