"""A fixed, seeded set of validation masks spread over hole-ratio bins.

Validation on the same masks in every run makes numbers comparable across runs and steps, and
cycling over the bins (mask ``i`` lies in bin ``i % len(bins)``) lets the metrics be reported
per hole-ratio range, as in Liu et al., ECCV 2018, Table 1.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from inpainting.engine.errors import UserInputError
from masks import PAPER_BINS, MaskGenerator, hole_ratio, load_mask, save_mask
from masks.manifest import MANIFEST_NAME, Manifest, MaskEntry, read_manifest, write_manifest

__all__ = ["FixedMaskSet"]


class FixedMaskSet:
    """``count`` deterministic masks of ``size x size``, mask ``i`` in bin ``i % len(bins)``.

    Every mask's hole ratio lies in its bin ``(lo, hi]`` exactly (``MaskGenerator`` guarantees
    it), and the bins may not overlap, so the bin a mask was made for is also the one its
    hole ratio falls in: scoring by hole ratio (``inpainting.metrics.scoring``) gives the same rows.

    Args:
        count: number of masks (>= 1).
        size: mask side in pixels (the validation image size).
        bins: hole-ratio ranges ``(lo, hi]``, pairwise disjoint; defaults to the paper's six.
        border: keep holes this many pixels away from the edge (``None``: anywhere).
        seed: mask ``i`` is drawn from ``np.random.default_rng([seed, i])``.

    Indexing gives ``uint8 (size, size)`` masks, 1 = known, 0 = hole. ``border`` and ``seed``
    are kept as attributes; a set read from a version-1 manifest has ``seed`` None and
    ``border`` None, as those files did not record them.

    Raises:
        UserInputError: ``count < 1``, no bins or overlapping bins.
        ValueError: a bin/border the mask generator rejects.
    """

    def __init__(
        self,
        count: int,
        size: int,
        bins: Sequence[tuple[float, float]] = PAPER_BINS,
        border: int | None = None,
        seed: int = 0,
    ) -> None:
        if count < 1:
            raise UserInputError(f"a fixed mask set needs count >= 1, got {count}")
        if len(bins) == 0:
            raise UserInputError("a fixed mask set needs at least one hole-ratio bin")
        _check_disjoint(bins)
        generators = [
            MaskGenerator(size, size, hole_range=tuple(bin_range), border=border)
            for bin_range in bins
        ]
        masks = [
            generators[i % len(bins)](np.random.default_rng([seed, i])) for i in range(count)
        ]
        self._set_contents(np.stack(masks), [i % len(bins) for i in range(count)], bins)
        self.border: int | None = border
        self.seed: int | None = seed

    def _set_contents(
        self, masks: np.ndarray, bin_indices: Sequence[int], bins: Sequence[tuple[float, float]]
    ) -> None:
        self.masks = masks  # (count, size, size) uint8, 1 = known, 0 = hole
        self.bins = tuple((float(lo), float(hi)) for lo, hi in bins)
        self._bin_indices = [int(b) for b in bin_indices]
        self.size = int(masks.shape[1])

    def __len__(self) -> int:
        return len(self._bin_indices)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.masks[index]

    def bin_index(self, index: int) -> int:
        """Bin number (an index into ``self.bins``) of mask ``index``."""
        return self._bin_indices[index]

    def save(self, folder: str | os.PathLike) -> None:
        """Write ``mask_00000.png``... (255 = known) and ``manifest.json`` (written last).

        The manifest (``masks.manifest``) lists, per mask, its ``file``, ``hole_ratio``,
        ``bin`` and ``border``, and the set's ``bins``, ``size``, ``border_px`` and ``seed``.
        Existing files of the same names are replaced.

        Args:
            folder: destination, created if missing.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        entries = []
        for i, mask in enumerate(self.masks):
            name = f"mask_{i:05d}.png"
            save_mask(folder / name, mask)
            bin_range = self.bins[self._bin_indices[i]]
            entries.append(MaskEntry(name, hole_ratio(mask), bin_range, self.border is not None))
        write_manifest(folder, Manifest(tuple(entries), size=self.size, bins=self.bins,
                                        border_px=self.border or 0, seed=self.seed))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> FixedMaskSet:
        """Read a set written by ``save`` (any manifest version of ``masks.manifest``).

        Args:
            folder: folder holding ``manifest.json`` and the mask PNGs.

        Returns:
            The same masks, bins and bin assignment.

        Raises:
            UserInputError: no or a malformed manifest, a mask without a bin, or a mask file
                missing or of the wrong size.
        """
        folder = Path(folder)
        manifest_path = folder / MANIFEST_NAME
        if not manifest_path.is_file():
            raise UserInputError(
                f"no {MANIFEST_NAME} in '{folder}'; it is not a saved FixedMaskSet (write one "
                "with FixedMaskSet(...).save(folder))"
            )
        manifest = read_manifest(manifest_path)
        if not manifest.masks:
            raise UserInputError(f"'{manifest_path}' lists no masks")
        if manifest.size is None or any(entry.bin is None for entry in manifest.masks):
            raise UserInputError(f"'{manifest_path}' is not a FixedMaskSet's: it needs the "
                                 "set's 'size' and every mask's 'bin'")
        bins = manifest.bins or tuple(dict.fromkeys(entry.bin for entry in manifest.masks))
        size = manifest.size
        masks = []
        for entry in manifest.masks:
            path = folder / entry.file
            if not path.is_file():
                raise UserInputError(f"mask file '{path}' listed in '{manifest_path}' is missing")
            mask = load_mask(path, manifest.polarity)
            if mask.shape != (size, size):
                raise UserInputError(f"mask '{path}' is {mask.shape}, expected ({size}, {size})")
            masks.append(mask)
        fixed = cls.__new__(cls)
        fixed._set_contents(np.stack(masks), [bins.index(e.bin) for e in manifest.masks], bins)
        fixed.border, fixed.seed = manifest.border_px or None, manifest.seed
        return fixed


def _check_disjoint(bins: Sequence[tuple[float, float]]) -> None:
    """Raise unless the bins ``(lo, hi]`` are pairwise disjoint (touching ends are fine)."""
    ordered = sorted((float(lo), float(hi)) for lo, hi in bins)
    for (lo, hi), (next_lo, next_hi) in zip(ordered, ordered[1:]):
        if next_lo < hi:
            raise UserInputError(
                f"hole-ratio bins ({lo:g}, {hi:g}] and ({next_lo:g}, {next_hi:g}] overlap; the "
                "validation bins must be disjoint so that each mask is scored in one bin"
            )
