"""An endless, resumable stream of training batches.

The order of the images in epoch ``e`` is a permutation seeded by ``(seed, e)``
(``DistributedSampler``, also with a single process), and the dataset derives every
per-sample random choice from ``(seed, epoch, index)``. The position in the data is therefore
just ``(epoch, batch)``: resuming re-creates the sampler at that epoch and skips the indices of
the batches already used, without loading them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from inpainting.errors import UserInputError

__all__ = ["BatchStream", "ResumableSampler", "ShardSampler", "check_batch_fits",
           "make_train_loader"]

logger = logging.getLogger(__name__)


class ResumableSampler(Sampler[int]):
    """A seeded per-epoch permutation (split across ranks) that can start part-way in.

    Args:
        dataset: the training set (only its length is used).
        seed: seed of the permutations.
        rank, world_size: this process's share under DDP (0, 1 in a single process).
    """

    def __init__(self, dataset: Dataset, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.base = DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                       shuffle=True, seed=seed)
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Use epoch ``epoch``'s permutation, skipping its first ``start`` indices."""
        self.base.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[int]:
        indices = list(self.base)
        return iter(indices[self.start:])

    def __len__(self) -> int:
        return max(0, len(self.base) - self.start)


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
    """A training DataLoader with a ``ResumableSampler`` and full batches only.

    Raises:
        ValueError: fewer images per process than ``batch_size`` (no full batch per epoch).
    """
    check_batch_fits(len(dataset), batch_size, world_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=ResumableSampler(dataset, seed, rank, world_size),
        num_workers=num_workers,
        drop_last=True,
        pin_memory=pin_memory,
        # Workers are re-created each epoch so that they see dataset.set_epoch(); the loader's
        # own generator keeps it from drawing on the global torch RNG.
        persistent_workers=False,
        generator=torch.Generator().manual_seed(seed),
    )


class BatchStream:
    """Endless batches from a loader made by ``make_train_loader``, tracking the position.

    Args:
        loader: the training DataLoader.
        epoch: epoch to start in.
        batch: batches of that epoch already used (skipped).

    Attributes:
        epoch, batch: the position after the last batch handed out.
    """

    def __init__(self, loader: DataLoader, epoch: int = 0, batch: int = 0) -> None:
        self.loader = loader
        self.epoch, self.batch = int(epoch), int(batch)
        self._iterator: Iterator[dict[str, Any]] | None = None
        self._bad_files = 0

    def _start_epoch(self) -> None:
        start = self.batch * self.loader.batch_size
        self.loader.sampler.set_epoch(self.epoch, start)
        if hasattr(self.loader.dataset, "set_epoch"):
            self.loader.dataset.set_epoch(self.epoch)
        self._iterator = iter(self.loader)

    @property
    def batches_per_epoch(self) -> int:
        """Full batches in one epoch of this process's share (the loader drops the last one)."""
        return len(self.loader.sampler.base) // self.loader.batch_size

    def __next__(self) -> dict[str, Any]:
        if self._iterator is None:
            self._start_epoch()
        try:
            batch = next(self._iterator)
        except StopIteration:
            # A saved position at or past the epoch's end (checkpoints of older versions, or a
            # resume with a larger batch size or more processes): go on with the next epoch.
            self._end_epoch()
            self._start_epoch()
            batch = next(self._iterator)
        self.batch += 1
        if "bad_files" in batch:
            self._bad_files += int(batch["bad_files"].sum())
        if self.batch >= self.batches_per_epoch:
            # Close the epoch now rather than on the next call, so that the position saved after
            # the last batch is (epoch + 1, 0) and the skipped-file report comes at epoch end.
            self._end_epoch()
            self._iterator = None
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
        """Shut down the workers of the current epoch."""
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
