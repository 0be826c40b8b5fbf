"""The metrics ``evaluate.py --metrics`` can compute, and the suite that computes them.

Per image, aggregated per hole-ratio bin like the paper's table: ``l1`` (with ``l1_hole``),
``psnr``, ``ssim`` and ``grad-ratio`` (``inpainting.metrics.scoring``, no weights) and ``lpips``
(``.perceptual``). Over the whole set only (``.fid``): ``fid``, ``kid``, ``is``, ``p-ids`` and
``u-ids``, from Inception features (``.inception``); the ground truth's are cached on disk
(``.features``). Weights are found offline (``.weights``), before any work.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from inpainting.engine.errors import EnvironmentProblem, UserInputError
from inpainting.metrics import fid
from inpainting.metrics.features import FeatureCache, default_cache_dir, image_list_key
from inpainting.metrics.inception import FEATURES, LOGITS, PREPROCESSING, build_inception
from inpainting.metrics.perceptual import MIN_SIDE, build_lpips
from inpainting.metrics.scoring import METRIC_DIGITS, METRIC_LABELS
from inpainting.metrics.weights import WEIGHT_FILES, parse_metric_weights, resolve_weights

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "Metric",
    "MetricSuite",
    "format_set_table",
    "parse_metric_names",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Metric:
    """One name of ``--metrics``: per ``image`` or over the whole ``set``, and the weight files
    it needs (``inpainting.metrics.weights``). docs/evaluation.md says what each prefers."""

    name: str
    kind: str
    weights: tuple[str, ...]


METRICS: dict[str, Metric] = {metric.name: metric for metric in (
    Metric("l1", "image", ()),
    Metric("psnr", "image", ()),
    Metric("ssim", "image", ()),
    Metric("lpips", "image", ("vgg16", "lpips-vgg")),
    Metric("fid", "set", ("inception",)),
    Metric("kid", "set", ("inception",)),
    Metric("is", "set", ("inception",)),
    Metric("p-ids", "set", ("inception",)),
    Metric("u-ids", "set", ("inception",)),
    Metric("grad-ratio", "image", ()),
)}
DEFAULT_METRICS: tuple[str, ...] = ("l1", "psnr", "ssim", "grad-ratio")
# Column order of the table and the CSV files: today's columns first, as before.
_IMAGE_COLUMNS = ("psnr", "ssim", "l1", "l1_hole", "grad-ratio", "lpips")
_TABLE_COLUMNS = ("l1", "psnr", "ssim", "grad-ratio", "lpips")
_SET_COLUMNS = tuple(name for name, metric in METRICS.items() if metric.kind == "set")
_NEEDS_TRUTH = {"fid", "kid", "p-ids", "u-ids"}  # IS looks at the fakes only
FEATURE_SIZE = 2048


def parse_metric_names(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"l1,psnr,fid"`` (or a sequence) -> the names, without repeats.

    Raises:
        UserInputError: an unknown name or an empty list (the message lists the valid names).
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(dict.fromkeys(item.strip().lower() for item in items if item.strip()))
    valid = ", ".join(METRICS)
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        what = f"unknown metric {unknown[0]!r}" if unknown else "no metric given"
        raise UserInputError(f"{what} (valid: {valid})")
    return names


class MetricSuite:
    """The requested metrics for one evaluation: weights resolved and networks built at once.

    Call :meth:`begin` with the pairs, then per batch :meth:`observe_truth` and, for every
    method, :meth:`observe`; :meth:`finish` gives each method's set scores.

    Args:
        names: Metric names (:func:`parse_metric_names`).
        weights: ``NAME=PATH`` items of ``--metric-weights``.
        device: Where the networks run.
        cache_dir: The feature cache folder (default: :func:`default_cache_dir`).

    Raises:
        UserInputError: an unknown metric, a bad ``--metric-weights`` item or weight file.
        EnvironmentProblem: a weight file or a package of the ``metrics`` extra is missing.
    """

    def __init__(self, names: Sequence[str], weights: Sequence[str] = (),
                 device: str | torch.device = "cpu", cache_dir: Path | None = None) -> None:
        self.names = parse_metric_names(names)
        self.device = torch.device(device)
        self.cache = FeatureCache(cache_dir or default_cache_dir())
        given = parse_metric_weights(weights)
        users: dict[str, list[str]] = {}
        for name in self.names:
            for weight in METRICS[name].weights:
                users.setdefault(weight, []).append(name)
        # every file before any network: missing files are reported before minutes of work
        self.weights, missing = {}, []
        for weight, metrics in users.items():
            try:
                self.weights[weight] = resolve_weights(weight, given.get(weight),
                                                       ", ".join(metrics))
            except EnvironmentProblem as error:
                missing.append((weight, error))
        if missing:
            others = "".join(f"; also missing {WEIGHT_FILES[w].filename} (--metric-weights "
                             f"{w}=PATH)" for w, _ in missing[1:])
            raise EnvironmentProblem(f"{missing[0][1]}{others}")
        unused = sorted(set(given) - set(users))
        if unused:
            logger.warning("--metric-weights %s: no requested metric uses it", ", ".join(unused))
        self.lpips = (build_lpips(self.weights["vgg16"], self.weights["lpips-vgg"]).to(device)
                      if "lpips" in self.names else None)
        self.inception = (build_inception(self.weights["inception"]).to(device)
                          if "inception" in self.weights else None)
        self.image_columns = tuple(
            column for column in _IMAGE_COLUMNS
            if column.removesuffix("_hole") in self.names)
        self.set_columns = tuple(name for name in _SET_COLUMNS if name in self.names)
        self._truth_key: dict | None = None
        self._from_cache = False

    @property
    def table_columns(self) -> tuple[str, ...]:
        """The per-image columns of the printed table: L1, PSNR, SSIM first, as the paper."""
        return tuple(name for name in _TABLE_COLUMNS if name in self.names)

    @property
    def pixel_names(self) -> tuple[str, ...]:
        """The columns ``inpainting.metrics.scoring.score`` computes."""
        return tuple(name for name in self.image_columns if name != "lpips")

    def begin(self, dataset: Any) -> None:
        """Prepare for the pairs of ``dataset``, a ``PairDataset`` of
        ``inpainting.metrics.evaluation.runner`` (its ``pairs``, ``settings`` and ``sizes``).

        Loads the ground truth's cached features when a set metric needs them.

        Raises:
            UserInputError: ``lpips`` is asked for images below 16 pixels.
        """
        settings, images = dataset.settings, [pair.image for pair in dataset.pairs]
        sides = [side for size in dataset.sizes for side in size] if dataset.sizes else [
            settings.height, settings.width]
        if self.lpips is not None and min(sides) < MIN_SIDE:
            raise UserInputError(f"lpips needs images of at least {MIN_SIDE}x{MIN_SIDE}, an "
                                 f"evaluated image has a side of {min(sides)}; drop lpips from "
                                 "--metrics or evaluate larger images")
        distinct = list(dict.fromkeys(images))
        index = {image: number for number, image in enumerate(distinct)}
        self._distinct, self._pair_image = distinct, [index[image] for image in images]
        self._fakes: dict[str, dict[str, dict[int, Tensor]]] = {}
        self._truth: dict[int, Tensor] = {}
        self._truth_key, self._from_cache = None, False
        if not _NEEDS_TRUTH & set(self.set_columns):
            return
        entries = image_list_key(distinct)
        self._truth_key = {  # own-size pairs: height = width = 0, each image's size kept
            "images": entries, "height": settings.height, "width": settings.width,
            "fit": settings.fit, "channels": settings.channels, "paired": settings.paired,
            "preprocessing": PREPROCESSING, "output": FEATURES,
            "weights_sha256": self.weights["inception"].sha256, "device": self.device.type,
        }
        cached = self.cache.load(self._truth_key)
        if cached is not None and len(cached) == len(entries):
            order = {entry[0]: row for row, entry in enumerate(entries)}
            self._truth = {number: cached[order[str(Path(image).resolve())]]
                           for number, image in enumerate(distinct)}
            self._from_cache = True
            logger.info("ground-truth Inception features of %d images from the cache %s",
                        len(distinct), self.cache.path(self._truth_key))

    def observe_truth(self, indices: Sequence[int], image: Tensor) -> None:
        """Features of the batch's ground truths not seen yet (cache misses only).

        Args:
            indices: The pairs' indices. image: (B, C, H, W) in [0, 1], their ground truths.
        """
        if self._truth_key is None:
            return
        rows: dict[int, int] = {}
        for row, pair in enumerate(indices):
            number = self._pair_image[int(pair)]
            if number not in self._truth and number not in rows:
                rows[number] = row
        if rows:
            features = self.inception(image[list(rows.values())].to(self.device))[FEATURES]
            self._truth.update(zip(rows, features.float().cpu()))

    def observe(self, method: str, indices: Sequence[int], image: Tensor,
                merged: Tensor) -> dict[str, Tensor]:
        """Score one method's composites: per-image metrics now, set features for later.

        Args:
            method: Its name. indices: The pairs' indices.
            image: (B, C, H, W) in [0, 1], the ground truths.
            merged: (B, C, H, W) in [0, 1], the 8-bit composites.

        Returns:
            ``{"lpips": (B,)}`` when asked, else an empty dict.
        """
        scores = {}
        if self.lpips is not None:
            scores["lpips"] = self.lpips(merged.to(self.device), image.to(self.device))
        if self.inception is not None:
            outputs = self.inception(merged.to(self.device))
            stored = self._fakes.setdefault(method, {FEATURES: {}, LOGITS: {}})
            for output in stored:
                if output == LOGITS and "is" in self.set_columns or (
                        output == FEATURES and self._truth_key is not None):
                    stored[output].update(zip((int(i) for i in indices),
                                              outputs[output].float().cpu()))
        return scores

    def finish(self) -> dict[str, dict[str, float]]:
        """Each method's set scores (``fid``, ``kid``, ``is``, ``p-ids``, ``u-ids``, as asked);
        stores the ground truth's features in the cache when they were computed here."""
        if self._truth_key is not None and not self._from_cache:
            self._save_truth()
        if {"fid", "p-ids", "u-ids"} & set(self.set_columns) and (
                len(self._pair_image) < FEATURE_SIZE):  # KID is unbiased, IS has no covariance
            logger.warning("%d pairs, fewer than the %d Inception features: FID is biased and "
                           "P-IDS/U-IDS are 0 (real and fake are then always linearly "
                           "separable); use thousands of pairs", len(self._pair_image),
                           FEATURE_SIZE)
        results = {}
        for method, stored in self._fakes.items():
            scores: dict[str, float] = {}
            if "is" in self.set_columns:
                logits = stored[LOGITS]
                scores["is"] = fid.inception_score(torch.stack([logits[i] for i in sorted(logits)]))
            if self._truth_key is not None:
                pairs = sorted(stored[FEATURES])
                fake = torch.stack([stored[FEATURES][i] for i in pairs])
                real = torch.stack([self._truth[self._pair_image[i]] for i in pairs])
                scores.update(_truth_scores(real, fake, self.set_columns))
            results[method] = {name: scores[name] for name in self.set_columns}
        return results

    def _save_truth(self) -> None:
        """Write the features in the key's image order (sorted paths), if every image has them."""
        number_of = {str(Path(image).resolve()): n for n, image in enumerate(self._distinct)}
        numbers = [number_of[entry[0]] for entry in self._truth_key["images"]]
        if all(n in self._truth for n in numbers):
            path = self.cache.save(self._truth_key,
                                   torch.stack([self._truth[n] for n in numbers]))
            if path is not None:
                logger.info("ground-truth Inception features cached in %s", path)


