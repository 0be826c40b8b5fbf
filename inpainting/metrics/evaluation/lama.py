"""LaMa's evaluation folders and table (Suvorov et al., "Resolution-robust Large Mask
Inpainting with Fourier Convolutions", WACV 2022; advimman/lama).

**Folders** (``evaluate.py --lama-dir DIR``), as LaMa's ``bin/gen_mask_dataset.py`` writes them
and its ``saicinpainting/evaluation/data.py`` reads them: images and masks side by side, e.g.
``x_crop000.png`` beside ``x_crop000_mask000.png``, searched recursively. A ``.png`` whose name
holds ``_mask`` is a mask; its image is the name before the last ``_mask`` plus ``.png`` (LaMa's
evaluation configs) or else ``.jpg`` (LaMa's reader's default). Masks are white = hole and are
converted here, once, to this project's 1 = known. Each image may have several masks.

**Table** (``--table lama``), as LaMa's ``bin/evaluate_predicts.py`` prints it: per method,
a row ``total`` and one per hole-ratio bucket ``0-10%``, ``10-20%``, ..., ``90-100%`` (LaMa's
``InpaintingEvaluator``: ten buckets ``[lo, hi)``, a ratio of 1 in the last), and per metric
``mean ± std`` over the images (population std, as numpy's). LaMa's own metrics are SSIM, LPIPS
and FID; the columns here are the metrics the records carry.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inpainting.engine.errors import UserInputError
from inpainting.metrics.evaluation.pairs import MaskRecord, Pair
from inpainting.metrics.scoring import METRIC_DIGITS, METRIC_LABELS

__all__ = ["LAMA_POLARITY", "format_lama_table", "lama_bucket", "lama_pairs"]

LAMA_POLARITY = "hole_white"
_MASK_MARK = "_mask"
_IMAGE_SUFFIXES = (".png", ".jpg")
_BUCKET_EDGES = np.linspace(0.0, 1.0, 11)  # LaMa's np.linspace(0, 1, bins + 1), bins = 10
_NOT_METRICS = ("file", "mask", "hole_ratio", "border")


def lama_pairs(folder: Path) -> list[Pair]:
    """Every mask under ``folder`` with its image (the module docstring's names), sorted.

    Raises:
        UserInputError: The folder is missing or has no mask, or a mask has no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserInputError(f"--lama-dir '{folder}' is not a folder; pass a folder of LaMa's "
                             "images and their *_maskNNN.png masks")
    masks = sorted(path for path in folder.rglob("*.png")
                   if _MASK_MARK in path.stem and not path.name.startswith("."))
    if not masks:
        raise UserInputError(f"no masks (*{_MASK_MARK}*.png) in --lama-dir '{folder}'")
    pairs = []
    for mask in masks:
        stem = mask.stem.rsplit(_MASK_MARK, 1)[0]
        candidates = [mask.with_name(stem + suffix) for suffix in _IMAGE_SUFFIXES]
        image = next((path for path in candidates if path.is_file()), None)
        if image is None:
            raise UserInputError(f"mask '{mask}' has no image: expected '{candidates[0].name}' "
                                 f"(or '{candidates[1].name}') beside it")
        pairs.append(Pair(image, image.relative_to(folder).as_posix(),
                          MaskRecord(mask, mask.relative_to(folder).as_posix())))
    return pairs


def lama_bucket(ratio: float) -> int:
    """LaMa's bucket of a hole ratio: 0 for [0, 0.1), ..., 9 for [0.9, 1]."""
    return min(int(np.searchsorted(_BUCKET_EDGES, ratio, side="right")) - 1, 9)


def _bucket_label(index: int) -> str:
    return f"{10 * index}-{10 * (index + 1)}%"


def _metric_columns(records: list[dict]) -> list[str]:
    found: list[str] = []
    for record in records:
        found += [key for key, value in record.items() if key not in _NOT_METRICS
                  and isinstance(value, (int, float)) and not isinstance(value, bool)
                  and key not in found]
    return found


def _cell(records: list[dict], metric: str) -> str:
    """``mean ± std`` of a metric; ``l1_hole`` only over images with holes, as everywhere."""
    chosen = [r for r in records if r["hole_ratio"] > 0] if metric == "l1_hole" else records
    values = np.array([r[metric] for r in chosen], dtype=np.float64)
    if values.size == 0:
        return "-"
    digits = METRIC_DIGITS.get(metric, 3)
    mean = values.mean()
    if not np.isfinite(mean):  # an inf PSNR (a perfect image) or a NaN: no spread to show
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {values.std():.{digits}f}"


def format_lama_table(records: dict[str, list[dict]], labels: dict[str, str] | None = None
                      ) -> str:
    """LaMa's layout (module docstring): a block per method, rows ``total`` and the non-empty
    hole-ratio buckets, columns ``count`` and ``mean ± std`` per metric.

    Args:
        records: method name -> per-image dicts with ``hole_ratio`` and the metrics.
        labels: display names of methods; others keep theirs.

    Returns:
        A multi-line string.
    """
    labels = labels or {}
    blocks = []
    for name, rows in records.items():
        metrics = _metric_columns(rows)
        lines = [f"{labels.get(name, name):<10}{'count':>7}"
                 + "".join(f"  {METRIC_LABELS.get(m, m):>17}" for m in metrics)]
        groups: dict[str, list[dict]] = {"total": rows}
        for index in sorted({lama_bucket(r["hole_ratio"]) for r in rows}):
            groups[_bucket_label(index)] = [r for r in rows
                                            if lama_bucket(r["hole_ratio"]) == index]
        for label, group in groups.items():
            lines.append(f"{label:<10}{len(group):>7}"
                         + "".join(f"  {_cell(group, m):>17}" for m in metrics))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
