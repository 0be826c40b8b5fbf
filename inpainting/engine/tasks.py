"""What the ``Trainer`` trains for: a task supplies the step's loss terms, the validation pass,
the score that picks ``best``, what a validation reports, and the sample output.

The loop itself (``engine.trainer``) is one for every task:

- ``InpaintingTask``: ``model(image * mask, mask) -> (output, final_mask)`` under the loss of
  ``inpainting.losses`` (Liu et al., ECCV 2018); validation scores the fixed masks with
  ``inpainting.scoring`` on rank 0; ``best.pt`` by val PSNR; a sample grid.
- ``ClassificationTask``: ``model(image) -> logits`` under cross-entropy; validation counts
  Prec@1 / Prec@5 (``metrics.topk_correct``) over the whole val set, every rank scoring a
  disjoint shard, the counts summed over ranks (and the Prec@1 of the border-shifted copies
  when the val samples carry ``image_shifted``: the padding demo); prints NVIDIA's
  `` * Prec@1 X Prec@5 Y`` line, appends ``metrics.jsonl``, keeps the best top-1; checkpoints
  in the format of NVIDIA's ImageNet script (``checkpoint.pth.tar``, ``model_best.pth.tar``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F  # noqa: N812 (the usual name)
from torch import Tensor, nn

from inpainting.engine.distributed import sum_over_ranks
from inpainting.engine.signals import pause_point
from inpainting.engine.validation import (
    ValidationResult,
    autocast_context,
    evaluate,
    grid_samples,
    inpaint_samples,
    write_grid,
)
from inpainting.metrics import topk_correct
from inpainting.models.nvidia_checkpoint import make_nvidia_checkpoint

if TYPE_CHECKING:
    from inpainting.engine.trainer import Trainer

__all__ = ["METRICS_FILE", "ClassificationResult", "ClassificationTask", "CrossEntropyTerms",
           "InpaintingTask", "ValidationOptions", "drop_metrics_after", "read_metrics"]

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"  # one JSON object per validation of a classification run


@dataclass(frozen=True)
class ValidationOptions:
    """How the trainer runs a validation pass.

    Attributes:
        device: where the model is.
        autocast_dtype: run the model under autocast to this dtype (None: fp32).
        channels_last: feed channels-last inputs.
        should_stop: asked between batches; True aborts the pass (a stop signal).
        distributed: every rank takes part (a pass that sums over ranks must not abort alone).
    """

    device: torch.device
    autocast_dtype: torch.dtype | None = None
    channels_last: bool = False
    should_stop: Callable[[], bool] | None = None
    distributed: bool = False


def _to_device(tensor: Tensor, device: torch.device, channels_last: bool) -> Tensor:
    tensor = tensor.to(device, non_blocking=True)
    return tensor.contiguous(memory_format=torch.channels_last) if channels_last else tensor


class InpaintingTask:
    """Inpainting: the hole/valid/perceptual/style/TV loss, the fixed-mask table, sample grids.

    Args:
        val_bins: hole-ratio bins ``(lo, hi]`` of the validation masks.
        border: whether the validation masks keep their holes away from the edge.
        grid_size: samples in the grid written at validation.
        baselines: classical methods (``inpainting.baselines``) scored beside the model.
    """

    name = "inpainting"
    validates_on_all_ranks = False  # rank 0 scores the fixed masks alone
    best_name = "val PSNR"

    def __init__(self, val_bins: Sequence[tuple[float, float]] = (), border: bool = False,
                 grid_size: int = 4, baselines: Sequence[str] = ()) -> None:
        self.val_bins, self.border, self.grid_size = list(val_bins), border, grid_size
        self.baselines = tuple(baselines)
        # The validation pairs are fixed, so a classical method scores the same every time.
        self._baseline_scores: dict[str, Any] = {}
        self._grid_batch: dict[str, Tensor] | None = None

    def loss_terms(self, model: nn.Module, loss_fn: nn.Module, batch: dict[str, Tensor],
                   device: torch.device, channels_last: bool) -> dict[str, Tensor]:
        """The loss terms of one micro-batch (called under the trainer's autocast).

        Args:
            batch: ``{"image": (B, 3, H, W) in [0, 1], "mask": (B, 1, H, W), 1 = known}``.

        Returns:
            ``loss_fn(output, image, mask)``: scalar terms including ``"total"``.
        """
        image = _to_device(batch["image"], device, channels_last)
        mask = batch["mask"].to(device, non_blocking=True)
        output, _ = model(image * mask, mask)
        return loss_fn(output, image, mask)

    def validate(self, model: nn.Module, loader: Any, options: ValidationOptions
                 ) -> ValidationResult | None:
        """Score the model and the masked input on the fixed validation masks (rank 0), beside
        the baselines' scores (computed at the first validation that finishes)."""
        pending = tuple(name for name in self.baselines if name not in self._baseline_scores)
        result = evaluate(model, loader, options.device, self.val_bins, options.autocast_dtype,
                          options.channels_last, keep_samples=self.grid_size, border=self.border,
                          should_stop=options.should_stop, baselines=pending)
        if result is not None:
            self._baseline_scores.update((name, result.scores[name]) for name in pending)
            result.scores.update((name, self._baseline_scores[name]) for name in self.baselines)
        return result

    @staticmethod
    def score(result: ValidationResult) -> float:
        """Higher is better: the model's mean PSNR."""
        return result.overall["psnr"]

    def report(self, result: ValidationResult, trainer: Trainer) -> None:
        """Log the table, TensorBoard scalars and the sample grid of a validation (rank 0)."""
        logger.info("validation at step %d:\n%s", trainer.step, result.table())
        if result.bad_files:
            logger.warning("validation at step %d skipped %d undecodable image file(s) (named "
                           "above)", trainer.step, result.bad_files)
        if trainer.writer is not None:
            result.write_scalars(trainer.writer, trainer.step)
        if result.samples is not None:
            trainer.sample_path = write_grid(trainer.run_dir / "samples", trainer.step,
                                             *result.samples, writer=trainer.writer)

    def write_samples(self, model: nn.Module, loader: Any, options: ValidationOptions,
                      trainer: Trainer) -> Path | None:
        """Inpaint the grid's validation samples (as ``validate`` picks them) and write the
        grid; None when a stop signal came while reading the samples."""
        if self._grid_batch is None:
            self._grid_batch = grid_samples(loader.dataset, self.grid_size, options.should_stop)
            if self._grid_batch is None:
                return None
        samples = inpaint_samples(model, self._grid_batch, options.device,
                                  options.autocast_dtype)
        return write_grid(trainer.run_dir / "samples", trainer.step, *samples,
                          writer=trainer.writer)

    @staticmethod
    def checkpoint_file(name: str) -> str:
        """The file of the trainer's checkpoint ``name`` (``last.pt``, ``best.pt``, ...)."""
        return name

    @staticmethod
    def pack_checkpoint(state: dict[str, Any], model: nn.Module) -> dict[str, Any]:
        """The checkpoint dict as written: the training state as it is."""
        return state


class CrossEntropyTerms(nn.Module):
    """Cross-entropy as a dict of loss terms: ``(logits (B, C), target (B,)) -> {"total"}``."""

    def forward(self, logits: Tensor, target: Tensor) -> dict[str, Tensor]:
        return {"total": F.cross_entropy(logits.float(), target)}


@dataclass
class ClassificationResult:
    """One validation pass of a classifier over the whole val set (all ranks together).

    Attributes:
        top1, top5: Prec@1 and Prec@min(5, C) in percent.
        loss: mean cross-entropy per image.
        count: images scored (each exactly once).
        bad_files: undecodable files skipped (summed over ranks).
        top1_shifted: Prec@1 in percent on the samples' ``image_shifted`` (the same images
            moved toward the border), None when the samples have none.
    """

    top1: float
    top5: float
    loss: float
    count: int
    bad_files: int = 0
    top1_shifted: float | None = None

    def summary(self) -> str:
        """NVIDIA's summary line, which their scripts parse."""
        return f" * Prec@1 {self.top1:.3f} Prec@5 {self.top5:.3f}"


class ClassificationTask:
    """Image classification (the padding report's ImageNet experiment).

    Args:
        arch: NVIDIA's architecture name of the model (``pdresnet50``, ``vgg16_bn``), written
            into the checkpoints and deciding their weight names.
        padding: the padding scheme, recorded beside ``arch``.
    """

    name = "classification"
    validates_on_all_ranks = True  # each rank scores its shard; the counts are summed
    best_name = "val top-1"
    _FILES = {"last.pt": "checkpoint.pth.tar", "best.pt": "model_best.pth.tar"}

    def __init__(self, arch: str, padding: str = "zero") -> None:
        self.arch, self.padding = arch, padding

    @staticmethod
    def loss_terms(model: nn.Module, loss_fn: nn.Module, batch: dict[str, Tensor],
                   device: torch.device, channels_last: bool) -> dict[str, Tensor]:
        """``loss_fn(model(image), label)`` for ``{"image": (B, 3, H, W) normalised,
        "label": (B,) class indices}``."""
        image = _to_device(batch["image"], device, channels_last)
        return loss_fn(model(image), batch["label"].to(device, non_blocking=True))

    @staticmethod
    @torch.no_grad()
    def validate(model: nn.Module, loader: Any, options: ValidationOptions
                 ) -> ClassificationResult | None:
        """Prec@1 / Prec@5 and the mean loss over the val set, summed over ranks, and Prec@1
        on ``batch["image_shifted"]`` (same shape and labels as ``image``) where present.

        The loader of each rank must hold a disjoint shard (no padding), so every image counts
        once. Under DDP a stop signal does not abort the pass (the ranks must all sum).

        Raises:
            ValueError: no rank had a validation image.
        """
        was_training = model.training
        model.eval()
        # loss sum, images, bad files, top-1 hits, top-5 hits, shifted images, shifted top-1
        # hits: float64 holds them exactly
        totals = torch.zeros(7, dtype=torch.float64, device=options.device)
        for batch in loader:
            if not options.distributed and options.should_stop and options.should_stop():
                model.train(was_training)
                return None
            image = _to_device(batch["image"], options.device, options.channels_last)
            label = batch["label"].to(options.device, non_blocking=True)
            with autocast_context(options.device, options.autocast_dtype):
                logits = model(image)
            logits = logits.float()
            totals[0] += F.cross_entropy(logits, label, reduction="sum").double()
            totals[1] += len(label)
            totals[2] += int(batch["bad_files"].sum()) if "bad_files" in batch else 0
            totals[3:5] += topk_correct(logits, label, (1, 5)).double()
            if "image_shifted" in batch:
                shifted = _to_device(batch["image_shifted"], options.device,
                                     options.channels_last)
                with autocast_context(options.device, options.autocast_dtype):
                    logits = model(shifted)
                totals[5] += len(label)
                totals[6] += topk_correct(logits.float(), label, (1,))[0].double()
            pause_point("validation_batch")
        model.train(was_training)
        loss, count, bad, top1, top5, shifted_count, shifted_top1 = sum_over_ranks(totals).tolist()
        if not count:
            raise ValueError("the validation loader yielded no images")
        return ClassificationResult(
            100.0 * top1 / count, 100.0 * top5 / count, loss / count, int(count), int(bad),
            100.0 * shifted_top1 / shifted_count if shifted_count else None)

    @staticmethod
    def score(result: ClassificationResult) -> float:
        """Higher is better: Prec@1."""
        return result.top1

    @staticmethod
    def report(result: ClassificationResult, trainer: Trainer) -> None:
        """Print NVIDIA's summary line, log, write TensorBoard and ``metrics.jsonl`` (rank 0).

        The summary goes to stdout, where NVIDIA's users' scripts read it.
        """
        epoch = trainer.position["epoch"]
        print(result.summary(), flush=True)
        shifted = (f", shifted Prec@1 {result.top1_shifted:.3f}"
                   if result.top1_shifted is not None else "")
        logger.info("validation at step %d (epoch %d, %d images): Prec@1 %.3f Prec@5 %.3f "
                    "loss %.4f%s", trainer.step, epoch, result.count, result.top1, result.top5,
                    result.loss, shifted)
        if result.bad_files:
            logger.warning("validation at step %d skipped %d undecodable image file(s)",
                           trainer.step, result.bad_files)
        record = {"step": trainer.step, "epoch": epoch, "top1": result.top1,
                  "top5": result.top5, "loss": result.loss}
        if result.top1_shifted is not None:
            record["top1_shifted"] = result.top1_shifted
        if trainer.writer is not None:
            for key, value in record.items():
                if key not in ("step", "epoch"):
                    trainer.writer.add_scalar(f"val/{key}", value, trainer.step)
        with open(trainer.run_dir / METRICS_FILE, "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")

    @staticmethod
    def write_samples(model: nn.Module, loader: Any, options: ValidationOptions,
                      trainer: Trainer) -> Path | None:
        """Classification writes no sample images."""
        return None

    def checkpoint_file(self, name: str) -> str:
        """NVIDIA's names: ``checkpoint.pth.tar`` (last), ``model_best.pth.tar`` (best),
        ``step_N.pth.tar`` for the numbered ones."""
        return self._FILES.get(name, name.removesuffix(".pt") + ".pth.tar")

    def pack_checkpoint(self, state: dict[str, Any], model: nn.Module) -> dict[str, Any]:
        """The training state in NVIDIA's layout: the weights as ``state_dict`` under their
        DataParallel names, ``epoch`` (finished epochs), ``arch``, ``best_prec1`` (percent);
        the other keys (step, schedule, RNGs, data position, config) make the resume exact and
        are ignored by NVIDIA's script. ``engine.checkpoint.load_checkpoint`` reads it back."""
        packed = {key: value for key, value in state.items() if key != "model"}
        best = state.get("best_metric")
        nvidia = make_nvidia_checkpoint(model, self.arch, state["data_position"]["epoch"],
                                        best if best is not None and math.isfinite(best) else 0.0,
                                        optimizer=None, padding=self.padding)
        del nvidia["optimizer"]  # the training state's own, the same optimizer's state dict
        packed.update(nvidia)
        return packed


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of a classification run's ``metrics.jsonl`` (empty when there is none)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def drop_metrics_after(run_dir: str | Path, step: int) -> None:
    """Remove ``metrics.jsonl`` records later than ``step`` (a run resumed from an earlier
    checkpoint validates those steps again)."""
    path = Path(run_dir) / METRICS_FILE
    records = read_metrics(run_dir)
    kept = [r for r in records if r["step"] <= step]
    if len(kept) != len(records):
        path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
