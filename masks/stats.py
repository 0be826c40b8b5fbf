"""Hole-ratio statistics and a contact sheet of a mask folder (``python -m masks stats``).

Besides the hole ratio, each group reports the mean ``straight_edge_share`` of its masks: the
share of the hole outline that runs in long horizontal or vertical straight lines. Irregular
masks score near 0; a hole that fills a rectangle (or presses against a border frame) near 1.

A folder with a ``manifest.json`` (from ``python -m masks generate``) is grouped by the bin and
border mode each mask was made for, and every file is checked against its manifest entry. A
plain folder of masks made elsewhere is grouped by the bin its measured hole ratio falls in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from inpainting.engine.errors import UserInputError
from inpainting.engine.files import atomic_write
from masks.generator import PAPER_BINS
from masks.io import hole_ratio, iter_mask_files, load_mask
from masks.manifest import MANIFEST_NAME, MaskEntry, read_manifest

CONTACT_SHEET = "contact_sheet.png"
_RAMP = " .:-=+*#%@"  # ASCII bar heights for the within-bin histogram
_SUB_BUCKETS = 10
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def straight_edge_share(mask: np.ndarray, min_run: float = 0.1) -> float:
    """Share of a mask's hole outline that lies in long axis-aligned straight runs.

    The outline is the set of hole pixels with a known 4-neighbour (the image edge is not an
    outline); a pixel counts as straight when it is part of a horizontal or vertical run of
    outline pixels at least ``min_run`` times the shorter image side long.

    Args:
        mask: uint8 ``(H, W)``, 1 = known, 0 = hole.
        min_run: shortest run that counts, as a fraction of ``min(H, W)``.

    Returns:
        A share in ``[0, 1]``; 0 for a mask without an outline (no hole, or all hole).
    """
    hole = (mask == 0).astype(np.uint8)
    known_near = cv2.dilate(1 - hole, _CROSS, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    outline = hole & known_near
    total = int(outline.sum())
    if total == 0:
        return 0.0
    run = max(3, round(min_run * min(mask.shape)) | 1)  # odd: a centred kernel shifts nothing
    straight = np.zeros_like(outline)
    for kernel in (np.ones((1, run), np.uint8), np.ones((run, 1), np.uint8)):
        straight |= cv2.morphologyEx(outline, cv2.MORPH_OPEN, kernel,
                                     borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return float(straight.sum()) / total


@dataclass
class Group:
    """Masks made for (or falling in) one bin and border mode."""

    bin: tuple[float, float] | None  # None: outside every bin (plain folders only)
    border: bool | None  # None: unknown (plain folders)
    files: list[str] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    straight: list[float] = field(default_factory=list)  # straight_edge_share of each mask

    @property
    def bin_label(self) -> str:
        return "other" if self.bin is None else f"({self.bin[0]:g}, {self.bin[1]:g}]"

    @property
    def mode_label(self) -> str:
        return {None: "", True: "border", False: "free"}[self.border]

    @property
    def label(self) -> str:
        return f"{self.bin_label} {self.mode_label}".strip()

    def outside(self) -> int:
        if self.bin is None:
            return len(self.ratios)
        lo, hi = self.bin
        return sum(not lo < r <= hi for r in self.ratios)

    def histogram(self) -> str:
        """Within-bin distribution as a 10-character ASCII sparkline."""
        if self.bin is None or not self.ratios:
            return ""
        counts, _ = np.histogram(self.ratios, bins=_SUB_BUCKETS, range=self.bin)
        levels = np.ceil(counts / max(counts.max(), 1) * (len(_RAMP) - 1)).astype(int)
        return "".join(_RAMP[level] for level in levels)


@dataclass
class FolderStats:
    """Everything ``stats`` reports about a mask folder."""

    folder: Path
    polarity: str
    groups: list[Group]
    problems: list[str]


def _entries(folder: Path, polarity: str | None) -> tuple[list[MaskEntry], str, bool]:
    if not (folder / MANIFEST_NAME).exists():
        files = [p.relative_to(folder).as_posix() for p in iter_mask_files(folder)]
        entries = [MaskEntry(f) for f in files if f != CONTACT_SHEET]
        return entries, polarity or "known_white", False
    manifest = read_manifest(folder / MANIFEST_NAME)
    listed = manifest.polarity
    if polarity is not None and polarity != listed:
        raise UserInputError(
            f"manifest.json says the masks are {listed}, not {polarity}; drop --polarity"
        )
    return list(manifest.masks), listed, True


def collect_stats(
    folder: str | os.PathLike,
    polarity: str | None = None,
    bins: list[tuple[float, float]] | None = None,
    progress: bool = True,
) -> FolderStats:
    """Measure every mask in a folder.

    Args:
        folder: A mask set with ``manifest.json``, or any folder of mask images.
        polarity: ``"known_white"`` or ``"hole_white"`` for plain folders; a manifest's own
            polarity is used otherwise (and a different value is an error).
        bins: Bins for plain folders; default :data:`PAPER_BINS`. Ignored with a manifest.
        progress: Show a tqdm progress bar.

    Returns:
        Groups of measured hole ratios and a list of problems (missing, unreadable or changed
        files).

    Raises:
        UserInputError: If the folder is missing or holds no masks, its manifest is unreadable,
            or the polarity conflicts.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserInputError(f"mask folder {str(folder)!r} does not exist")
    entries, polarity, has_manifest = _entries(folder, polarity)
    if not entries:
        raise UserInputError(f"no mask images in {str(folder)!r}")
    bins = list(bins or PAPER_BINS)
    groups: dict[tuple, Group] = {}
    problems: list[str] = []
    for entry in tqdm(entries, unit="mask", disable=not progress):
        file = entry.file
        try:
            mask = load_mask(folder / file, polarity)
            ratio = hole_ratio(mask)
        except (OSError, ValueError) as error:
            problems.append(f"{file}: {error}")
            continue
        if has_manifest:
            key = (entry.bin or (0.0, 1.0), entry.border)
            listed = entry.hole_ratio
            if listed is not None and abs(listed - ratio) > 1e-9:
                problems.append(f"{file}: hole ratio {ratio:.6f}, manifest says {listed:.6f}")
        else:
            key = (next((b for b in bins if b[0] < ratio <= b[1]), None), None)
        group = groups.setdefault(key, Group(bin=key[0], border=key[1]))
        group.files.append(file)
        group.ratios.append(ratio)
        group.straight.append(straight_edge_share(mask))
    order = sorted(groups, key=lambda k: (k[0] is None, k[0] or (0, 0), k[1] is False))
    return FolderStats(folder, polarity, [groups[k] for k in order], problems)


