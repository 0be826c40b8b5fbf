"""A run that is set up (``inpainting.run_setup``): fit it, close it, report it.

``Session`` holds the ready ``Trainer`` and what must be released at the end (TensorBoard, the
process group, the run-folder lock); ``fit_and_report`` is what ``train.py`` and
``classify.py`` do with it.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inpainting.classification_setup import classification_summary
from inpainting.config import Config
from inpainting.engine import DistInfo, FitResult, NonFiniteLossError, Trainer
from inpainting.engine.distributed import cleanup_distributed
from inpainting.engine.run_lock import RunLock
from inpainting.errors import EXIT_FAILED, EXIT_OK

__all__ = ["Session", "fit_and_report"]


@dataclass
class Session:
    """A ready-to-fit run: ``session.trainer.fit()``, then ``session.close()``."""

    trainer: Trainer
    config: Config
    run_dir: Path
    dist: DistInfo
    writer: Any = None
    started: float = dataclasses.field(default_factory=time.time)
    lock: RunLock | None = None  # rank 0's lock of the run folder

    def close(self) -> None:
        """Flush TensorBoard, leave the process group and unlock the run folder."""
        if self.writer is not None:
            self.writer.close()
        cleanup_distributed()
        if self.lock is not None:
            self.lock.release()

    def summary(self, result: FitResult, prog: str = "train.py") -> str:
        """The lines ``prog`` prints at the end: results and where to find them."""
        run = self.run_dir
        if result.stopped_by:
            saved = run / self.trainer.task.checkpoint_file("last.pt")
            return (f"Stopped by {result.stopped_by} at step {result.step}; checkpoint saved to "
                    f"{saved}\nResume with: python {prog} --resume {run}")
        minutes = (time.time() - self.started) / 60
        budget = self.config.train.max_minutes
        spent = (f" (the train.max_minutes budget of {budget:g} min)"
                 if budget and result.step < self.config.train.max_steps else "")
        lines = [f"Trained to step {result.step} in {minutes:.1f} min{spent}."]
        if self.config.task == "classification":
            return "\n".join(lines + classification_summary(self.trainer, result.last_eval,
                                                             result.best_psnr, self.writer))
        if result.last_eval is not None:
            lines += [f"Validation at step {result.step} on {self.config.masks.val_count} fixed "
                      "masks (8-bit composite; 'masked input' has its holes black):",
                      result.last_eval.table()]
        best = f" (val PSNR {result.best_psnr:.2f} dB)" if result.best_psnr is not None else ""
        lines += [f"Run folder:   {run}",
                  f"Checkpoints:  {run / 'last.pt'}, {run / 'best.pt'}{best}"]
        if self.writer is not None:
            lines.append(f"TensorBoard:  tensorboard --logdir {run / 'tensorboard'}")
        if result.sample_path is not None:
            lines.append(f"Sample grid:  {result.sample_path}")
        test_list = run / "splits" / "test.txt"
        if test_list.is_file():
            lines.append(f"Evaluate:     python evaluate.py --checkpoint {run / 'best.pt'} "
                         f"--images {test_list}")
        return "\n".join(lines)


def fit_and_report(session: Session, prog: str) -> int:
    """Fit the run, close it and print its summary (rank 0); the command's exit code.

    Returns:
        ``EXIT_OK``, also when a signal stopped the run after saving; ``EXIT_FAILED`` with one
        line on stderr when the loss became NaN/inf.
    """
    try:
        result = session.trainer.fit()
    except NonFiniteLossError as error:  # the run itself failed: one line, exit 1
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        session.close()
    if session.dist.is_main:
        print(session.summary(result, prog))
    return EXIT_OK
