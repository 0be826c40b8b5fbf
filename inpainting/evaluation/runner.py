"""Scoring image/mask pairs with a model and with baselines.

Every method's prediction is composited with the known pixels of the input and quantised to
8 bits, ``where(mask, image, round(255 * prediction) / 255)``, exactly the image a user would
save, and scored against the ground truth over the whole image (PSNR, SSIM, L1 %, as in
Liu et al., ECCV 2018, Table 1) and over the hole only (``l1_hole``).
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
from inpainting.evaluation.pairs import Pair
from inpainting.metrics import l1, psnr, ssim, to_uint8_levels
from masks import load_mask

__all__ = [
    "FITS",
    "EvalResult",
    "EvalSettings",
    "PairDataset",
    "Predictor",
    "bin_index",
    "has_border",
    "run_evaluation",
    "score",
]

logger = logging.getLogger(__name__)

# How a test image is brought to the evaluation size: the data module's eval modes, or "none"
# (the image must already have the masks' size).
FITS: tuple[str, ...] = (*EVAL_MODES, "none")
METRIC_NAMES: tuple[str, ...] = ("psnr", "ssim", "l1", "l1_hole")

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
    """

    height: int
    width: int
    fit: str = "center_crop"
    polarity: str = "known_white"
    border_px: int = 0
    channels: int = 3


def has_border(mask: np.ndarray, border_px: int) -> bool:
    """True if no hole pixel of ``mask`` (1 = known) lies within ``border_px`` of the edge."""
    if border_px <= 0:
        return False
    inner = np.zeros(mask.shape, bool)
    inner[border_px:-border_px, border_px:-border_px] = True
    return bool(np.all(mask[~inner] != 0))


def bin_index(ratio: float, bins: tuple[tuple[float, float], ...]) -> int | None:
    """Index of the bin ``(lo, hi]`` holding ``ratio``, or ``None`` when no bin does."""
    for index, (lo, hi) in enumerate(bins):
        if lo < ratio <= hi:
            return index
    return None


class PairDataset(Dataset):
    """Decoded pairs: ``{"image": uint8 (C, H, W), "mask": uint8 (1, H, W) 1 = known,
    "index": int, "hole_ratio": float, "border": bool, "error": str}``.

    A pair that cannot be used (undecodable file, wrong size) yields zero tensors and a
    non-empty ``error``, so the main process can stop with one clear message even when
    DataLoader workers read the files.
    """

    def __init__(self, pairs: list[Pair], settings: EvalSettings) -> None:
        self.pairs = pairs
        self.settings = settings

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        s = self.settings
        sample = {
            "image": torch.zeros(s.channels, s.height, s.width, dtype=torch.uint8),
            "mask": torch.zeros(1, s.height, s.width, dtype=torch.uint8),
            "index": index, "hole_ratio": 0.0, "border": False, "error": "",
        }
        try:
            image, mask, border = self._load(self.pairs[index])
        except (OSError, ValueError) as error:
            sample["error"] = " ".join(str(error).split())
            return sample
        sample["image"] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        sample["mask"] = torch.from_numpy(mask)[None]
        sample["hole_ratio"] = float(np.count_nonzero(mask == 0) / mask.size)
        sample["border"] = border
        return sample

    def _load(self, pair: Pair) -> tuple[np.ndarray, np.ndarray, bool]:
        s = self.settings
        mask = load_mask(pair.mask.path, s.polarity)
        if mask.shape != (s.height, s.width):
            raise ValueError(f"mask '{pair.mask.path}' is {mask.shape[1]}x{mask.shape[0]}, "
                             f"expected {s.width}x{s.height} like the other masks")
        image = load_image(pair.image)
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


