"""Where a run reports to: the console (through tqdm), ``RUN/train.log`` and TensorBoard."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from inpainting.engine.errors import UserInputError

__all__ = [
    "TqdmHandler", "make_progress_bar", "make_writer", "report_train_step", "setup_logging",
]

logger = logging.getLogger(__name__)

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_TAG = "_inpainting_run_handler"


class TqdmHandler(logging.Handler):
    """Console handler that prints above an active tqdm bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # a logging handler must never raise
            self.handleError(record)


def setup_logging(run_dir: Path | None, is_main: bool = True) -> None:
    """Send log records to the console and, on rank 0, to ``run_dir/train.log``.

    Handlers added by an earlier call are replaced, so calling it again (tests, notebooks) does
    not duplicate lines. Other ranks only print warnings and errors.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_TAG, False)]:
        root.removeHandler(handler)
        handler.close()
    console = TqdmHandler(logging.INFO if is_main else logging.WARNING)
    console.setFormatter(logging.Formatter("%(message)s"))
    handlers: list[logging.Handler] = [console]
    if run_dir is not None and is_main:
        file_handler = logging.FileHandler(Path(run_dir) / "train.log", encoding="utf-8")
        file_handler.setFormatter(logging.Formatter(_FORMAT))
        file_handler.setLevel(logging.INFO)
        handlers.append(file_handler)
    for handler in handlers:
        setattr(handler, _HANDLER_TAG, True)
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def make_writer(run_dir: Path, enabled: bool, purge_step: int | None = None):
    """A TensorBoard ``SummaryWriter`` on ``run_dir/tensorboard``, or None when disabled.

    ``purge_step``: a resumed run's first step; events at or after it from the interrupted run
    are hidden, so curves do not double back.
    """
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when used
    except ImportError as error:
        raise UserInputError("log.tensorboard is true but tensorboard is not installed: pip "
                             "install tensorboard, or --set log.tensorboard=false") from error

    return SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"), purge_step=purge_step)


def make_progress_bar(total: int, initial: int, enabled: bool) -> tqdm:
    """A step bar (step, loss, images/s, ETA); disabled unless asked for and stderr is a TTY."""
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True,
                disable=not (enabled and sys.stderr.isatty()), file=sys.stderr)


def report_train_step(values: dict[str, float], step: int, max_steps: int, lr: float,
                      images_per_s: float, writer: Any, bar: tqdm) -> None:
    """One training log step: TensorBoard ``train/<term>``, ``train/lr`` and
    ``train/images_per_s``, a log line and the progress bar's postfix.

    Args:
        values: loss term -> value, ``"total"`` among them.
        step, max_steps: the step just done and the last one.
        lr: the learning rate of that step.
        images_per_s: training throughput since the previous log step.
        writer: a TensorBoard ``SummaryWriter`` or None.
        bar: the progress bar.
    """
    if writer is not None:
        for key, value in values.items():
            writer.add_scalar(f"train/{key}", value, step)
        writer.add_scalar("train/lr", lr, step)
        writer.add_scalar("train/images_per_s", images_per_s, step)
    terms = "".join(f" {k} {v:.4g}" for k, v in values.items() if k != "total")
    terms = f" |{terms}" if terms else ""  # a task with one term (classification) has none
    logger.info("step %d/%d | loss %.4f%s | lr %.2e | %.1f img/s", step, max_steps,
                values["total"], terms, lr, images_per_s)
    bar.set_postfix(loss=f"{values['total']:.4f}", img_s=f"{images_per_s:.1f}", refresh=False)