def _truth_scores(real: Tensor, fake: Tensor, names: Sequence[str]) -> dict[str, float]:
    """The set scores that compare the fakes with their ground truths."""
    count = len(real)
    if count < 2:
        raise UserInputError(f"{', '.join(names)} need at least 2 image/mask pairs, got {count}")
    scores = {}
    if "fid" in names:
        scores["fid"] = fid.frechet_distance(real, fake)
    if "kid" in names:
        scores["kid"] = fid.kernel_inception_distance(real, fake)
    if "p-ids" in names or "u-ids" in names:
        scores["p-ids"], scores["u-ids"] = fid.inception_discriminative_scores(real, fake)
    return scores


def format_set_table(scores: dict[str, dict[str, float]], pairs: int) -> str:
    """The set scores of every method, one line each (empty when none were asked).

    Args:
        scores: method -> :meth:`MetricSuite.finish`'s scores. pairs: How many pairs.
    """
    names = list(next(iter(scores.values()), {}))
    if not names:
        return ""
    width = max(len(method) for method in scores) + 2
    lines = [f"over all {pairs} pairs (FID, KID, IS and IDS compare distributions: a bin has "
             "too few images for a stable 2048-d covariance)",
             f"{'':<{width}}" + "".join(f"{METRIC_LABELS[name]:>9}" for name in names)]
    for method, values in scores.items():
        cells = "".join(f"{values[name]:>9.{METRIC_DIGITS.get(name, 3)}f}" for name in names)
        lines.append(f"{method:<{width}}{cells}")
    return "\n".join(lines)
