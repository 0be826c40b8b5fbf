"""Evaluation per hole-ratio bin (Liu et al., ECCV 2018, Table 1): pairing, running, reports.

``evaluate.py`` is a thin command line over :func:`evaluate_checkpoint`. The scorer, the
aggregate and the table are ``inpainting.metrics.scoring``'s, shared with training validation.
"""

from inpainting.metrics.evaluation.api import (
    TABLES,
    EvalOptions,
    EvalReport,
    evaluate_checkpoint,
    load_baselines,
)
from inpainting.metrics.evaluation.pairs import (
    MaskRecord,
    Pair,
    make_pairs,
    masks_from_folder,
    masks_from_manifest,
)
from inpainting.metrics.evaluation.runner import FITS, EvalSettings, PairDataset, run_evaluation

__all__ = [
    "FITS",
    "TABLES",
    "EvalOptions",
    "EvalReport",
    "EvalSettings",
    "MaskRecord",
    "Pair",
    "PairDataset",
    "evaluate_checkpoint",
    "load_baselines",
    "make_pairs",
    "masks_from_folder",
    "masks_from_manifest",
    "run_evaluation",
]
