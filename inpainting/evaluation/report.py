"""Turning per-image scores into the paper's table, JSON, CSV files and sample grids.

Rows follow Liu et al., ECCV 2018, Table 1: one per hole-ratio bin and border mode (holes kept
away from the edge or not); each row holds the mean L1 (percent), PSNR (dB) and SSIM over its
images and their count. ``overall`` is the mean over all images. Masks whose hole ratio is in
no bin get rows with ``"bin": null``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from inpainting.evaluation.runner import METRIC_NAMES

__all__ = [
    "aggregate",
    "format_table",
    "save_grids",
    "write_metrics_csv",
    "write_metrics_json",
    "write_per_image_csv",
]

PER_IMAGE_COLUMNS = ("file", "mask", "bin", "border", "hole_ratio", *METRIC_NAMES)
_GAP = 4  # pixels between grid cells


def _mean(records: list[dict], key: str) -> float:
    values = [record[key] for record in records]
    finite = [value for value in values if not math.isnan(value)]
    return float(np.mean(finite)) if finite else math.nan


def _summary(records: list[dict]) -> dict[str, Any]:
    return {"count": len(records), **{name: _mean(records, name) for name in METRIC_NAMES}}


def aggregate(
    records: list[dict], bins: tuple[tuple[float, float], ...]
) -> tuple[list[dict], dict[str, Any]]:
    """Per-(bin, border) means and the overall mean.

    Args:
        records: Per-image dicts with ``bin`` (index into ``bins`` or ``None``), ``border`` and
            the metrics ``psnr``, ``ssim``, ``l1``, ``l1_hole``.
        bins: The hole-ratio bins.

    Returns:
        ``(rows, overall)``: rows ``{"bin": [lo, hi] | None, "border": bool, "count": n,
        "psnr", "ssim", "l1", "l1_hole"}`` for every non-empty group, without border first, by
        bin; ``overall`` ``{"count", "psnr", "ssim", "l1", "l1_hole"}``. ``l1_hole`` ignores
        images without holes; an ``inf`` PSNR (a perfect image) makes its mean ``inf``.
    """
    rows = []
    for border in (False, True):
        for index in [*range(len(bins)), None]:
            group = [r for r in records if r["bin"] == index and r["border"] == border]
            if group:
                label = None if index is None else [float(v) for v in bins[index]]
                rows.append({"bin": label, "border": border, **_summary(group)})
    return rows, _summary(records)


def _bin_label(bin_range: list[float] | None) -> str:
    return "other" if bin_range is None else f"({bin_range[0]:g}, {bin_range[1]:g}]"


def format_table(results: dict[str, tuple[list[dict], dict]]) -> str:
    """The paper-style table, methods side by side.

    Args:
        results: method name -> ``(rows, overall)`` from :func:`aggregate`; all methods are
            scored on the same pairs, so their rows line up. The first method sets the rows.

    Returns:
        A multi-line string: bin, border, count, then L1 %, PSNR, SSIM for each method.
    """
    names = list(results)
    cell = "{:>7} {:>7} {:>7}"
    head = f"{'hole ratio':<13}{'border':<8}{'count':>6}"
    lines = [
        " " * len(head) + "".join(f"  {name[:23]:^23}" for name in names),
        head + "".join("  " + cell.format("L1 %", "PSNR", "SSIM") for _ in names),
    ]
    first_rows, _ = results[names[0]]
    keyed = {name: {(_bin_label(r["bin"]), r["border"]): r for r in results[name][0]}
             for name in names}
    entries = [(_bin_label(r["bin"]), "yes" if r["border"] else "no", r["count"],
                [keyed[name][(_bin_label(r["bin"]), r["border"])] for name in names])
               for r in first_rows]
    entries.append(("overall", "", results[names[0]][1]["count"],
                    [results[name][1] for name in names]))
    for label, border, count, summaries in entries:
        values = "".join(
            "  " + cell.format(f"{s['l1']:.2f}", f"{s['psnr']:.2f}", f"{s['ssim']:.3f}")
            for s in summaries
        )
        lines.append(f"{label:<13}{border:<8}{count:>6}{values}")
    return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    """Non-finite floats -> None, recursively (strict JSON has no NaN or Infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


def write_metrics_json(
    path: str | os.PathLike, checkpoint: str, results: dict[str, tuple[list[dict], dict]],
    model_name: str = "model",
) -> None:
    """Write ``{"checkpoint", "rows", "overall", "baselines": {name: {"rows", "overall"}}}``.

    Non-finite values are written as ``null``.
    """
    rows, overall = results[model_name]
    content = {
        "checkpoint": checkpoint,
        "rows": rows,
        "overall": overall,
        "baselines": {
            name: {"rows": r, "overall": o}
            for name, (r, o) in results.items() if name != model_name
        },
    }
    text = json.dumps(_json_safe(content), indent=2, allow_nan=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


def write_metrics_csv(path: str | os.PathLike, results: dict[str, tuple[list[dict], dict]]) -> None:
    """One line per method and row (``bin`` as ``lo-hi``, ``other`` or ``all``)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", "bin", "border", "count", *METRIC_NAMES])
        for method, (rows, overall) in results.items():
            for row in rows:
                label = "other" if row["bin"] is None else f"{row['bin'][0]:g}-{row['bin'][1]:g}"
                writer.writerow([method, label, row["border"], row["count"],
                                 *(row[name] for name in METRIC_NAMES)])
            writer.writerow([method, "all", "all", overall["count"],
                             *(overall[name] for name in METRIC_NAMES)])


def write_per_image_csv(
    path: str | os.PathLike, records: list[dict], bins: tuple[tuple[float, float], ...]
) -> None:
    """One line per scored pair: file, mask, bin (``lo-hi`` or empty), border, hole_ratio,
    psnr, ssim, l1, l1_hole."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(PER_IMAGE_COLUMNS)
        for record in records:
            index = record["bin"]
            label = "" if index is None else f"{bins[index][0]:g}-{bins[index][1]:g}"
            writer.writerow([label if key == "bin" else record[key] for key in PER_IMAGE_COLUMNS])


def _grid_row(sample: dict) -> list[np.ndarray]:
    """masked input (holes white) | mask | every method's output | ground truth."""
    image, known = sample["image"], sample["mask"][:, :, None].astype(bool)
    channels = image.shape[2]
    masked = np.where(known, image, np.uint8(255))
    mask_cells = np.repeat(known.astype(np.uint8) * 255, channels, axis=2)
    return [masked, mask_cells, *sample["outputs"].values(), image]


def save_grids(
    folder: str | os.PathLike, samples: dict, bins: tuple[tuple[float, float], ...]
) -> list[Path]:
    """Write one PNG per (bin, border) group: rows of masked input | mask | outputs | truth.

    Groups without samples get no file; without any samples ``folder`` is not created.

    Returns:
        The written files, named ``samples_<lo>-<hi>_<border|no_border>.png``.
    """
    folder = Path(folder)
    groups = sorted(((key, group) for key, group in samples.items() if group),
                    key=lambda item: str(item[0]))
    if groups:
        folder.mkdir(parents=True, exist_ok=True)
    written = []
    for (index, border), group in groups:
        cells = [_grid_row(sample) for sample in group]
        height, width, channels = cells[0][0].shape
        columns = len(cells[0])
        canvas = np.full(
            (len(cells) * (height + _GAP) - _GAP, columns * (width + _GAP) - _GAP, channels),
            255, np.uint8,
        )
        for r, row in enumerate(cells):
            for c, cell in enumerate(row):
                top, left = r * (height + _GAP), c * (width + _GAP)
                canvas[top:top + height, left:left + width] = cell
        label = "other" if index is None else f"{bins[index][0]:g}-{bins[index][1]:g}"
        path = folder / f"samples_{label}_{'border' if border else 'no_border'}.png"
        Image.fromarray(canvas[:, :, 0] if channels == 1 else canvas).save(path)
        written.append(path)
    return written
