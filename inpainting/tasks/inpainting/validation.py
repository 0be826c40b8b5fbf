"""Validation on fixed masks: the table of ``inpainting.metrics.scoring`` per step, and sample
grids.

The model, the masked input (holes black, the trivial baseline a trained model must beat) and
optionally classical baselines (``inpainting.metrics.baselines``, e.g. OpenCV Navier-Stokes)
on the same pairs are scored and aggregated exactly as ``evaluate.py`` scores a checkpoint
(``inpainting.metrics.scoring``: 8-bit composite, PSNR / SSIM / L1 % per hole-ratio bin
``(lo, hi]``, Liu et al., ECCV 2018, Table 1), so the table the trainer logs reads like the one
``evaluate.py`` prints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision.utils import make_grid, save_image

from inpainting.engine.signals import pause_point
from inpainting.engine.task import autocast_context
from inpainting.metrics.baselines import get_baseline
from inpainting.metrics.scoring import (
    MASKED_INPUT,
    METRIC_NAMES,
    Summary,
    aggregate,
    composite,
    format_table,
    hole_ratios,
    image_records,
    masked_input,
    score,
)

__all__ = ["MODEL", "ValidationResult", "evaluate", "grid_samples", "inpaint_samples",
           "sample_grid", "spread_indices", "write_grid"]

MODEL = "model"


@dataclass
class ValidationResult:
    """The scores of one validation pass.

    Attributes:
        scores: method -> :class:`~inpainting.metrics.scoring.Summary`, for ``"model"``,
            ``"masked input"`` and each baseline scored beside them.
        samples: the kept samples as ``(image, mask, output)`` CPU tensors for a grid.
        bad_files: undecodable files skipped (the next decodable one took their place).
    """

    scores: dict[str, Summary]
    samples: tuple[Tensor, Tensor, Tensor] | None = None
    bad_files: int = 0
    columns: tuple[str, ...] = ("l1", "psnr", "ssim")  # the table's metrics (train.val_metrics)

    @property
    def overall(self) -> dict[str, float]:
        """The model's overall means (``psnr``, ``ssim``, ``l1``, ``l1_hole``, ``count``)."""
        return self.scores[MODEL].overall

    def table(self) -> str:
        """The table of ``inpainting.metrics.scoring.format_table``: model, masked input,
        baselines."""
        return format_table(self.scores, self.columns)

    def write_scalars(self, writer: Any, step: int) -> None:
        """TensorBoard: ``val/psnr|ssim|l1|l1_hole``, ``val/psnr_masked_input`` and one
        ``val_bins/<metric>_<lo>-<hi>`` per non-empty bin (the validation masks have one border
        mode, so a bin has one row)."""
        for key in dict.fromkeys(("psnr", "ssim", "l1", "l1_hole", *self.columns)):
            writer.add_scalar(f"val/{key}", self.overall[key], step)
        writer.add_scalar("val/psnr_masked_input", self.scores[MASKED_INPUT].overall["psnr"], step)
        for row in self.scores[MODEL].rows:
            if row["bin"] is not None:
                lo, hi = row["bin"]
                for key in ("psnr", "ssim", "l1"):
                    writer.add_scalar(f"val_bins/{key}_{lo:g}-{hi:g}", row[key], step)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    bins: Sequence[tuple[float, float]],
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    keep_samples: int = 0,
    border: bool = False,
    should_stop: Callable[[], bool] | None = None,
    baselines: Sequence[str] = (),
    metrics: Sequence[str] = ("l1", "psnr", "ssim"),
) -> ValidationResult | None:
    """Score ``model`` and the masked input over a validation loader of ``{"image", "mask"}``.

    Args:
        model: maps ``(image * mask, mask)`` to ``(output, final_mask)``; images (B, 3, H, W)
            in [0, 1], masks (B, 1, H, W), 1 = known, 0 = hole.
        loader: the validation batches (fixed masks).
        device: where the model is.
        bins: hole-ratio bins ``(lo, hi]`` of the table rows.
        autocast_dtype: run the model under autocast to this dtype (None: fp32).
        channels_last: feed channels-last inputs.
        keep_samples: keep this many samples for ``sample_grid``, spread evenly over the
            loader (``spread_indices``) so that the grid shows several images and bins.
        border: whether the masks keep their holes away from the edge (the table's border
            column).
        should_stop: asked after every batch; True aborts the pass (a stop signal).
        baselines: names of ``inpainting.metrics.baselines.BASELINES`` scored on the same pairs.
        metrics: the table's per-image metrics (``l1``, ``psnr``, ``ssim``, ``grad-ratio``);
            PSNR, SSIM, L1 and the hole's L1 are always computed (logs, ``best.pt``).

    Returns:
        The scores, or None when ``should_stop`` aborted the pass (the model's train/eval mode
        is restored either way).

    Raises:
        ValueError: the loader yielded no batches.
    """
    was_training = model.training
    model.eval()
    methods = {name: get_baseline(name) for name in baselines}
    records: dict[str, list[dict]] = {MODEL: [], MASKED_INPUT: [], **{n: [] for n in methods}}
    kept: list[tuple[Tensor, Tensor, Tensor]] = []
    picks = spread_indices(len(loader.dataset), keep_samples) if keep_samples else []
    seen = bad_files = 0
    autocast = autocast_context(device, autocast_dtype)
    names = tuple(dict.fromkeys((*METRIC_NAMES, *metrics)))
    for batch in loader:
        if should_stop is not None and should_stop():
            model.train(was_training)
            return None
        image = batch["image"].to(device, non_blocking=True)
        mask = batch["mask"].to(device, non_blocking=True)
        output = _inpaint(model, image, mask, autocast, channels_last)
        ratios = hole_ratios(mask)  # one host sync per batch, shared by both methods
        predictions = {MODEL: output, MASKED_INPUT: masked_input(image, mask)}
        predictions.update((name, fill(image * mask, mask)) for name, fill in methods.items())
        for name, prediction in predictions.items():
            scores, _ = score(image, mask, prediction, names)
            records[name] += image_records(scores, mask, border, ratios)
        rows = [i - seen for i in picks if seen <= i < seen + len(image)]
        if rows:
            kept.append((image[rows].cpu(), mask[rows].cpu(), output[rows].cpu()))
        seen += len(image)
        bad_files += int(batch["bad_files"].sum()) if "bad_files" in batch else 0
        pause_point("validation_batch")
    model.train(was_training)
    if not seen:
        raise ValueError("the validation loader yielded no batches")
    samples = None
    if keep_samples and kept:
        samples = tuple(torch.cat([k[i] for k in kept])[:keep_samples] for i in range(3))
    return ValidationResult({name: aggregate(r, bins, names) for name, r in records.items()},
                            samples, bad_files, tuple(metrics))


