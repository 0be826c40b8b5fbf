"""Evaluate a checkpoint the way the paper's Table 1 does: the wiring behind ``evaluate.py``.

1. Test images: a folder, or a file list (one path per line, relative to ``image_root``), each
   brought to the evaluation size by centre crop or resize (``fit``).
2. Masks: a folder (with its ``manifest.json`` if it has one, or an explicit manifest), or, by
   default, a set made with ``masks.dataset.generate_mask_set`` in the report folder
   (``masks_per_bin`` per bin, with and without the border constraint; identical to
   ``python -m masks generate --size S --count-per-bin N --seed S --border both``). A rerun
   into the same report folder reuses the files it can and scores exactly ``masks_per_bin``
   masks of each requested bin and border mode, even if an earlier run made more or others.
3. Pairs: see :mod:`inpainting.metrics.evaluation.pairs`; or, with ``pair_by_name`` or
   ``lama_dir``, each image with its own mask at its own size
   (:mod:`inpainting.metrics.evaluation.paired`, :mod:`inpainting.metrics.evaluation.lama`).
4. Scores of the model and of each baseline on the same pairs, aggregated per hole-ratio bin and
   border mode, written as ``metrics.json``, ``metrics.csv``, ``per_image*.csv`` and sample
   grids.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from inpainting.data import list_images, read_file_list
from inpainting.engine.errors import UserInputError
from inpainting.engine.files import atomic_write
from inpainting.engine.images import image_size
from inpainting.metrics.evaluation.lama import LAMA_POLARITY, format_lama_table, lama_pairs
from inpainting.metrics.evaluation.paired import pair_images_by_name, pair_sizes
from inpainting.metrics.evaluation.pairs import (
    MaskRecord,
    check_mask_sizes,
    make_pairs,
    masks_from_folder,
    masks_from_manifest,
)
from inpainting.metrics.evaluation.report import (
    save_grids,
    write_metrics_csv,
    write_metrics_json,
    write_per_image_csv,
)
from inpainting.metrics.evaluation.runner import FITS, EvalSettings, PairDataset, run_evaluation
from inpainting.metrics.scoring import Summary, aggregate, format_paper_table, format_table
from inpainting.metrics.suite import (
    DEFAULT_METRICS,
    MetricSuite,
    format_set_table,
    parse_metric_names,
)
from inpainting.predict.inference import Inpainter, resolve_device
from inpainting.tasks.inpainting.checkpoint import load_model_from_checkpoint
from masks import PAPER_BINS
from masks.dataset import check_writable, default_border, generate_mask_set, plan_jobs
from masks.manifest import MANIFEST_NAME

__all__ = ["TABLES", "EvalOptions", "EvalReport", "evaluate_checkpoint", "load_baselines"]

logger = logging.getLogger(__name__)

MODEL_KEY = "model"
# The printed table's layouts: the per-bin rows of validation, Liu et al.'s Table 1, LaMa's.
TABLES: tuple[str, ...] = ("default", "paper", "lama")
# Method names in the paper's and LaMa's layouts (the paper's "PM"; the model last, as "ours").
DISPLAY_NAMES = {MODEL_KEY: "ours", "patchmatch": "PM"}
# evaluate.py's options for the size and seed of the generated masks (the border width follows
# from the size), named when the report folder holds masks made with other values.
EVAL_MASK_FLAGS: dict[str, str | None] = {
    "size": "--image-size", "seed": "--mask-seed", "border_px": None
}


@dataclass(frozen=True)
class EvalOptions:
    """Everything ``evaluate.py`` can set; see ``python evaluate.py --help``.

    ``image_size`` and ``fit`` default to the checkpoint's ``data.image_size`` and
    ``data.eval_mode``; ``polarity`` to the manifest's (else ``known_white``). ``grid_rows``
    0 writes no sample grids. ``images`` is ``None`` with ``lama_dir``; with ``lama_dir`` or
    ``pair_by_name`` each pair keeps its own size unless ``image_size`` is set. ``table`` is a
    key of :data:`TABLES`. ``metrics``: names of ``inpainting.metrics.suite.METRICS``;
    ``metric_weights``: ``NAME=PATH`` items; ``feature_cache``: the ground truth's Inception
    features (default ``~/.cache/pconv-inpainting/features``).
    """

    checkpoint: Path
    images: Path | None
    out: Path
    image_root: Path | None = None
    masks: Path | None = None
    manifest: Path | None = None
    polarity: str | None = None
    masks_per_bin: int = 100
    mask_seed: int = 0
    image_size: int | None = None
    fit: str | None = None
    bins: tuple[tuple[float, float], ...] = PAPER_BINS
    baselines: tuple[str, ...] = ()
    batch_size: int = 8
    device: str = "auto"
    workers: int = 0
    grid_rows: int = 4
    progress: bool = True
    lama_dir: Path | None = None
    pair_by_name: bool = False
    table: str = "default"
    metrics: tuple[str, ...] = DEFAULT_METRICS
    metric_weights: tuple[str, ...] = ()
    feature_cache: Path | None = None

    def __post_init__(self) -> None:
        parse_metric_names(self.metrics)  # raises UserInputError listing the valid names
        if self.table not in TABLES:
            raise ValueError(f"unknown table {self.table!r} (valid: {', '.join(TABLES)})")
        if self.lama_dir is not None and (self.images or self.masks or self.manifest):
            raise UserInputError("--lama-dir takes the images and masks from one folder; drop "
                                 "--images, --masks and --manifest")
        if self.lama_dir is None and self.images is None:
            raise UserInputError("give --images DIR|LIST (with --masks) or --lama-dir DIR")
        for name in ("masks_per_bin", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.workers < 0 or self.grid_rows < 0:
            raise ValueError("workers and grid_rows must be >= 0")
        if self.fit is not None and self.fit not in FITS:
            raise ValueError(f"unknown fit {self.fit!r} (valid: {', '.join(FITS)})")
        if self.image_size is not None and self.image_size < 11:
            raise ValueError(f"image_size must be >= 11 (the SSIM window), got {self.image_size}")


@dataclass
class EvalReport:
    """What :func:`evaluate_checkpoint` produced: method -> its means, and the table."""

    results: dict[str, Summary]
    table: str
    out: Path


def load_baselines(names: tuple[str, ...]) -> dict[str, Any]:
    """Look up baseline functions by name (``inpainting.metrics.baselines.get_baseline``).

    Raises:
        UserInputError: For an unknown name (the message lists the valid ones).
    """
    if not names:
        return {}
    from inpainting.metrics.baselines import get_baseline  # OpenCV is only needed with baselines

    return {name: get_baseline(name) for name in names}


def _list_test_images(options: EvalOptions) -> tuple[list[Path], Path]:
    if not options.images.exists():
        raise UserInputError(f"--images '{options.images}' does not exist; pass a folder of test "
                         "images or a file list")
    if options.images.is_file():
        root = options.image_root or options.images.parent
        return read_file_list(options.images, root), root
    return list_images(options.images), options.images


def _resolve_masks(
    options: EvalOptions, size: int
) -> tuple[list[MaskRecord], str]:
    """Mask records and their polarity, generating a mask set if none was given."""
    manifest = options.manifest
    if manifest is None and options.masks is not None:
        candidate = options.masks / MANIFEST_NAME
        manifest = candidate if candidate.is_file() else None
    if manifest is not None:
        records, polarity = masks_from_manifest(manifest, options.masks)
        if options.polarity is not None and options.polarity != polarity:
            raise UserInputError(f"--polarity {options.polarity} contradicts the polarity "
                             f"{polarity} of manifest '{manifest}'; drop --polarity")
        return records, polarity
    if options.masks is not None:
        return masks_from_folder(options.masks), options.polarity or "known_white"
    return _generated_masks(options, size)


def _generated_masks(options: EvalOptions, size: int) -> tuple[list[MaskRecord], str]:
    """Make (or resume) the mask set in ``out/masks`` and return exactly the requested masks.

    The folder may hold masks of an earlier run with more masks per bin or other bins, which
    its manifest keeps listing; only the ``masks_per_bin`` masks of each requested bin and
    border mode are scored, in manifest order.
    """
    folder = options.out / "masks"
    logger.info("generating %d masks per bin and border mode into %s",
                options.masks_per_bin, folder)
    bins, borders = [tuple(b) for b in options.bins], (False, True)
    generate_mask_set(folder, size, bins, options.masks_per_bin, borders=borders,
                      seed=options.mask_seed, progress=options.progress, flags=EVAL_MASK_FLAGS)
    requested = {job.file for job in plan_jobs(bins, options.masks_per_bin, borders,
                                                 options.mask_seed)}
    records, polarity = masks_from_manifest(folder / MANIFEST_NAME)
    selected = [record for record in records if record.name in requested]
    if len(selected) < len(records):
        logger.info("scoring %d of the %d masks in %s (the others are from earlier runs with "
                    "other --bins or --masks-per-bin)", len(selected), len(records), folder)
    return selected, polarity


def evaluate_checkpoint(options: EvalOptions) -> EvalReport:
    """Score a checkpoint (and baselines) per hole-ratio bin and write the report folder.

    Writes ``metrics.json``, ``metrics.csv``, ``per_image.csv`` (and ``per_image_<baseline>.csv``),
    ``samples/*.png`` (unless ``grid_rows`` is 0), ``settings.json`` and, for generated masks,
    ``masks/``.

    Raises:
        UserInputError: Bad input (a missing checkpoint, an empty folder, mismatched sizes, an
            unknown baseline...), with a one-line message.
        OSError: The report folder cannot be written (``EnvironmentProblem``).
    """
    baselines = load_baselines(options.baselines)
    device = resolve_device(options.device)
    # weight files are found (or reported missing) before any work
    suite = MetricSuite(options.metrics, options.metric_weights, device, options.feature_cache)
    model, config = load_model_from_checkpoint(options.checkpoint, device)
    inpainter = Inpainter(model, device=options.device)
    data_config = config.get("data") or {}
    fit = options.fit or data_config.get("eval_mode") or "center_crop"
    size = int(options.image_size or data_config.get("image_size") or 256)
    if options.lama_dir is not None or options.pair_by_name:
        dataset = _own_mask_pairs(options, fit, inpainter.channels)
    else:
        dataset = _pool_pairs(options, size, fit, inpainter.channels)
    predictors = {MODEL_KEY: inpainter.predict, **baselines}
    suite.begin(dataset)
    result = run_evaluation(dataset, predictors, options.bins,
                            options.batch_size, options.workers, options.grid_rows,
                            options.progress, suite)
    set_scores = suite.finish()
    results = {name: aggregate(records, options.bins, suite.image_columns)
               for name, records in result.records.items()}
    for name, scores in set_scores.items():
        results[name].overall.update(scores)  # over the whole set: the "all" row only
    settings = dataset.settings
    resolved = {"image_size": "own" if dataset.sizes else [settings.height, settings.width],
                "fit": settings.fit, "polarity": settings.polarity,
                "border_px": settings.border_px, "pairs": len(dataset)}
    _write_report(options, results, result, resolved)
    table = _format(options.table, results, result.records, suite.table_columns)
    set_table = format_set_table(set_scores, len(dataset))
    return EvalReport(results, f"{table}\n\n{set_table}" if set_table else table, options.out)


def _pool_pairs(options: EvalOptions, size: int, fit: str, channels: int) -> PairDataset:
    """Test images with a mask set (given or generated), all at one size (``.pairs``)."""
    images, image_root = _list_test_images(options)
    check_writable(options.out)
    records, polarity = _resolve_masks(options, size)
    height = width = size
    if fit == "none":  # evaluate at the masks' own size
        width, height = image_size(records[0].path)  # upright, as load_mask reads it
    check_mask_sizes(records, height, width)
    pairs = make_pairs(images, image_root, records, options.mask_seed)
    return PairDataset(pairs, EvalSettings(height, width, fit, polarity,
                                           default_border(min(height, width)), channels))


def _own_mask_pairs(options: EvalOptions, fit: str, channels: int) -> PairDataset:
    """``lama_dir`` or ``pair_by_name``: each image with its own mask, of its size; scored at
    that size, or at ``image_size`` (both cropped or resized by ``fit``)."""
    if options.lama_dir is not None:
        if options.polarity not in (None, LAMA_POLARITY):
            raise UserInputError("LaMa's masks are white = hole; drop --polarity with --lama-dir")
        pairs, polarity = lama_pairs(options.lama_dir), LAMA_POLARITY
    else:
        if options.masks is None and options.manifest is None:
            raise UserInputError("--pair-by-name needs --masks DIR, a mask per image")
        images, image_root = _list_test_images(options)
        records, polarity = _resolve_masks(options, 0)
        pairs = pair_images_by_name(images, image_root, records)
    sizes = pair_sizes(pairs, own_size=options.image_size is None)
    check_writable(options.out)
    if options.image_size is None:
        return PairDataset(pairs, EvalSettings(0, 0, "none", polarity, 0, channels, True), sizes)
    if fit == "none":
        raise UserInputError(f"--image-size {options.image_size} needs --fit center-crop or "
                             "resize; without --image-size each pair keeps its own size")
    size = options.image_size
    return PairDataset(pairs, EvalSettings(size, size, fit, polarity, default_border(size),
                                           channels, True))


def _format(table: str, results: dict[str, Summary], records: dict[str, list[dict]],
            columns: tuple[str, ...]) -> str:
    """The table of :data:`TABLES`; the paper's and LaMa's list the model last."""
    if table == "default":
        return format_table(results, columns)
    order = [name for name in results if name != MODEL_KEY] + [MODEL_KEY]
    if table == "paper":
        return format_paper_table({name: results[name] for name in order}, DISPLAY_NAMES)
    return format_lama_table({name: records[name] for name in order}, DISPLAY_NAMES)


def _write_report(options: EvalOptions, results: dict, result: Any, resolved: dict) -> None:
    out = options.out
    write_metrics_json(out / "metrics.json", str(options.checkpoint), results, MODEL_KEY)
    write_metrics_csv(out / "metrics.csv", results)
    for name, records in result.records.items():
        suffix = "" if name == MODEL_KEY else f"_{name}"
        write_per_image_csv(out / f"per_image{suffix}.csv", records, options.bins)
    save_grids(out / "samples", result.samples, options.bins)
    settings = {key: str(value) if isinstance(value, Path) else value
                for key, value in asdict(options).items()}
    settings.update(resolved)  # the values actually used, where options said "default"
    atomic_write(out / "settings.json", json.dumps(settings, indent=2) + "\n")
