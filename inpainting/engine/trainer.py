"""The training loop: step-based, resumable, single process or DDP under ``torchrun``.

The ``Trainer`` receives built objects (see ``inpainting.engine.run`` for how a ``Config``
becomes them), so tests can hand it tiny ones. ``fit()`` reads top to bottom: take ``grad_accum``
batches, one optimizer step, then whatever is due at this step (log, validate, sample grid,
checkpoint). Loss values leave the device (``.item()``) only at those steps.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from inpainting.engine.batches import BatchStream
from inpainting.engine.checkpoint import (
    TrainingParts,
    restore_training_state,
    save_checkpoint,
    training_state,
)
from inpainting.engine.config import Config
from inpainting.engine.distributed import DistInfo, all_reduce_flag, mean_over_ranks
from inpainting.engine.ema import ModelEma
from inpainting.engine.errors import (
    EnvironmentProblem,
    UserInputError,
    environment_message,
    is_environment_error,
    one_line,
)
from inpainting.engine.reporting import make_progress_bar, report_train_step
from inpainting.engine.signals import StopSignals
from inpainting.engine.task import FitResult, ReportContext, Task, ValidationOptions

__all__ = ["AUTOCAST_DTYPES", "FitResult", "NonFiniteLossError", "Trainer"]

logger = logging.getLogger(__name__)

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; nothing after the last good checkpoint was saved."""