def _inpaint(model: nn.Module, image: Tensor, mask: Tensor,
             autocast: contextlib.AbstractContextManager, channels_last: bool) -> Tensor:
    """The model's float output for ``image`` (B, 3, H, W) with ``mask`` (B, 1, H, W)."""
    model_in = image * mask
    if channels_last:
        model_in = model_in.contiguous(memory_format=torch.channels_last)
    with autocast:
        output, _ = model(model_in, mask)
    return output.float()


def spread_indices(total: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(total)``, first and last included."""
    count = min(count, total)
    if count <= 1:
        return list(range(count))
    return sorted({round(k * (total - 1) / (count - 1)) for k in range(count)})


def sample_grid(image: Tensor, mask: Tensor, output: Tensor) -> Tensor:
    """One row per sample: masked input | mask | output | composite | ground truth.

    Args:
        image: (N, 3, H, W) in [0, 1]. mask: (N, 1, H, W), 1 = known. output: (N, 3, H, W).

    Returns:
        (3, H', W') image in [0, 1]; holes are white in the masked input.
    """
    masked = image * mask + (1.0 - mask)
    columns = [masked, mask.expand_as(image), output.clamp(0, 1),
               composite(image, mask, output), image]
    tiles = torch.stack(columns, dim=1).flatten(0, 1)  # (N, 5, 3, H, W) -> (N*5, 3, H, W)
    return make_grid(tiles, nrow=len(columns), padding=2, pad_value=1.0)


def grid_samples(dataset: Dataset, count: int,
                 should_stop: Callable[[], bool] | None = None) -> dict[str, Tensor] | None:
    """The samples of an interval grid, the ones ``evaluate(keep_samples=count)`` keeps.

    Args:
        dataset: the validation set of ``{"image", "mask"}`` samples.
        count: how many samples (spread by ``spread_indices``).
        should_stop: asked after every sample; True aborts (a stop signal).

    Returns:
        ``{"image": (N, 3, H, W) in [0, 1], "mask": (N, 1, H, W), 1 = known}``, or None when
        aborted.
    """
    samples = []
    for index in spread_indices(len(dataset), count):
        samples.append(dataset[index])
        pause_point("grid_sample")
        if should_stop is not None and should_stop():
            return None
    return {key: torch.stack([s[key] for s in samples]) for key in ("image", "mask")}


@torch.no_grad()
def inpaint_samples(model: nn.Module, samples: dict[str, Tensor], device: torch.device,
                    autocast_dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Run ``model`` in eval mode on the samples of ``grid_samples``.

    Returns:
        ``(image, mask, output)`` CPU tensors for ``sample_grid`` / ``write_grid``; output
        (N, 3, H, W) float (the model's train/eval mode is restored).
    """
    image, mask = samples["image"].to(device), samples["mask"].to(device)
    was_training = model.training
    model.eval()
    with autocast_context(device, autocast_dtype):
        output, _ = model(image * mask, mask)
    model.train(was_training)
    return image.cpu(), mask.cpu(), output.float().cpu()


def write_grid(folder: Path, step: int, image: Tensor, mask: Tensor, output: Tensor,
               writer: Any = None) -> Path:
    """Write ``sample_grid`` to ``folder/step_NNNNNNN.png`` and TensorBoard's ``val/samples``.

    Args:
        folder: the run's ``samples`` folder (created when missing).
        step: the training step, in the file name.
        image, mask, output: as for ``sample_grid``.
        writer: a TensorBoard ``SummaryWriter`` or None.

    Returns:
        The path of the PNG.
    """
    grid = sample_grid(image, mask, output)
    path = Path(folder) / f"step_{step:07d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, path)
    if writer is not None:
        writer.add_image("val/samples", grid, step)
        writer.flush()
    return path
