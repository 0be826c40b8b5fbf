"""The classification task at training time (the padding report's ImageNet experiment).

``model(image) -> logits`` under cross-entropy; validation counts Prec@1 / Prec@5 over the whole
val set, every rank scoring a disjoint shard, the counts summed over ranks (and the Prec@1 of the
border-shifted copies when the val samples carry ``image_shifted``: the padding demo); prints
NVIDIA's `` * Prec@1 X Prec@5 Y`` line, appends ``metrics.jsonl``, keeps the best top-1;
checkpoints in the format of NVIDIA's ImageNet script (``checkpoint.pth.tar``,
``model_best.pth.tar``; ``.nvidia``).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 (the usual name)
from torch import Tensor, nn

from inpainting.engine.distributed import sum_over_ranks
from inpainting.engine.files import atomic_write
from inpainting.engine.signals import pause_point
from inpainting.engine.task import ReportContext, ValidationOptions, autocast_context, to_device
from inpainting.tasks.classification.nvidia import make_nvidia_checkpoint

__all__ = ["METRICS_FILE", "ClassificationResult", "ClassificationTask", "CrossEntropyTerms",
           "checkpoint_file", "drop_metrics_after", "read_metrics", "topk_correct"]

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"  # one JSON object per validation of a classification run
# NVIDIA's main.py names of the engine's last.pt and best.pt
_FILES = {"last.pt": "checkpoint.pth.tar", "best.pt": "model_best.pth.tar"}


def checkpoint_file(name: str) -> str:
    """The engine's checkpoint ``name`` under NVIDIA's names (``step_N.pt`` ->
    ``step_N.pth.tar``)."""
    return _FILES.get(name, name.removesuffix(".pt") + ".pth.tar")


def topk_correct(
    logits: torch.Tensor, target: torch.Tensor, ks: tuple[int, ...] = (1, 5)
) -> torch.Tensor:
    """How many samples have their true class among the k highest logits, for each k.

    Counts, not percentages, so that batches and processes add up exactly (sum the counts,
    divide by the number of samples once). ``k`` is capped at the number of classes ``C``:
    with 3 classes "top-5" is top-3, i.e. always correct, as the report's Prec@5 is defined
    for a head with fewer than 5 outputs. Among equal logits the order is ``torch.topk``'s.

    Args:
        logits: (B, C) floating scores, any device.
        target: (B,) integer class indices in ``[0, C)``, same device.
        ks: positive k values, e.g. ``(1, 5)`` for Prec@1 and Prec@5.

    Returns:
        int64 tensor (len(ks),) on ``logits``' device: the count of correct samples per k.

    Raises:
        ValueError: bad shapes or dtypes, a target out of range, or a k < 1.

    Example:
        >>> correct = topk_correct(model(x), y)  # tensor([top1_count, top5_count])
        >>> prec1, prec5 = (100.0 * correct / len(y)).tolist()
    """
    if logits.ndim != 2 or logits.shape[1] == 0 or not logits.is_floating_point():
        raise ValueError(f"logits must be a floating (B, C) tensor, got {tuple(logits.shape)} "
                         f"{logits.dtype}")
    if target.shape != logits.shape[:1] or target.is_floating_point() or target.is_complex():
        raise ValueError(f"target must be an integer (B,) tensor with B = {logits.shape[0]}, "
                         f"got {tuple(target.shape)} {target.dtype}")
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"ks must be positive, got {ks}")
    classes = logits.shape[1]
    if target.numel() and (target.min() < 0 or target.max() >= classes):
        raise ValueError(f"target holds classes outside [0, {classes})")
    largest = min(max(ks), classes)
    top = logits.topk(largest, dim=1).indices  # (B, largest), best first
    hits = top.eq(target[:, None])  # (B, largest), at most one True per row
    # a sample is right at k when its class is among the first k: cumulative hits per row
    cumulative = hits.cumsum(dim=1)  # (B, largest)
    return torch.stack([cumulative[:, min(k, classes) - 1].sum() for k in ks]).long()


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

    validates_on_all_ranks = True  # each rank scores its shard; the counts are summed
    best_name = "val top-1"

    def __init__(self, arch: str, padding: str = "zero") -> None:
        self.arch, self.padding = arch, padding

    @staticmethod
    def loss_terms(model: nn.Module, loss_fn: nn.Module, batch: dict[str, Tensor],
                   device: torch.device, channels_last: bool) -> dict[str, Tensor]:
        """``loss_fn(model(image), label)`` for ``{"image": (B, 3, H, W) normalised,
        "label": (B,) class indices}``."""
        image = to_device(batch["image"], device, channels_last)
        return loss_fn(model(image), batch["label"].to(device, non_blocking=True))

    @staticmethod
    def enter_phase(step: int, model: nn.Module) -> bool:
        """No phases: NVIDIA's recipe trains one way throughout."""
        return False

    @staticmethod
    def lr_scale(step: int) -> float:
        return 1.0

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
            image = to_device(batch["image"], options.device, options.channels_last)
            label = batch["label"].to(options.device, non_blocking=True)
            with autocast_context(options.device, options.autocast_dtype):
                logits = model(image)
            logits = logits.float()
            totals[0] += F.cross_entropy(logits, label, reduction="sum").double()
            totals[1] += len(label)
            totals[2] += int(batch["bad_files"].sum()) if "bad_files" in batch else 0
            totals[3:5] += topk_correct(logits, label, (1, 5)).double()
            if "image_shifted" in batch:
                shifted = to_device(batch["image_shifted"], options.device,
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
    def report(result: ClassificationResult, context: ReportContext) -> None:
        """Print NVIDIA's summary line, log, write TensorBoard and ``metrics.jsonl`` (rank 0).

        The summary goes to stdout, where NVIDIA's users' scripts read it.
        """
        epoch, step = context.epoch, context.step
        print(result.summary(), flush=True)
        shifted = (f", shifted Prec@1 {result.top1_shifted:.3f}"
                   if result.top1_shifted is not None else "")
        logger.info("validation at step %d (epoch %d, %d images): Prec@1 %.3f Prec@5 %.3f "
                    "loss %.4f%s", step, epoch, result.count, result.top1, result.top5,
                    result.loss, shifted)
        if result.bad_files:
            logger.warning("validation at step %d skipped %d undecodable image file(s)",
                           step, result.bad_files)
        record = {"step": step, "epoch": epoch, "top1": result.top1,
                  "top5": result.top5, "loss": result.loss}
        if result.top1_shifted is not None:
            record["top1_shifted"] = result.top1_shifted
        if context.writer is not None:
            for key, value in record.items():
                if key not in ("step", "epoch"):
                    context.writer.add_scalar(f"val/{key}", value, step)
        with open(context.run_dir / METRICS_FILE, "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")

    @staticmethod
    def write_samples(model: nn.Module, loader: Any, options: ValidationOptions,
                      context: ReportContext) -> Path | None:
        """Classification writes no sample images."""
        return None

    def checkpoint_file(self, name: str) -> str:
        """NVIDIA's names: ``checkpoint.pth.tar`` (last), ``model_best.pth.tar`` (best),
        ``step_N.pth.tar`` for the numbered ones."""
        return checkpoint_file(name)

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
        atomic_write(path, "".join(json.dumps(r) + "\n" for r in kept))
