"""Validation on fixed masks: PSNR / SSIM / L1 overall and per hole-ratio bin, and sample grids.

Metrics are computed on the composite ``mask * image + (1 - mask) * output``, quantised to 8 bits
like a saved image, against the ground truth (Liu et al., ECCV 2018, Table 1 reports them per
hole-ratio bin). ``input_psnr`` scores the masked input itself (holes black): the trivial baseline
a trained model must beat.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torchvision.utils import make_grid

from inpainting.metrics import l1, psnr, ssim

__all__ = ["EvalResult", "composite", "evaluate", "quantize", "sample_grid", "spread_indices"]

METRICS = ("psnr", "ssim", "l1", "l1_hole", "input_psnr")


def quantize(image: Tensor) -> Tensor:
    """Clamp to [0, 1] and round to 8 bits, as writing a PNG would."""
    return image.clamp(0.0, 1.0).mul(255.0).round().div(255.0)


def composite(image: Tensor, mask: Tensor, output: Tensor) -> Tensor:
    """Known pixels from ``image``, holes from ``output`` (mask (B, 1, H, W), 1 = known)."""
    return mask * image + (1.0 - mask) * output


@dataclass
class EvalResult:
    """Means over the validation pairs.

    Attributes:
        overall: metric name -> mean (names in ``METRICS``).
        per_bin: one ``{"bin": (lo, hi), "count": n, <metric>: mean}`` per hole-ratio bin.
        samples: the first samples as ``(image, mask, output)`` CPU tensors for a grid.
    """

    overall: dict[str, float]
    per_bin: list[dict] = field(default_factory=list)
    samples: tuple[Tensor, Tensor, Tensor] | None = None

    def table(self) -> str:
        """A small text table: one row per bin, then all."""
        lines = [f"{'holes':>11} {'n':>4} {'PSNR':>7} {'SSIM':>6} {'L1%':>6} {'input PSNR':>10}"]
        rows = [(f"{lo:.2f}-{hi:.2f}", row) for row in self.per_bin for lo, hi in [row["bin"]]]
        rows.append(("all", {**self.overall, "count": sum(r["count"] for r in self.per_bin)}))
        for name, row in rows:
            if row["count"]:
                lines.append(f"{name:>11} {row['count']:>4} {row['psnr']:7.2f} {row['ssim']:6.3f} "
                             f"{row['l1']:6.2f} {row['input_psnr']:10.2f}")
        return "\n".join(lines)

    def write_scalars(self, writer: Any, step: int) -> None:
        """TensorBoard: ``val/psnr|ssim|l1|l1_hole``, ``val/psnr_masked_input`` and one
        ``val_bins/<metric>_<lo>-<hi>`` per non-empty bin."""
        for key in ("psnr", "ssim", "l1", "l1_hole"):
            writer.add_scalar(f"val/{key}", self.overall[key], step)
        writer.add_scalar("val/psnr_masked_input", self.overall["input_psnr"], step)
        for row in self.per_bin:
            if row["count"]:
                lo, hi = row["bin"]
                for key in ("psnr", "ssim", "l1"):
                    writer.add_scalar(f"val_bins/{key}_{lo:g}-{hi:g}", row[key], step)


def _batch_metrics(image: Tensor, mask: Tensor, output: Tensor) -> dict[str, Tensor]:
    comp = quantize(composite(image, mask, output))
    masked = quantize(image * mask)
    return {
        "psnr": psnr(comp, image),
        "ssim": ssim(comp, image),
        "l1": l1(comp, image),
        "l1_hole": l1(comp, image, mask),
        "input_psnr": psnr(masked, image),
    }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    bins: Sequence[tuple[float, float]],
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    keep_samples: int = 0,
) -> EvalResult:
    """Run ``model`` over a validation loader of ``{"image", "mask", "bin"}`` batches.

    Args:
        model: maps ``(image * mask, mask)`` to ``(output, final_mask)``; images (B, 3, H, W)
            in [0, 1], masks (B, 1, H, W), 1 = known, 0 = hole.
        loader: yields batches with ``"bin"`` (B,) indices into ``bins``.
        device: where the model is.
        bins: the hole-ratio bins ``(lo, hi]`` of the fixed masks.
        autocast_dtype: run the model under autocast to this dtype (None: fp32).
        channels_last: feed channels-last inputs.
        keep_samples: keep this many samples for ``sample_grid``, spread evenly over the
            loader (``spread_indices``) so that the grid shows several images and bins.

    Returns:
        The means, overall and per bin (the model's train/eval mode is restored).
    """
    was_training = model.training
    model.eval()
    values: dict[str, list[Tensor]] = {name: [] for name in METRICS}
    bin_ids: list[Tensor] = []
    kept: list[tuple[Tensor, Tensor, Tensor]] = []
    picks = spread_indices(len(loader.dataset), keep_samples) if keep_samples else []
    seen = 0
    autocast = (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype
                else contextlib.nullcontext())
    for batch in loader:
        image = batch["image"].to(device, non_blocking=True)
        mask = batch["mask"].to(device, non_blocking=True)
        model_in, model_mask = image * mask, mask
        if channels_last:
            model_in = model_in.contiguous(memory_format=torch.channels_last)
        with autocast:
            output, _ = model(model_in, model_mask)
        output = output.float()
        for name, value in _batch_metrics(image, mask, output).items():
            values[name].append(value.double().cpu())
        bin_ids.append(batch["bin"].cpu())
        rows = [i - seen for i in picks if seen <= i < seen + len(image)]
        if rows:
            kept.append((image[rows].cpu(), mask[rows].cpu(), output[rows].cpu()))
        seen += len(image)
    model.train(was_training)
    return _summarise(values, bin_ids, bins, kept, keep_samples)


def _summarise(values: dict[str, list[Tensor]], bin_ids: list[Tensor],
               bins: Sequence[tuple[float, float]], kept: list, keep_samples: int) -> EvalResult:
    if not bin_ids:
        raise ValueError("the validation loader yielded no batches")
    stacked = {name: torch.cat(parts) for name, parts in values.items()}
    ids = torch.cat(bin_ids)
    overall = {name: float(v.mean()) for name, v in stacked.items()}
    per_bin = []
    for index, bin_range in enumerate(bins):
        selected = ids == index
        row: dict = {"bin": tuple(bin_range), "count": int(selected.sum())}
        for name, v in stacked.items():
            row[name] = float(v[selected].mean()) if row["count"] else float("nan")
        per_bin.append(row)
    samples = None
    if keep_samples and kept:
        samples = tuple(torch.cat([k[i] for k in kept])[:keep_samples] for i in range(3))
    return EvalResult(overall, per_bin, samples)


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
               quantize(composite(image, mask, output)), image]
    tiles = torch.stack(columns, dim=1).flatten(0, 1)  # (N, 5, 3, H, W) -> (N*5, 3, H, W)
    return make_grid(tiles, nrow=len(columns), padding=2, pad_value=1.0)
