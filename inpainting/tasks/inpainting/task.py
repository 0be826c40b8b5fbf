"""The inpainting task at training time: ``model(image * mask, mask) -> (output, final_mask)``
under the loss of ``inpainting.models.losses`` (Liu et al., ECCV 2018), validation on fixed
masks scored per hole-ratio bin (``.validation``) on rank 0, ``best.pt`` by val PSNR, sample
grids, and the paper's fine-tuning phase (encoder BatchNorm frozen at a lower learning rate).

Mask convention: 1 = known pixel, 0 = hole.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from inpainting.engine.task import ReportContext, ValidationOptions, to_device
from inpainting.tasks.inpainting.validation import (
    ValidationResult,
    evaluate,
    grid_samples,
    inpaint_samples,
    write_grid,
)

__all__ = ["InpaintingTask"]

logger = logging.getLogger(__name__)


class InpaintingTask:
    """Inpainting: the hole/valid/perceptual/style/TV loss, the fixed-mask table, sample grids.

    Args:
        val_bins: hole-ratio bins ``(lo, hi]`` of the validation masks.
        border: whether the validation masks keep their holes away from the edge.
        grid_size: samples in the grid written at validation.
        baselines: classical methods (``inpainting.metrics.baselines``) scored beside the model.
        metrics: the per-image metrics of the validation table (``train.val_metrics``).
        finetune_step: the step the fine-tuning phase starts at (0: none), where the encoder's
            BatchNorm is frozen (Liu et al., ECCV 2018, Sec. 4, "Training Procedure").
        finetune_lr_scale: the phase's learning rate divided by ``optim.lr``.
    """

    validates_on_all_ranks = False  # rank 0 scores the fixed masks alone
    best_name = "val PSNR"

    def __init__(self, val_bins: Sequence[tuple[float, float]] = (), border: bool = False,
                 grid_size: int = 4, baselines: Sequence[str] = (), finetune_step: int = 0,
                 finetune_lr_scale: float = 1.0,
                 metrics: Sequence[str] = ("l1", "psnr", "ssim")) -> None:
        self.val_bins, self.border, self.grid_size = list(val_bins), border, grid_size
        self.baselines, self.metrics = tuple(baselines), tuple(metrics)
        self.finetune_step, self.finetune_lr_scale = finetune_step, finetune_lr_scale
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
        image = to_device(batch["image"], device, channels_last)
        mask = batch["mask"].to(device, non_blocking=True)
        output, _ = model(image * mask, mask)
        return loss_fn(output, image, mask)

    def enter_phase(self, step: int, model: nn.Module) -> bool:
        """Freeze the encoder's BatchNorm from ``finetune_step`` on (once)."""
        if not self.finetune_step or step < self.finetune_step or model.freeze_encoder_bn:
            return False
        model.set_freeze_encoder_bn(True)
        logger.info("step %d: fine-tuning phase, lr x%g, encoder BatchNorm frozen", step,
                    self.finetune_lr_scale)
        return True

    def lr_scale(self, step: int) -> float:
        """``finetune_lr / optim.lr`` from ``finetune_step`` on, else 1."""
        return self.finetune_lr_scale if self.finetune_step and step >= self.finetune_step \
            else 1.0

    def validate(self, model: nn.Module, loader: Any, options: ValidationOptions
                 ) -> ValidationResult | None:
        """Score the model and the masked input on the fixed validation masks (rank 0), beside
        the baselines' scores (computed at the first validation that finishes)."""
        pending = tuple(name for name in self.baselines if name not in self._baseline_scores)
        result = evaluate(model, loader, options.device, self.val_bins, options.autocast_dtype,
                          options.channels_last, keep_samples=self.grid_size, border=self.border,
                          should_stop=options.should_stop, baselines=pending,
                          metrics=self.metrics)
        if result is not None:
            self._baseline_scores.update((name, result.scores[name]) for name in pending)
            result.scores.update((name, self._baseline_scores[name]) for name in self.baselines)
        return result

    @staticmethod
    def score(result: ValidationResult) -> float:
        """Higher is better: the model's mean PSNR."""
        return result.overall["psnr"]

    def report(self, result: ValidationResult, context: ReportContext) -> Path | None:
        """Log the table, TensorBoard scalars and the sample grid of a validation (rank 0);
        returns the grid's file."""
        logger.info("validation at step %d:\n%s", context.step, result.table())
        if result.bad_files:
            logger.warning("validation at step %d skipped %d undecodable image file(s) (named "
                           "above)", context.step, result.bad_files)
        if context.writer is not None:
            result.write_scalars(context.writer, context.step)
        if result.samples is None:
            return None
        return write_grid(context.run_dir / "samples", context.step, *result.samples,
                          writer=context.writer)

    def write_samples(self, model: nn.Module, loader: Any, options: ValidationOptions,
                      context: ReportContext) -> Path | None:
        """Inpaint the grid's validation samples (as ``validate`` picks them) and write the
        grid; None when a stop signal came while reading the samples."""
        if self._grid_batch is None:
            self._grid_batch = grid_samples(loader.dataset, self.grid_size, options.should_stop)
            if self._grid_batch is None:
                return None
        samples = inpaint_samples(model, self._grid_batch, options.device,
                                  options.autocast_dtype)
        return write_grid(context.run_dir / "samples", context.step, *samples,
                          writer=context.writer)

    @staticmethod
    def checkpoint_file(name: str) -> str:
        """The file of the trainer's checkpoint ``name`` (``last.pt``, ``best.pt``, ...)."""
        return name

    @staticmethod
    def pack_checkpoint(state: dict[str, Any], model: nn.Module) -> dict[str, Any]:
        """The checkpoint dict as written: the training state as it is."""
        return state
