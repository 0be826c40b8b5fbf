"""Reading classification run folders and NVIDIA's published figures.

A classification run folder holds ``config.yaml`` (the resolved config, with a ``classifier:``
section naming ``arch`` and ``padding``, and ``train.seed``) and ``metrics.jsonl`` (one JSON
object per validation: ``step``, ``epoch``, ``top1``, ``top5``, ``loss``, top-k in percent,
optionally ``top1_shifted``). Anything else is a ``UserInputError`` of one line.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from inpainting.engine.errors import UserInputError
from inpainting.tasks.classification.models import PADDINGS

__all__ = [
    "PADDINGS",
    "PUBLISHED_CSV",
    "PublishedRow",
    "RunResult",
    "base_arch",
    "load_published",
    "read_run",
]

# package data, installed with the wheel (setup.cfg's package_data)
PUBLISHED_CSV = resources.files(__package__) / "published.csv"


@dataclass(frozen=True)
class RunResult:
    """The best value of one metric over one run's validations.

    Attributes:
        path: the run folder.
        arch: architecture without the ``pd`` prefix.
        padding: one of :data:`PADDINGS`.
        seed: ``train.seed`` (None when the config has none).
        best: highest value of the metric, in percent.
        step: the step of that validation.
    """

    path: Path
    arch: str
    padding: str
    seed: int | None
    best: float
    step: int | None


@dataclass(frozen=True)
class PublishedRow:
    """One row of NVIDIA's table: ImageNet best top-1 (percent) of each of its runs."""

    arch: str
    padding: str
    bests: tuple[float, ...]
    average: float
    diff: float | None
    stdev: float
    pytorch_official: float | None


def base_arch(arch: str) -> str:
    """``pdresnet50`` -> ``resnet50``: NVIDIA's ``pd`` names are aliases of partial padding."""
    return arch[2:] if arch.startswith("pd") else arch


def _read_config(run: Path) -> tuple[str, str, int | None]:
    """(arch, padding, seed) from ``run/config.yaml``."""
    try:
        config = yaml.safe_load((run / "config.yaml").read_text())
    except yaml.YAMLError as error:
        raise UserInputError(f"{run}/config.yaml is not valid YAML ({error.problem})") from None
    section = config.get("classifier") if isinstance(config, dict) else None
    if not isinstance(section, dict):
        raise UserInputError(f"{run} is not a classification run: config.yaml has no "
                             "'classifier' section (an inpainting run?)")
    arch, padding = section.get("arch"), section.get("padding")
    if not isinstance(arch, str) or not arch:
        raise UserInputError(f"{run}/config.yaml: classifier.arch is missing")
    if padding not in PADDINGS:
        raise UserInputError(f"{run}/config.yaml: classifier.padding is {padding!r} "
                             f"(valid: {', '.join(PADDINGS)})")
    train = config.get("train")
    seed = train.get("seed") if isinstance(train, dict) else None
    return base_arch(arch), padding, seed if isinstance(seed, int) else None


def _best_of_log(log: Path, metric: str) -> tuple[float, int | None]:
    """(best value, its step) of ``metric`` over the JSON lines of ``log``."""
    best: tuple[float, int | None] | None = None
    for number, line in enumerate(log.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise UserInputError(f"{log}: line {number} is not JSON") from None
        if not isinstance(record, dict) or metric not in record:
            continue
        value = record[metric]
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UserInputError(f"{log}: line {number}: {metric} is {value!r}, not a number")
        if best is None or value > best[0]:
            best = float(value), record.get("step")
    if best is None:
        raise UserInputError(f"{log} has no '{metric}' value (an empty log, or a run that "
                             "never validated)")
    return best


def read_run(run: Path, metric: str = "top1") -> RunResult:
    """Read one classification run folder.

    Raises:
        UserInputError: not a folder, no ``config.yaml``/``metrics.jsonl``, not a
            classification run, or no value of ``metric`` in the log.
    """
    if not run.exists():
        raise UserInputError(f"no such run folder: {run}")
    if not run.is_dir():
        raise UserInputError(f"{run} is not a run folder")
    for name in ("config.yaml", "metrics.jsonl"):
        if not (run / name).is_file():
            raise UserInputError(f"{run} has no {name}: not a classification run folder")
    arch, padding, seed = _read_config(run)
    best, step = _best_of_log(run / "metrics.jsonl", metric)
    return RunResult(run, arch, padding, seed, best, step)


def _optional_float(text: str) -> float | None:
    return float(text) if text.strip() else None


def load_published(path: Path = PUBLISHED_CSV) -> dict[tuple[str, str], PublishedRow]:
    """NVIDIA's published figures keyed by (arch, padding); ``#`` lines are comments.

    Raises:
        UserInputError: a column is missing or a value is not a number.
    """
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    rows: dict[tuple[str, str], PublishedRow] = {}
    for row in csv.DictReader(lines):
        try:
            bests = tuple(float(row[key]) for key in sorted(row) if key.startswith("best_"))
            rows[row["arch"], row["padding"]] = PublishedRow(
                arch=row["arch"], padding=row["padding"], bests=bests,
                average=float(row["average"]), diff=_optional_float(row["diff"]),
                stdev=float(row["stdev"]),
                pytorch_official=_optional_float(row["pytorch_official"] or ""),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise UserInputError(f"{path}: bad row {dict(row)} ({error})") from None
    return rows
