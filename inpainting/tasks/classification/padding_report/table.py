"""Grouping runs by (arch, padding) and printing the report's table as text."""

from __future__ import annotations

from collections.abc import Sequence

from inpainting.tasks.classification.padding_report.runs import PADDINGS, PublishedRow, RunResult
from inpainting.tasks.classification.padding_report.stats import GroupStats, group_stats

__all__ = ["format_padding_table", "group_runs"]

_NA = "n/a"


def group_runs(runs: Sequence[RunResult]) -> list[GroupStats]:
    """One :class:`GroupStats` per (arch, padding), arches sorted, paddings in table order."""
    bests: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        bests.setdefault((run.arch, run.padding), []).append(run.best)
    groups = []
    for arch in sorted({arch for arch, _ in bests}):
        zero = bests.get((arch, "zero"))
        for padding in PADDINGS:
            if (arch, padding) in bests:
                groups.append(group_stats(arch, padding, bests[arch, padding], zero))
    return groups


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return _NA
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _interval(group: GroupStats) -> str:
    if group.padding == "zero":
        return "-"
    if group.interval is None:
        return _NA
    low, high = group.interval
    return f"[{low:+.3f}, {high:+.3f}]"


def _row(group: GroupStats, published: PublishedRow | None, with_published: bool) -> list[str]:
    cells = [
        group.arch, group.padding, str(len(group.bests)),
        " ".join(f"{best:.2f}" for best in group.bests),
        _number(group.mean),
        "-" if group.padding == "zero" else _number(group.diff, signed=True),
        _number(group.stdev), _interval(group),
    ]
    if with_published:
        if published is None:
            cells += [_NA, _NA, _NA]
        else:
            diff = "-" if published.padding == "zero" else _number(published.diff, signed=True)
            cells += [f"{published.average:.3f}", diff, f"{published.stdev:.3f}"]
    return cells


def format_padding_table(groups: Sequence[GroupStats], metric: str,
                 published: dict[tuple[str, str], PublishedRow] | None) -> str:
    """The table as aligned text: one row per group, NVIDIA's figures beside when given.

    Args:
        groups: from :func:`group_runs`.
        metric: the metric's name for the header (``top1``).
        published: NVIDIA's rows by (arch, padding), or None to leave the columns out.
    """
    header = ["arch", "padding", "runs", f"best {metric} per run (%)", "mean", "diff vs zero",
              "stdev", "95% CI of diff"]
    if published is not None:
        header += ["NVIDIA mean", "NVIDIA diff", "NVIDIA stdev"]
    rows = [header] + [
        _row(group, (published or {}).get((group.arch, group.padding)), published is not None)
        for group in groups
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
