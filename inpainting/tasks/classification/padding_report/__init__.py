"""The table of the "Partial Convolution based Padding" report, from our classification runs.

``python -m inpainting.tasks.classification.padding_report RUN [RUN ...]`` groups runs by
(arch, padding), takes each run's best top-1 and prints per group: runs, mean, difference with zero
padding, sample standard
deviation and a 95 % Welch interval of the difference, beside NVIDIA's published ImageNet
figures (``published.csv``, package data beside ``runs.py``); ``--plot`` draws it.

Modules: ``stats`` (t quantile, Welch interval), ``runs`` (run folders, the published CSV),
``table`` (grouping, text), ``plot`` (Pillow picture), ``__main__`` (command line).
"""

from inpainting.tasks.classification.padding_report.runs import (
    PADDINGS,
    PUBLISHED_CSV,
    PublishedRow,
    RunResult,
    load_published,
    read_run,
)
from inpainting.tasks.classification.padding_report.stats import (
    GroupStats,
    student_t_quantile,
    welch_interval,
)
from inpainting.tasks.classification.padding_report.table import format_padding_table, group_runs

__all__ = [
    "PADDINGS",
    "PUBLISHED_CSV",
    "GroupStats",
    "PublishedRow",
    "RunResult",
    "format_padding_table",
    "group_runs",
    "load_published",
    "read_run",
    "student_t_quantile",
    "welch_interval",
]