class Trainer:
    """Trains the model of a task (``engine.task.Task``); rank 0 logs and writes checkpoints.

    Args:
        model: the task's network, already on ``device``, not wrapped (the trainer wraps it in
            DDP / ``torch.compile`` as configured); ``task.loss_terms`` calls it.
        loss_fn: the task's loss, handed to ``task.loss_terms``.
        optimizer: over ``model``'s parameters.
        train_loader: from ``engine.batches.make_train_loader`` (resumable position).
        val_loader: what ``task.validate`` reads, or None (no validation).
        config: the resolved config (the base sections: intervals, precision, ...); saved in
            every checkpoint.
        run_dir: the run folder (checkpoints, ``samples/``).
        scheduler: stepped once per optimizer step, or None.
        writer: a TensorBoard ``SummaryWriter`` (rank 0) or None.
        device: where the model lives.
        dist: rank and world size.
        ema: weight average, used for validation when given.
        task: what is trained for (``engine.task.Task``).
    """

    def __init__(self, model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                 train_loader: DataLoader, val_loader: DataLoader | None, config: Config,
                 run_dir: str | Path, *, task: Task,
                 scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                 writer: Any = None, device: torch.device | str = "cpu",
                 dist: DistInfo | None = None, ema: ModelEma | None = None) -> None:
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.train_loader, self.val_loader = train_loader, val_loader
        self.config, self.run_dir = config, Path(run_dir)
        self.scheduler, self.writer, self.ema, self.task = scheduler, writer, ema, task
        self.device, self.dist = torch.device(device), dist or DistInfo()
        self.autocast_dtype = AUTOCAST_DTYPES[self.config.train.precision]
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=self.config.train.precision == "fp16")
        self.step = 0
        self.step_lr = optimizer.param_groups[0]["lr"]
        self.best_metric: float | None = None
        self.position = {"epoch": 0, "batch": 0}
        self.last_eval: Any = None
        self.sample_path: Path | None = None
        self.train_model = self._wrap(model)
        self._nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)
        self._checked_step = 0  # last step whose loss is known to be finite
        self._saved_step: int | None = None
        self._stop_signals = StopSignals()
        self._clock = (time.perf_counter(), 0)  # (time, step) of the last log line
        self.train_seconds = 0.0  # wall time of fit() in earlier sessions of this run
        self._fit_started: float | None = None

    # ---------------------------------------------------------------------------------------
    # One optimizer step

    def _wrap(self, model: nn.Module) -> nn.Module:
        wrapped = model
        if self.dist.enabled:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            wrapped = DistributedDataParallel(model, device_ids=device_ids)
        if self.config.train.compile:
            wrapped = torch.compile(wrapped)
        return wrapped

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def train_step(self, batches: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
        """One optimizer step over ``len(batches)`` micro-batches (gradient accumulation).

        Args:
            batches: the task's batches, e.g. ``{"image": (B, 3, H, W) in [0, 1], "mask":
                (B, 1, H, W) 1 = known}`` (inpainting) or ``{"image", "label"}``.

        Returns:
            The loss terms averaged over the micro-batches, as detached device tensors.
        """
        self.train_model.train()
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, Tensor] = {}
        for index, batch in enumerate(batches):
            last = index == len(batches) - 1
            no_sync = getattr(self.train_model, "no_sync", None)
            sync = contextlib.nullcontext() if last or no_sync is None else no_sync()
            with sync:
                with self._autocast():
                    terms = self.task.loss_terms(self.train_model, self.loss_fn, batch,
                                                 self.device, self.config.train.channels_last)
                self.scaler.scale(terms["total"] / len(batches)).backward()
            for key, value in terms.items():
                sums[key] = sums[key] + value.detach() if key in sums else value.detach()
        if self.config.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
        self.step_lr = self.optimizer.param_groups[0]["lr"]  # the lr of this step, for logs
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return {key: value / len(batches) for key, value in sums.items()}

    # ---------------------------------------------------------------------------------------
    # The loop

    def elapsed_seconds(self) -> float:
        """Wall time this run has spent in ``fit()``, earlier sessions (before a resume)
        included: what ``train.max_minutes`` limits."""
        running = 0.0 if self._fit_started is None else time.perf_counter() - self._fit_started
        return self.train_seconds + running

    def _out_of_time(self) -> bool:
        """True once ``train.max_minutes`` (when set) is spent; every rank agrees."""
        budget = self.config.train.max_minutes * 60.0
        if budget <= 0:
            return False
        over = self.elapsed_seconds() >= budget
        return all_reduce_flag(over, self.device) if self.dist.enabled else over

    def fit(self) -> FitResult:
        """Train from ``self.step`` to ``train.max_steps``, until ``train.max_minutes`` of
        training time are spent (then validate and save as at ``max_steps``), or until SIGINT /
        SIGTERM.

        Returns:
            A ``FitResult``.

        Raises:
            NonFiniteLossError: the loss became NaN/inf (checked at every log, validation and
                checkpoint step; the bad weights are never saved).
        """
        stream = BatchStream(self.train_loader, **self.position)
        bar = make_progress_bar(self.config.train.max_steps, self.step,
                                self.config.log.progress and self.dist.is_main)
        self._clock = (time.perf_counter(), self.step)
        self._fit_started = time.perf_counter()
        try:
            with self._stop_signals:
                # a resumed run whose budget is spent takes no step; _after_step checks the rest
                spent = self._out_of_time()
                while self.step < self.config.train.max_steps and not spent:
                    self._update_phase()
                    accum = self.config.train.grad_accum
                    losses = self.train_step([next(stream) for _ in range(accum)])
                    self.step += 1
                    self.position = stream.position
                    self._nonfinite |= ~torch.isfinite(losses["total"])
                    bar.update(1)
                    if self._after_step(losses, bar):
                        break
        finally:
            self.train_seconds, self._fit_started = self.elapsed_seconds(), None
            bar.close()
            stream.close()
        return FitResult(self.step, self._stop_signals.received, self.best_metric, self.last_eval,
                         self.sample_path)

    def _due(self, every: int) -> bool:
        return every > 0 and self.step % every == 0

    def _after_step(self, losses: dict[str, Tensor], bar: Any) -> bool:
        """Log / validate / save as due at this step; True when a signal asks to stop or the
        time budget is spent (after the final validation and checkpoint)."""
        stop = self._stop_requested()
        out_of_time = not stop and self._out_of_time()
        if out_of_time and self.step < self.config.train.max_steps:
            logger.info("train.max_minutes %g reached at step %d",
                        self.config.train.max_minutes, self.step)
        final = stop or out_of_time or self.step == self.config.train.max_steps
        validate = not stop and (final or self._due(self.config.train.val_every))
        grid = not (validate or stop) and self.config.log.image_every > 0 and self._due(
            self.config.log.image_every)
        save = final or self._due(self.config.train.ckpt_every)
        log = final or self._due(self.config.train.log_every)
        if log or validate or grid or save:
            self._check_finite(weights=save or validate)  # validate may write best.pt
        if log:
            self._log_train(losses, bar)
        if validate or grid:
            self._saving_on_failure(self.validate if validate else self.write_sample_grid)
            # A signal during them stops at this step; under DDP, where rank 0 validates alone,
            # every rank stops together at the next step's check.
            if not self.dist.enabled and self._stop_signals.requested():
                stop = save = True
        if save:
            self.save("last.pt")
            if self.config.train.keep_numbered:
                self.save(f"step_{self.step:07d}.pt")
        if stop:
            logger.warning("stopped by %s at step %d", self._stop_signals.received, self.step)
        return stop or out_of_time

    def _update_phase(self) -> None:
        """Let the task enter a training phase that starts at this step (its fine-tuning)."""
        if self.task.enter_phase(self.step, self.model):
            self.train_model = self._wrap(self.model)  # DDP must see the new trained params

    def _check_finite(self, weights: bool = False) -> None:
        """Raise ``NonFiniteLossError`` if a loss since the last check (or, with ``weights``, a
        weight) is NaN/inf: a finite loss can still come with NaN gradients."""
        bad = self._nonfinite
        if weights:
            bad = bad | ~torch.stack([p.isfinite().all() for p in self.model.parameters()]).all()
        if self.dist.enabled:
            bad = all_reduce_flag(bad, self.device)
        if bool(bad):
            last = self.run_dir / self.task.checkpoint_file("last.pt")
            saved = (f"the last good checkpoint is {last} (step "
                     f"{self._saved_step})" if self._saved_step is not None
                     else "no checkpoint was written")
            raise NonFiniteLossError(
                f"the loss or the weights became NaN/inf between steps {self._checked_step + 1} "
                f"and {self.step}; "
                f"stopped without saving ({saved}). Try a lower optim.lr, optim.grad_clip > 0 or "
                "train.precision fp32")
        self._checked_step = self.step

    def _stop_requested(self) -> bool:
        requested = self._stop_signals.received is not None
        if self.dist.enabled:  # every rank must stop at the same step
            requested = all_reduce_flag(requested, self.device)
            if requested and self._stop_signals.received is None:
                self._stop_signals.received = "another rank's signal"
        return requested

    # ---------------------------------------------------------------------------------------
    # Logging, validation, checkpoints

    def _log_train(self, losses: dict[str, Tensor], bar: Any) -> None:
        stacked = torch.stack([value.float() for value in losses.values()])
        if self.dist.enabled:  # log the loss of the whole global batch, not rank 0's share
            stacked = mean_over_ranks(stacked)  # every rank's loss has the same terms in order
        values = dict(zip(losses, stacked.tolist()))  # the sync point
        now, then = time.perf_counter(), self._clock
        images = ((self.step - then[1]) * self.train_loader.batch_size
                  * self.config.train.grad_accum * self.dist.world_size)
        images_per_s = images / max(now - then[0], 1e-9)
        self._clock = (now, self.step)
        if not self.dist.is_main:
            return
        report_train_step(values, self.step, self.config.train.max_steps, self.step_lr,
                          images_per_s, self.writer, bar)

    def _eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def _validation_options(self) -> ValidationOptions:
        return ValidationOptions(self.device, self.autocast_dtype, self.config.train.channels_last,
                                 self._stop_signals.requested, self.dist.enabled)

    def _report_context(self) -> ReportContext:
        return ReportContext(self.step, self.position["epoch"], self.run_dir, self.writer)

    def validate(self) -> Any:
        """Run the task's validation; keep ``best.pt`` by the task's score (higher is better).

        Inpainting validates on rank 0 alone, classification on every rank (a collective). A
        stop signal aborts a single-process pass between batches: then nothing is logged and
        None returned.
        """
        if self.val_loader is None or not (self.dist.is_main or self.task.validates_on_all_ranks):
            return None
        result = self.task.validate(self._eval_model(), self.val_loader,
                                    self._validation_options())
        if result is None:
            logger.warning("validation at step %d aborted by %s", self.step,
                           self._stop_signals.received)
            return None
        self.last_eval = result
        if self.dist.is_main:
            sample = self.task.report(result, self._report_context())
            if sample is not None:
                self.sample_path = sample
        score = self.task.score(result)  # the same on every rank that validated
        if math.isfinite(score) and (self.best_metric is None or score > self.best_metric):
            self.best_metric = score
            self.save("best.pt")
        return result

    def write_sample_grid(self) -> None:
        """Write the task's sample output of the current weights (rank 0), if it has one."""
        if not self.dist.is_main or self.val_loader is None:
            return
        path = self.task.write_samples(self._eval_model(), self.val_loader,
                                       self._validation_options(), self._report_context())
        if path is not None:
            self.sample_path = path

    def _saving_on_failure(self, action: Callable[[], object]) -> None:
        """Run validation or a grid; if it fails, save ``last.pt`` first (no training is lost),
        then raise one line saying where it is (a bug keeps its traceback; the line is logged)."""
        try:
            action()
        except Exception as error:
            try:
                saved = f"the training is saved in {self.save('last.pt')} (step {self.step})"
            except Exception as save_error:  # e.g. the same full disk
                last = self.task.checkpoint_file("last.pt")  # the task's name of it
                saved = f"{last} could not be saved either ({one_line(save_error)})"
            environment = is_environment_error(error)
            reason = environment_message(error) if environment else one_line(error)
            message = (f"validation at step {self.step} failed: {reason}; {saved}: fix that, "
                       f"then continue with --resume {self.run_dir}")
            if isinstance(error, UserInputError):
                raise UserInputError(message) from error
            if environment:
                raise EnvironmentProblem(message) from error
            logger.error(message)
            raise

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint dict (see ``engine.checkpoint``): plain types and tensors only."""
        return training_state(self._parts(), self.progress(), self.config)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint: weights, optimizer, schedule, RNGs, data position."""
        progress = restore_training_state(self._parts(), state)
        self.step, self.best_metric = progress["step"], progress["best_metric"]
        self.train_seconds, self.position = progress["train_seconds"], progress["data_position"]
        self._checked_step = self._saved_step = self.step

    def _parts(self) -> TrainingParts:
        return TrainingParts(self.model, self.optimizer, self.scheduler, self.scaler, self.ema)

    def progress(self) -> dict[str, Any]:
        """The small training state a checkpoint keeps beside the parts' state dicts."""
        return {"step": self.step, "train_seconds": self.elapsed_seconds(),
                "best_metric": self.best_metric, "data_position": dict(self.position)}

    def save(self, name: str) -> Path | None:
        """Write the checkpoint ``name`` (``last.pt``, ``best.pt``, ...) atomically (rank 0
        only), under the task's file name for it and in the task's layout."""
        if not self.dist.is_main:
            return None
        path = self.run_dir / self.task.checkpoint_file(name)
        save_checkpoint(self.task.pack_checkpoint(self.state_dict(), self.model), path)
        if name == "last.pt":
            self._saved_step = self.step
        if self.writer is not None:
            self.writer.flush()
        return path