def format_table(stats: FolderStats) -> str:
    """The per-bin hole-ratio table printed by ``python -m masks stats``."""
    header = (f"{'bin':<24}{'masks':>7}{'min':>9}{'mean':>9}{'max':>9}{'outside':>9}"
              f"{'straight':>10}  within bin")
    lines = [header, "-" * len(header)]
    total = 0
    for group in stats.groups:
        ratios = np.asarray(group.ratios)
        total += ratios.size
        lines.append(
            f"{group.label:<24}{ratios.size:>7}{ratios.min():>9.4f}{ratios.mean():>9.4f}"
            f"{ratios.max():>9.4f}{group.outside():>9}{np.mean(group.straight):>10.3f}"
            f"  |{group.histogram()}|"
        )
    outside = sum(group.outside() for group in stats.groups)
    lines.append(f"{total} masks ({stats.polarity}), {outside} outside their bin; straight: "
                 "mean share of the hole outline in long horizontal/vertical lines")
    return "\n".join(lines)


def _thumbnail(path: Path, polarity: str, side: int) -> np.ndarray:
    """A (side, side) grey picture of a mask (white = known), letterboxed in grey."""
    picture = load_mask(path, polarity) * np.uint8(255)
    scale = side / max(picture.shape)
    height = max(1, round(picture.shape[0] * scale))
    width = max(1, round(picture.shape[1] * scale))
    small = cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
    tile = np.full((side, side), 128, np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    tile[top : top + height, left : left + width] = small
    return tile


def write_contact_sheet(
    stats: FolderStats, path: str | os.PathLike, per_group: int = 8, side: int = 96
) -> Path:
    """Write a PNG grid: one row per group, labelled, with up to ``per_group`` sample masks.

    Samples are spread evenly over each group's files, so the sheet is deterministic.
    """
    label_width, gap = 170, 4
    rows = []
    for group in stats.groups:
        picks = np.linspace(0, len(group.files) - 1, min(per_group, len(group.files)))
        files = [stats.folder / group.files[round(i)] for i in picks]
        tiles = [_thumbnail(file, stats.polarity, side) for file in files]
        row = np.full((side + gap, label_width + per_group * (side + gap)), 64, np.uint8)
        for column, tile in enumerate(tiles):
            left = label_width + column * (side + gap)
            row[gap : gap + side, left : left + side] = tile
        texts = [group.bin_label, f"{group.mode_label} n={len(group.files)}".strip()]
        for line, text in enumerate(texts):
            position = (8, gap + 24 + 24 * line)
            cv2.putText(row, text, position, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 1, cv2.LINE_AA)
        rows.append(row)
    sheet = np.vstack(rows)
    ok, data = cv2.imencode(".png", sheet)
    if not ok:
        raise ValueError("OpenCV could not encode the contact sheet")
    atomic_write(path, data.tobytes())
    return Path(path)
