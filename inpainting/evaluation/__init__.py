"""Evaluation per hole-ratio bin (Liu et al., ECCV 2018, Table 1): pairing, scoring, reports.

``evaluate.py`` is a thin command line over :func:`evaluate_checkpoint`.
"""

from inpainting.evaluation.api import EvalOptions, EvalReport, evaluate_checkpoint, load_baselines
from inpainting.evaluation.pairs import (
    MaskRecord,
    Pair,
    make_pairs,
    masks_from_folder,
    masks_from_manifest,
)
from inpainting.evaluation.report import aggregate, format_table
from inpainting.evaluation.runner import FITS, EvalSettings, PairDataset, run_evaluation, score

__all__ = [
    "FITS",
    "EvalOptions",
    "EvalReport",
    "EvalSettings",
    "MaskRecord",
    "Pair",
    "PairDataset",
    "aggregate",
    "evaluate_checkpoint",
    "format_table",
    "load_baselines",
    "make_pairs",
    "masks_from_folder",
    "masks_from_manifest",
    "run_evaluation",
    "score",
]
