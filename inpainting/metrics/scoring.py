"""The one way inpainting results are scored, aggregated and printed.

Training validation (``inpainting.tasks.inpainting.validation``) and ``evaluate.py``
(``inpainting.metrics.evaluation``) both score a prediction the same way and print the same table
(BasicSR's ``calculate_metric``: one
scorer, two callers):

1. :func:`score`: the prediction is composited with the known pixels of the input and quantised
   to 8 bits, exactly the image a user would save, then scored against the ground truth over the
   whole image (PSNR, SSIM, L1 % as in Liu et al., ECCV 2018, Table 1) and over the hole only
   (``l1_hole``); ``names`` picks the metrics (``grad-ratio`` too,
   ``inpainting.metrics.gradient``). The masked input itself (holes black) is scored as the method
   :data:`MASKED_INPUT`, whose prediction is zeros: the trivial baseline a model must beat.
2. :func:`image_records`: one plain dict per image, with its hole ratio and border mode.
3. :func:`aggregate`: means per hole-ratio bin ``(lo, hi]`` (by each image's hole ratio) and
   border mode, plus the overall means.
4. :func:`format_table`: the paper-style table, methods side by side; or
   :func:`format_paper_table`: the layout of the paper's Table 1 (a block of method rows per
   metric, a column per bin and border mode).

This module sits below the engine: it imports only ``inpainting.metrics.image`` and
``.gradient``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from inpainting.metrics.gradient import grad_ratio
from inpainting.metrics.image import l1, psnr, ssim, to_uint8_levels

__all__ = [
    "MASKED_INPUT",
    "METRIC_DIGITS",
    "METRIC_LABELS",
    "METRIC_NAMES",
    "Summary",
    "aggregate",
    "bin_index",
    "bin_label",
    "composite",
    "format_paper_table",
    "format_table",
    "hole_ratios",
    "image_records",
    "masked_input",
    "score",
]

METRIC_NAMES: tuple[str, ...] = ("psnr", "ssim", "l1", "l1_hole")
MASKED_INPUT = "masked input"
# (composite, ground truth, mask 1 = known) -> (B,) scores; the names are CSV columns
_SCORERS: dict[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = {
    "psnr": lambda merged, target, known: psnr(merged, target),
    "ssim": lambda merged, target, known: ssim(merged, target),
    "l1": lambda merged, target, known: l1(merged, target),
    "l1_hole": lambda merged, target, known: l1(merged, target, known),
    "grad-ratio": grad_ratio,
}
_HOLE_ONLY = ("l1_hole", "grad-ratio")  # NaN for an image without holes

Bins = Sequence[tuple[float, float]]


def composite(image: Tensor, mask: Tensor, prediction: Tensor) -> Tensor:
    """The 8-bit image a user would save: known pixels from ``image``, holes from ``prediction``.

    Args:
        image: (B, C, H, W) in [0, 1], the ground truth.
        mask: (B, 1, H, W), 1 = known, 0 = hole (binary).
        prediction: (B, C, H, W) float; values outside [0, 1] are clipped.

    Returns:
        (B, C, H, W) in [0, 1] on the 8-bit grid, ``round(255 * x) / 255``, dtype of ``image``.
    """
    return to_uint8_levels(torch.where(mask > 0.5, image, prediction.to(image.dtype)))


def masked_input(image: Tensor, mask: Tensor) -> Tensor:
    """The prediction of the :data:`MASKED_INPUT` method: zeros, so its holes stay black.

    Args:
        image: (B, C, H, W) in [0, 1]. mask: (B, 1, H, W), 1 = known (unused).

    Returns:
        (B, C, H, W) zeros like ``image``.
    """
    return torch.zeros_like(image)


def score(
    image: Tensor, mask: Tensor, prediction: Tensor, names: Sequence[str] = METRIC_NAMES
) -> tuple[dict[str, Tensor], Tensor]:
    """Metrics of the 8-bit composite of ``prediction`` against ``image``.

    Args:
        image: (B, C, H, W) float in [0, 1], the ground truth (a decoded 8-bit image / 255).
        mask: (B, 1, H, W), 1 = known, 0 = hole.
        prediction: (B, C, H, W) float prediction; the scores are computed on its device.
        names: Which of ``psnr``, ``ssim``, ``l1``, ``l1_hole`` and ``grad-ratio`` to compute.

    Returns:
        ``(metrics, composite)``: name -> (B,) tensor (L1 in percent; ``l1_hole`` over hole
        pixels only and ``grad-ratio`` in the hole, NaN for an image without holes), and the
        (B, C, H, W) composite of :func:`composite`.
    """
    unknown = [name for name in names if name not in _SCORERS]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r} (valid: {', '.join(_SCORERS)})")
    device = prediction.device  # score where the model ran: SSIM is cheap on a GPU
    target = image.to(device, torch.float32)
    known = mask.to(device, torch.float32)
    merged = composite(target, known, prediction)
    return {name: _SCORERS[name](merged, target, known) for name in names}, merged


def hole_ratios(mask: Tensor) -> list[float]:
    """Fraction of hole pixels of each mask, as ``masks.hole_ratio`` computes it.

    Args:
        mask: (B, 1, H, W), 1 = known, 0 = hole (binary).

    Returns:
        B floats in [0, 1].
    """
    holes = (mask <= 0.5).flatten(1).sum(dim=1)  # (B, 1, H, W) -> (B,)
    return (holes.double() / mask[0].numel()).tolist()


def image_records(
    metrics: dict[str, Tensor], mask: Tensor, border: bool | Sequence[bool],
    ratios: Sequence[float] | None = None,
) -> list[dict[str, Any]]:
    """One plain dict per image: ``hole_ratio``, ``border`` and the metrics as floats.

    Args:
        metrics: from :func:`score`, (B,) tensors.
        mask: the (B, 1, H, W) masks scored, 1 = known.
        border: the masks' border mode (True = holes kept away from the edge), one for all or
            one per image.
        ratios: ``hole_ratios(mask)`` when the caller has them (several methods scored on one
            batch); computed here otherwise.

    Returns:
        B dicts ``{"hole_ratio", "border", **metrics}`` (``psnr``, ``ssim``, ``l1``, ``l1_hole``
        by default); callers may add keys (file names) for their own reports.
    """
    ratios = hole_ratios(mask) if ratios is None else list(ratios)
    borders = [bool(border)] * len(ratios) if isinstance(border, bool) else list(border)
    values = {name: scores.double().cpu().tolist() for name, scores in metrics.items()}
    return [
        {"hole_ratio": ratio, "border": bool(borders[row]),
         **{name: column[row] for name, column in values.items()}}
        for row, ratio in enumerate(ratios)
    ]


def bin_index(ratio: float, bins: Bins) -> int | None:
    """Index of the first bin ``(lo, hi]`` holding ``ratio``, or ``None`` when no bin does."""
    for index, (lo, hi) in enumerate(bins):
        if lo < ratio <= hi:
            return index
    return None


def bin_label(bin_range: Sequence[float] | None) -> str:
    """``(0.01, 0.1]`` for a bin, ``other`` for ``None`` (a ratio in no bin)."""
    return "other" if bin_range is None else f"({bin_range[0]:g}, {bin_range[1]:g}]"


class Summary(NamedTuple):
    """One method's means: ``rows`` per (bin, border mode) and ``overall``.

    Attributes:
        rows: ``{"bin": [lo, hi] | None, "border": bool, "count": n, "psnr", "ssim", "l1",
            "l1_hole"}`` for every non-empty group: border modes without border first, bins
            in the given order, then the images in no bin (``"bin": None``).
        overall: ``{"count", "psnr", "ssim", "l1", "l1_hole"}`` over all images.
    """

    rows: list[dict[str, Any]]
    overall: dict[str, Any]


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def _summary(records: list[dict], names: Sequence[str]) -> dict[str, Any]:
    """Means over ``records``; ``l1_hole`` and ``grad-ratio`` only over images with holes.

    A NaN of any other metric (a non-finite prediction) makes its mean NaN, and an ``inf``
    PSNR (a perfect image) makes the PSNR mean ``inf``.
    """
    summary: dict[str, Any] = {"count": len(records)}
    for name in names:
        chosen = [r for r in records if r["hole_ratio"] > 0] if name in _HOLE_ONLY else records
        summary[name] = _mean([r[name] for r in chosen])
    return summary


def aggregate(records: list[dict], bins: Bins, names: Sequence[str] = METRIC_NAMES) -> Summary:
    """Per-(bin, border mode) means and the overall means of one method.

    Args:
        records: per-image dicts of :func:`image_records`.
        bins: hole-ratio bins ``(lo, hi]``; an image goes in the first bin holding its ratio.
        names: the metrics to average, in the order of the summaries' keys.

    Returns:
        The :class:`Summary`.
    """
    groups: dict[tuple[int | None, bool], list[dict]] = {}
    for record in records:
        key = (bin_index(record["hole_ratio"], bins), bool(record["border"]))
        groups.setdefault(key, []).append(record)
    rows = []
    for border in (False, True):
        for index in [*range(len(bins)), None]:
            group = groups.get((index, border))
            if group:
                label = None if index is None else [float(v) for v in bins[index]]
                rows.append({"bin": label, "border": border, **_summary(group, names)})
    return Summary(rows, _summary(records, names))


def format_table(results: dict[str, Summary],
                 columns: Sequence[str] = ("l1", "psnr", "ssim")) -> str:
    """The paper-style table, methods side by side.

    Args:
        results: method name -> :class:`Summary` from :func:`aggregate`; all methods are scored
            on the same images, so their rows line up. The first method sets the rows.
        columns: the per-image metrics shown for each method (``l1``, ``psnr``, ``ssim``,
            ``grad-ratio``, ``lpips``), in order.

    Returns:
        A multi-line string: hole ratio, border, count, then the columns (by default L1 %,
        PSNR, SSIM) for each method, and an ``overall`` line.
    """
    names = list(results)
    cell = " ".join(["{:>7}"] * len(columns))
    span = 8 * len(columns) - 1
    head = f"{'hole ratio':<13}{'border':<8}{'count':>6}"
    lines = [
        " " * len(head) + "".join(f"  {name[:span]:^{span}}" for name in names),
        head + "".join("  " + cell.format(*(METRIC_LABELS[c] for c in columns)) for _ in names),
    ] if columns else [head]  # only set metrics asked for: the counts
    keyed = {name: {(bin_label(r["bin"]), r["border"]): r for r in results[name].rows}
             for name in names}
    first = results[names[0]]
    entries = [(bin_label(r["bin"]), "yes" if r["border"] else "no", r["count"],
                [keyed[name][(bin_label(r["bin"]), r["border"])] for name in names])
               for r in first.rows]
    entries.append(("overall", "", first.overall["count"],
                    [results[name].overall for name in names]))
    for label, border, count, summaries in entries:
        values = "".join(
            "  " + cell.format(*(f"{s[c]:.{METRIC_DIGITS.get(c, 3)}f}" for c in columns))
            for s in summaries
        )
        lines.append(f"{label:<13}{border:<8}{count:>6}{values}".rstrip())
    return "\n".join(lines)


# The paper's metrics first, in its order; any other metric column follows in the rows' order.
_PAPER_METRICS = ("l1", "psnr", "ssim")
# How the tables name and round a metric column; others keep their key and get 3 decimals.
METRIC_LABELS = {"l1": "L1 (%)", "l1_hole": "L1 hole (%)", "psnr": "PSNR", "ssim": "SSIM",
                 "grad-ratio": "grad", "lpips": "LPIPS", "fid": "FID", "kid": "KID", "is": "IS",
                 "p-ids": "P-IDS", "u-ids": "U-IDS"}
METRIC_DIGITS = {"l1": 2, "l1_hole": 2, "psnr": 2, "ssim": 3, "lpips": 4, "fid": 2, "kid": 4}
_NOT_METRICS = ("bin", "border", "count")


def _metric_columns(summaries: Sequence[Summary]) -> list[str]:
    """Every numeric column of the summaries' rows but the group keys, the paper's first."""
    found: list[str] = []
    for summary in summaries:
        for row in [*summary.rows, summary.overall]:
            found += [key for key, value in row.items() if key not in _NOT_METRICS
                      and isinstance(value, (int, float)) and key not in found]
    return [m for m in _PAPER_METRICS if m in found] + [m for m in found
                                                         if m not in _PAPER_METRICS]


def format_paper_table(results: dict[str, Summary], labels: dict[str, str] | None = None) -> str:
    """The layout of Liu et al., ECCV 2018, Table 1: rows are methods in one block per metric,
    columns the hole-ratio bins, each with N (no border) and B (border), then ``all``.

    Args:
        results: method name -> :class:`Summary`, scored on the same images, rows in the given
            order (the paper lists the classical methods first and its own last).
        labels: display names of methods (e.g. ``{"patchmatch": "PM"}``); others keep theirs.

    Returns:
        A multi-line string: the bin labels, ``N``/``B``, the image count per column, then a
        block per metric column the summaries have (L1 %, PSNR, SSIM first), ``-`` for a
        group without images.
    """
    labels = labels or {}
    bins = list(dict.fromkeys(bin_label(r["bin"]) for s in results.values() for r in s.rows))
    bins.sort(key=lambda label: label == "other")  # the images in no bin last
    keys = [(label, border) for label in bins for border in (False, True)]  # the columns
    cells = {name: {(bin_label(r["bin"]), r["border"]): r for r in s.rows}
             for name, s in results.items()}
    first = next(iter(results))
    lines = [f"{'':<16}" + "".join(f"{label:^16}" for label in bins) + f"{'all':>8}",
             f"{'':<16}" + "{:>8}{:>8}".format("N", "B") * len(bins),
             f"{'count':<16}" + "".join(f"{_count(cells[first].get(k)):>8}" for k in keys)
             + f"{results[first].overall['count']:>8}"]
    for metric in _metric_columns(list(results.values())):
        digits = METRIC_DIGITS.get(metric, 3)
        lines.append(METRIC_LABELS.get(metric, metric))
        for name, summary in results.items():
            values = [cells[name].get(k) for k in keys] + [summary.overall]
            text = ["-" if r is None or metric not in r else f"{r[metric]:.{digits}f}"
                    for r in values]
            lines.append(f"  {labels.get(name, name)[:13]:<14}" + "".join(f"{t:>8}" for t in text))
    return "\n".join(lines)


def _count(row: dict | None) -> str:
    return "-" if row is None else str(row["count"])