def score(image: Tensor, mask: Tensor, prediction: Tensor) -> tuple[dict[str, Tensor], Tensor]:
    """Metrics of the 8-bit composite of ``prediction`` against ``image``.

    Args:
        image: (B, C, H, W) uint8 ground truth.
        mask: (B, 1, H, W), 1 = known, 0 = hole.
        prediction: (B, C, H, W) float prediction (values outside [0, 1] are clipped).

    Returns:
        ``(metrics, composite)``: ``{"psnr", "ssim", "l1", "l1_hole"}`` -> (B,) float tensors
        (L1 in percent; ``l1_hole`` over hole pixels only), and the (B, C, H, W) uint8 composite.
    """
    device = prediction.device
    target = image.to(device, torch.float32) / 255.0
    known = mask.to(device, torch.float32)
    composite = torch.where(known.bool(), target, to_uint8_levels(prediction.float()))
    metrics = {
        "psnr": psnr(composite, target),
        "ssim": ssim(composite, target),
        "l1": l1(composite, target),
        "l1_hole": l1(composite, target, known),
    }
    return metrics, composite.mul(255.0).round().to(torch.uint8)


@dataclass
class EvalResult:
    """Per-image results of every method and the sample images for the grids.

    Attributes:
        records: method name -> one dict per pair (``file``, ``mask``, ``bin`` (index or
            ``None``), ``border``, ``hole_ratio``, ``psnr``, ``ssim``, ``l1``, ``l1_hole``).
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
) -> EvalResult:
    """Score every pair of ``dataset`` with every predictor.

    Args:
        dataset: The pairs.
        predictors: method name -> function ``(image (B, C, H, W) in [0, 1] with holes zeroed,
            mask (B, 1, H, W) float, 1 = known) -> (B, C, H, W) prediction``.
        bins: Hole-ratio bins ``(lo, hi]`` for the bin index of each pair.
        batch_size: Pairs per forward pass.
        workers: DataLoader worker processes decoding the files.
        grid_rows: Samples kept per (bin, border) group for the grids; 0 keeps none.
        progress: Show a tqdm bar.

    Returns:
        The per-image records and samples.

    Raises:
        ValueError: The first unusable pair (undecodable file, wrong size), one line.
    """
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    result = EvalResult(records={name: [] for name in predictors})
    with tqdm(total=len(dataset), unit="img", desc="evaluating", disable=not progress) as bar:
        for batch in loader:
            errors = [error for error in batch["error"] if error]
            if errors:
                raise ValueError(errors[0])
            mask = batch["mask"].float()
            masked = batch["image"].float() / 255.0 * mask
            composites = {}
            for name, predictor in predictors.items():
                metrics, composites[name] = score(batch["image"], mask, predictor(masked, mask))
                _append_records(result.records[name], batch, dataset, metrics, bins)
            if grid_rows > 0:
                _keep_samples(result.samples, batch, composites, bins, grid_rows)
            bar.update(len(batch["index"]))
    return result


def _append_records(
    records: list[dict], batch: dict, dataset: PairDataset, metrics: dict[str, Tensor],
    bins: tuple[tuple[float, float], ...],
) -> None:
    values = {name: metrics[name].double().cpu().tolist() for name in METRIC_NAMES}
    for row, index in enumerate(batch["index"].tolist()):
        pair = dataset.pairs[index]
        ratio = float(batch["hole_ratio"][row])
        records.append({
            "file": pair.name, "mask": pair.mask.name, "bin": bin_index(ratio, bins),
            "border": bool(batch["border"][row]), "hole_ratio": ratio,
            **{name: values[name][row] for name in METRIC_NAMES},
        })


def _keep_samples(
    samples: dict, batch: dict, composites: dict[str, Tensor],
    bins: tuple[tuple[float, float], ...], grid_rows: int,
) -> None:
    for row in range(len(batch["index"])):
        key = (bin_index(float(batch["hole_ratio"][row]), bins), bool(batch["border"][row]))
        group = samples.setdefault(key, [])
        if len(group) >= grid_rows:
            continue
        group.append({
            "image": batch["image"][row].permute(1, 2, 0).numpy(),
            "mask": batch["mask"][row, 0].numpy(),
            "outputs": {name: comp[row].permute(1, 2, 0).cpu().numpy()
                        for name, comp in composites.items()},
        })
