"""The report files of ``evaluate.py``: JSON, CSV files and sample grids.

The rows are those of ``inpainting.metrics.scoring.aggregate`` (Liu et al., ECCV 2018, Table 1): one
per hole-ratio bin and border mode, each with the mean L1 (percent), PSNR (dB) and SSIM over its
images and their count, and ``overall`` over all images. Masks whose hole ratio is in no bin get
rows with ``"bin": null``.

Every file is written atomically (``inpainting.engine.files.atomic_write``): a failed write
leaves the earlier report file intact and raises ``EnvironmentProblem`` (exit code 3).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from inpainting.engine.files import atomic_write
from inpainting.metrics.scoring import Summary, bin_index

__all__ = [
    "save_grids",
    "write_metrics_csv",
    "write_metrics_json",
    "write_per_image_csv",
]

PER_IMAGE_COLUMNS = ("file", "mask", "bin", "border", "hole_ratio")  # then the metrics
_GAP = 4  # pixels between grid cells


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
    path: str | os.PathLike, checkpoint: str, results: dict[str, Summary],
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
    atomic_write(path, text + "\n")


def write_metrics_csv(path: str | os.PathLike, results: dict[str, Summary]) -> None:
    """One line per method and row (``bin`` as ``lo-hi``, ``other`` or ``all``), one column
    per metric; a metric over the whole set (FID...) fills only the ``all`` rows."""
    names = [key for key in next(iter(results.values())).overall if key != "count"]
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["method", "bin", "border", "count", *names])
    for method, (rows, overall) in results.items():
        for row in rows:
            label = "other" if row["bin"] is None else f"{row['bin'][0]:g}-{row['bin'][1]:g}"
            writer.writerow([method, label, row["border"], row["count"],
                             *(row.get(name, "") for name in names)])
        writer.writerow([method, "all", "all", overall["count"],
                         *(overall[name] for name in names)])
    atomic_write(path, text.getvalue())


def write_per_image_csv(
    path: str | os.PathLike, records: list[dict], bins: tuple[tuple[float, float], ...]
) -> None:
    """One line per scored pair: file, mask, bin (``lo-hi`` or empty), border, hole_ratio,
    then its metrics (psnr, ssim, l1, l1_hole by default)."""
    columns = [*PER_IMAGE_COLUMNS,
               *(key for key in (records[0] if records else {}) if key not in PER_IMAGE_COLUMNS)]
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(columns)
    for record in records:
        index = bin_index(record["hole_ratio"], bins)
        label = "" if index is None else f"{bins[index][0]:g}-{bins[index][1]:g}"
        writer.writerow([label if key == "bin" else record[key] for key in columns])
    atomic_write(path, text.getvalue())


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
        picture = Image.fromarray(canvas[:, :, 0] if channels == 1 else canvas)
        atomic_write(path, lambda handle, picture=picture: picture.save(handle, format="PNG"))
        written.append(path)
    return written
