"""A fixed, seeded set of validation masks spread over hole-ratio bins.

Validation on the same masks in every run makes numbers comparable across runs and steps, and
cycling over the bins (mask ``i`` lies in bin ``i % len(bins)``) lets the metrics be reported
per hole-ratio range, as in Liu et al., ECCV 2018, Table 1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from inpainting.errors import UserInputError
from masks import PAPER_BINS, MaskGenerator, hole_ratio, load_mask, save_mask

__all__ = ["MANIFEST_NAME", "FixedMaskSet"]

MANIFEST_NAME = "manifest.json"
_FORMAT_VERSION = 1


class FixedMaskSet:
    """``count`` deterministic masks of ``size x size``, mask ``i`` in bin ``i % len(bins)``.

    Args:
        count: number of masks (>= 1).
        size: mask side in pixels (the validation image size).
        bins: hole-ratio ranges ``(lo, hi]``; defaults to the paper's six bins.
        border: keep holes this many pixels away from the edge (``None``: anywhere).
        seed: mask ``i`` is drawn from ``np.random.default_rng([seed, i])``.

    Indexing gives ``uint8 (size, size)`` masks, 1 = known, 0 = hole.

    Raises:
        ValueError: ``count < 1``, no bins, or a bin/border the mask generator rejects.
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
            raise ValueError(f"a fixed mask set needs count >= 1, got {count}")
        if len(bins) == 0:
            raise ValueError("a fixed mask set needs at least one hole-ratio bin")
        generators = [
            MaskGenerator(size, size, hole_range=tuple(bin_range), border=border)
            for bin_range in bins
        ]
        masks = [
            generators[i % len(bins)](np.random.default_rng([seed, i])) for i in range(count)
        ]
        self._set_contents(np.stack(masks), [i % len(bins) for i in range(count)], bins)

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

        The manifest lists, per mask, its ``file``, ``hole_ratio`` and ``bin`` (index), and the
        ``bins`` ranges and ``size``. Existing files of the same names are replaced.

        Args:
            folder: destination, created if missing.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        entries = []
        for i, mask in enumerate(self.masks):
            name = f"mask_{i:05d}.png"
            save_mask(folder / name, mask)
            entries.append(
                {"file": name, "hole_ratio": hole_ratio(mask), "bin": self._bin_indices[i]}
            )
        manifest = {
            "version": _FORMAT_VERSION,
            "size": self.size,
            "bins": [list(b) for b in self.bins],
            "masks": entries,
        }
        tmp = folder / f".{MANIFEST_NAME}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, folder / MANIFEST_NAME)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> FixedMaskSet:
        """Read a set written by ``save``.

        Args:
            folder: folder holding ``manifest.json`` and the mask PNGs.

        Returns:
            The same masks, bins and bin assignment.

        Raises:
            UserInputError: no manifest, or a mask file missing or of the wrong size.
        """
        folder = Path(folder)
        manifest_path = folder / MANIFEST_NAME
        if not manifest_path.is_file():
            raise UserInputError(
                f"no {MANIFEST_NAME} in '{folder}'; it is not a saved FixedMaskSet (write one "
                "with FixedMaskSet(...).save(folder))"
            )
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        size = int(manifest["size"])
        masks = []
        for entry in manifest["masks"]:
            path = folder / entry["file"]
            if not path.is_file():
                raise UserInputError(f"mask file '{path}' listed in '{manifest_path}' is "
                                     "missing")
            mask = load_mask(path, "known_white")
            if mask.shape != (size, size):
                raise UserInputError(f"mask '{path}' is {mask.shape}, expected ({size}, "
                                     f"{size})")
            masks.append(mask)
        if not masks:
            raise UserInputError(f"'{manifest_path}' lists no masks")
        fixed = cls.__new__(cls)
        fixed._set_contents(
            np.stack(masks), [e["bin"] for e in manifest["masks"]], manifest["bins"]
        )
        return fixed
