"""Scoring image/mask pairs with a model and with baselines.

Every method's prediction is scored by ``inpainting.metrics.scoring.score`` (the 8-bit
composite with the known pixels, against the ground truth), the scorer training validation uses too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from inpainting.data import EVAL_MODES, load_image
from inpainting.data.io import DECODE_SIDE_MULTIPLE
from inpainting.engine.errors import UserInputError
from inpainting.metrics.evaluation.pairs import Pair
from inpainting.metrics.scoring import METRIC_NAMES, bin_index, hole_ratios, image_records, score
from inpainting.metrics.suite import MetricSuite
from masks import load_mask
from masks.dataset import default_border

__all__ = [
    "FITS",
    "EvalSettings",
    "PairDataset",
    "PairResults",
    "Predictor",
    "has_border",
    "run_evaluation",
    "size_batches",
]

logger = logging.getLogger(__name__)

# How a test image is brought to the evaluation size: the data module's eval modes, or "none"
# (the image must already have the masks' size).
FITS: tuple[str, ...] = (*EVAL_MODES, "none")

# (image (B, C, H, W) in [0, 1] with holes zeroed, mask (B, 1, H, W) 1 = known) -> prediction
Predictor = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class EvalSettings:
    """How images and masks are read.

    Attributes:
        height, width: The evaluation size; every mask must have it.
        fit: A key of :data:`FITS`: ``"center_crop"``, ``"resize"`` or ``"none"``.
        polarity: Mask files' polarity, ``"known_white"`` or ``"hole_white"``.
        border_px: Width of the border that a mask of unknown border mode must leave free of
            holes to count as a "with border" mask.
        channels: 3 for RGB models, 1 for grayscale ones.
        paired: Each mask belongs to its image (``--pair-by-name``, ``--lama-dir``) and has its
            size: it is cropped or resized with the image to ``height x width``, or, with fit
            ``"none"``, the pair keeps its own size (``height``, ``width`` and ``border_px``
            unused; the border width follows each mask's size).
    """

    height: int
    width: int
    fit: str = "center_crop"
    polarity: str = "known_white"
    border_px: int = 0
    channels: int = 3
    paired: bool = False


def has_border(mask: np.ndarray, border_px: int) -> bool:
    """True if no hole pixel of ``mask`` (1 = known) lies within ``border_px`` of the edge."""
    if border_px <= 0:
        return False
    inner = np.zeros(mask.shape, bool)
    inner[border_px:-border_px, border_px:-border_px] = True
    return bool(np.all(mask[~inner] != 0))


class PairDataset(Dataset):
    """Decoded pairs: ``{"image": uint8 (C, H, W), "mask": uint8 (1, H, W) 1 = known,
    "index": int, "border": bool, "error": str}``.

    A pair that cannot be used (undecodable file, wrong size) yields zero tensors and a
    non-empty ``error``, so the main process can stop with one clear message even when
    DataLoader workers read the files.

    ``sizes`` (``(H, W)`` per pair) is given when pairs keep their own sizes; the loader of
    :func:`run_evaluation` then batches pairs of one size together.
    """

    def __init__(self, pairs: list[Pair], settings: EvalSettings,
                 sizes: list[tuple[int, int]] | None = None) -> None:
        self.pairs = pairs
        self.settings = settings
        self.sizes = sizes

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        s = self.settings
        height, width = self.sizes[index] if self.sizes else (s.height, s.width)
        sample = {
            "image": torch.zeros(s.channels, height, width, dtype=torch.uint8),
            "mask": torch.zeros(1, height, width, dtype=torch.uint8),
            "index": index, "border": False, "error": "",
        }
        try:
            image, mask, border = self._load(self.pairs[index])
        except (OSError, ValueError) as error:
            sample["error"] = " ".join(str(error).split())
            return sample
        sample["image"] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        sample["mask"] = torch.from_numpy(mask)[None]
        sample["border"] = border
        return sample

    def _load(self, pair: Pair) -> tuple[np.ndarray, np.ndarray, bool]:
        s = self.settings
        if s.paired:
            return self._load_paired(pair)
        mask = load_mask(pair.mask.path, s.polarity)
        if mask.shape != (s.height, s.width):
            raise ValueError(f"mask '{pair.mask.path}' is {mask.shape[1]}x{mask.shape[0]}, "
                             f"expected {s.width}x{s.height} like the other masks")
        # Decoded as the training run's validation set decodes it, so both give the same numbers:
        # reduced only for a resize, where the pixel scale of the file does not matter.
        image = load_image(pair.image, reduce_to=DECODE_SIDE_MULTIPLE * s.height
                           if s.fit == "resize" else None)
        if s.fit != "none":
            image = np.ascontiguousarray(EVAL_MODES[s.fit](image, s.height))
        elif image.shape[:2] != mask.shape:
            raise ValueError(
                f"image '{pair.image}' is {image.shape[1]}x{image.shape[0]} but mask "
                f"'{pair.mask.path}' is {s.width}x{s.height}; with --fit none they must match "
                "(use --fit center-crop or --fit resize)"
            )
        if s.channels == 1:
            image = np.array(Image.fromarray(image).convert("L"))[:, :, None]
        border = pair.mask.border
        if border is None:
            border = has_border(mask, s.border_px)
        return image, mask, border


    def _load_paired(self, pair: Pair) -> tuple[np.ndarray, np.ndarray, bool]:
        """A mask of its image's size, both cropped or resized alike (or kept as they are)."""
        s = self.settings
        mask = load_mask(pair.mask.path, s.polarity)
        image = load_image(pair.image)
        if image.shape[:2] != mask.shape:
            raise ValueError(f"mask '{pair.mask.path}' is {mask.shape[1]}x{mask.shape[0]} but "
                             f"its image '{pair.image}' is {image.shape[1]}x{image.shape[0]}; "
                             "a paired mask must have its image's size")
        border_px = default_border(min(mask.shape)) if s.fit == "none" else s.border_px
        if s.fit != "none":  # the mask rides as a 4th channel (255 = known), then re-binarised
            stacked = EVAL_MODES[s.fit](np.dstack([image, mask * np.uint8(255)]), s.height)
            image = np.ascontiguousarray(stacked[:, :, :3])
            mask = (stacked[:, :, 3] >= 128).view(np.uint8)
        if s.channels == 1:
            image = np.array(Image.fromarray(image).convert("L"))[:, :, None]
        border = pair.mask.border  # from a manifest, else measured on the mask
        return image, mask, has_border(mask, border_px) if border is None else border


def size_batches(sizes: list[tuple[int, int]], batch_size: int) -> list[list[int]]:
    """Indices grouped by size (sizes in order of first appearance), ``batch_size`` at most."""
    groups: dict[tuple[int, int], list[int]] = {}
    for index, size in enumerate(sizes):
        groups.setdefault(tuple(size), []).append(index)
    return [group[start:start + batch_size] for group in groups.values()
            for start in range(0, len(group), batch_size)]


@dataclass
class PairResults:
    """Per-image results of every method and the sample images for the grids.

    Attributes:
        records: method name -> one dict per pair: ``file``, ``mask`` and the keys of
            ``inpainting.metrics.scoring.image_records`` (``hole_ratio``, ``border``, ``psnr``,
            ``ssim``, ``l1``, ``l1_hole``).
        samples: (bin index or None, border) -> up to ``grid_rows`` dicts with ``image``
            (H, W, C) uint8, ``mask`` (H, W) uint8 1 = known and ``outputs`` (method ->
            (H, W, C) uint8 composite).
    """

    records: dict[str, list[dict]] = field(default_factory=dict)
    samples: dict[tuple[int | None, bool], list[dict]] = field(default_factory=dict)


def run_evaluation(
    dataset: PairDataset,
    predictors: dict[str, Predictor],
    bins: tuple[tuple[float, float], ...],
    batch_size: int = 8,
    workers: int = 0,
    grid_rows: int = 4,
    progress: bool = True,
    suite: MetricSuite | None = None,
) -> PairResults:
    """Score every pair of ``dataset`` with every predictor.

    Args:
        dataset: The pairs.
        predictors: method name -> function ``(image (B, C, H, W) in [0, 1] with holes zeroed,
            mask (B, 1, H, W) float, 1 = known) -> (B, C, H, W) prediction``.
        bins: Hole-ratio bins ``(lo, hi]`` that group the samples kept for the grids.
        batch_size: Pairs per forward pass.
        workers: DataLoader worker processes decoding the files.
        grid_rows: Samples kept per (bin, border) group for the grids; 0 keeps none.
        progress: Show a tqdm bar.
        suite: The metrics beyond PSNR, SSIM and L1 (begun on these pairs); None scores those
            three (and ``l1_hole``).

    Returns:
        The per-image records and samples.

    Raises:
        UserInputError: The first unusable pair (undecodable file, wrong size), one line.
    """
    if dataset.sizes:  # pairs of their own sizes: a batch holds one size
        loader = DataLoader(dataset, batch_sampler=size_batches(dataset.sizes, batch_size),
                            num_workers=workers)
    else:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    result = PairResults(records={name: [] for name in predictors})
    with tqdm(total=len(dataset), unit="img", desc="evaluating", disable=not progress) as bar:
        for batch in loader:
            errors = [error for error in batch["error"] if error]
            if errors:
                raise UserInputError(errors[0])
            mask = batch["mask"].float()
            image = batch["image"].float() / 255.0
            names = [(dataset.pairs[i].name, dataset.pairs[i].mask.name)
                     for i in batch["index"].tolist()]
            masked, ratios, borders = image * mask, hole_ratios(mask), batch["border"].tolist()
            composites = {}
            if suite is not None:
                suite.observe_truth(batch["index"].tolist(), image)
            for name, predictor in predictors.items():
                metrics, merged = score(image, mask, predictor(masked, mask),
                                        suite.pixel_names if suite else METRIC_NAMES)
                if suite is not None:
                    metrics.update(suite.observe(name, batch["index"].tolist(), image, merged))
                if grid_rows > 0:
                    composites[name] = merged.mul(255.0).round().to(torch.uint8)
                records = image_records(metrics, mask, borders, ratios)
                result.records[name] += [{"file": file, "mask": mask_name, **record}
                                         for (file, mask_name), record in zip(names, records)]
            if grid_rows > 0:
                _keep_samples(result.samples, batch, ratios, composites, bins, grid_rows)
            bar.update(len(batch["index"]))
    return result


def _keep_samples(
    samples: dict, batch: dict, ratios: list[float], composites: dict[str, Tensor],
    bins: tuple[tuple[float, float], ...], grid_rows: int,
) -> None:
    for row, ratio in enumerate(ratios):
        key = (bin_index(ratio, bins), bool(batch["border"][row]))
        group = samples.setdefault(key, [])
        # a grid's rows share one size: pairs of other sizes are left out of it
        if len(group) >= grid_rows or (group and group[0]["mask"].shape
                                       != tuple(batch["mask"].shape[2:])):
            continue
        group.append({
            "image": batch["image"][row].permute(1, 2, 0).numpy(),
            "mask": batch["mask"][row, 0].numpy(),
            "outputs": {name: comp[row].permute(1, 2, 0).cpu().numpy()
                        for name, comp in composites.items()},
        })
