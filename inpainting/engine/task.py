"""The seam between the engine and a task, written down as protocols.

The engine (the ``Trainer``, checkpoints, the run set-up in ``engine.run``) knows a task only
through these. A task is a package under ``inpainting.tasks`` (or anywhere, registered with
``inpainting.tasks.register``) whose ``DEFINITION`` is a :class:`TaskDefinition`:

- before the run folder exists, ``definition.prepare(config, dist, init_from)`` reads and checks
  the data, builds the model, the loss and the runtime :class:`Task` (a :class:`Prepared`);
- the trainer calls the :class:`Task` at every step (``loss_terms``), before it
  (``enter_phase``, ``lr_scale``: a fine-tuning phase), at validation (``validate``, ``score``,
  ``report``, ``write_samples``) and when saving (``checkpoint_file``, ``pack_checkpoint``);
- the set-up asks the definition what a resume may change (``fixed_key``, ``neutral_key``,
  ``lr_key``), how an old config is migrated (``renamed_keys``), how its checkpoints read back
  (``unpack_checkpoint``), whose a checkpoint is (``describe_checkpoint``) and what the run's
  summary says (``summary``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

if TYPE_CHECKING:
    from inpainting.engine.config import Config
    from inpainting.engine.distributed import DistInfo

__all__ = ["FitResult", "Prepared", "ReportContext", "Task", "TaskDefinition",
           "ValidationOptions", "autocast_context", "to_device"]


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


@dataclass(frozen=True)
class ReportContext:
    """Where a validation is reported: the step, the data position, the run folder and the
    TensorBoard writer (None: off)."""

    step: int
    epoch: int
    run_dir: Path
    writer: Any = None


@dataclass
class FitResult:
    """What ``Trainer.fit`` did: final step, the signal that stopped it (if any), the best
    validation score (the task's ``score``), the last validation and the last sample image."""

    step: int
    stopped_by: str | None
    best_score: float | None
    last_eval: Any
    sample_path: Path | None


def to_device(tensor: Tensor, device: torch.device, channels_last: bool) -> Tensor:
    """``tensor`` on ``device`` (non-blocking), channels-last when asked."""
    tensor = tensor.to(device, non_blocking=True)
    return tensor.contiguous(memory_format=torch.channels_last) if channels_last else tensor


def autocast_context(device: torch.device, dtype: torch.dtype | None
                     ) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device`` (``None``: fp32, no autocast)."""
    return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()


class Task(Protocol):
    """What the ``Trainer`` trains for (one object per run)."""

    validates_on_all_ranks: bool  # False: rank 0 validates alone
    best_name: str  # what ``score`` measures, for messages ("val PSNR")

    def loss_terms(self, model: nn.Module, loss_fn: nn.Module, batch: dict[str, Tensor],
                   device: torch.device, channels_last: bool) -> dict[str, Tensor]:
        """The scalar loss terms of one micro-batch, ``"total"`` among them."""

    def enter_phase(self, step: int, model: nn.Module) -> bool:
        """Before ``step``: switch the model to another training phase if one starts here;
        True when the set of trained parameters changed (the trainer re-wraps DDP)."""

    def lr_scale(self, step: int) -> float:
        """Factor on the schedule's learning rate at ``step`` (1.0: none)."""

    def validate(self, model: nn.Module, loader: Any, options: ValidationOptions) -> Any:
        """One validation pass; None when ``options.should_stop`` aborted it."""

    def score(self, result: Any) -> float:
        """The number that picks ``best`` (higher is better)."""

    def report(self, result: Any, context: ReportContext) -> Path | None:
        """Log a validation (rank 0); the sample image written, if any."""

    def write_samples(self, model: nn.Module, loader: Any, options: ValidationOptions,
                      context: ReportContext) -> Path | None:
        """Write sample output of the current weights (rank 0); None: none written."""

    def checkpoint_file(self, name: str) -> str:
        """The file name of the trainer's checkpoint ``name`` (``last.pt``, ``best.pt``)."""

    def pack_checkpoint(self, state: dict[str, Any], model: nn.Module) -> dict[str, Any]:
        """The checkpoint dict as written, from the engine's training state."""


class Prepared(Protocol):
    """A run's inputs, read and checked before its folder exists (``TaskDefinition.prepare``).
    """

    model: nn.Module  # on the CPU, not wrapped
    loss: nn.Module
    task: Task
    description: str  # one log line: what the run reads ("8 training, 2 validation images")

    def record(self, run_dir: Path) -> None:
        """Write what the run folder keeps of the inputs (rank 0; e.g. the split lists)."""

    def loaders(self, run_dir: Path, dist: DistInfo, device: torch.device
                ) -> tuple[DataLoader, DataLoader | None]:
        """The resumable training loader of this process and the validation loader."""


class TaskDefinition(Protocol):
    """A task as the registry holds it: its config, resume rules, checkpoints and set-up."""

    name: str
    config_class: type[Config]  # a subclass of engine.config.Config with the task's sections
    renamed_keys: Mapping[str, str | None]  # old dotted config key -> new one (None: dropped)

    def fixed_key(self, key: str) -> bool:
        """True for a dotted config key a resumed run may not change (the network's shape)."""

    def neutral_key(self, key: str) -> bool:
        """True for a key of the task's sections whose change leaves a resumed run's trained
        numbers those of an uninterrupted one (bookkeeping: loader processes, caches)."""

    def lr_key(self, key: str) -> bool:
        """True for a key of the task's that the learning rate of a step depends on."""

    def checkpoint_file(self, name: str) -> str:
        """As ``Task.checkpoint_file``, without a run."""

    def describe_checkpoint(self, state: Any) -> str | None:
        """``"a classification checkpoint (arch small_vgg)"`` when ``state`` (a loaded file)
        is one of this task's, in its own or a foreign format it reads; else None."""

    def unpack_checkpoint(self, state: dict[str, Any]) -> dict[str, Any]:
        """A loaded checkpoint of this task as the engine's training state (``model`` ...)."""

    def prepare(self, config: Config, dist: DistInfo, init_from: str | None) -> Prepared:
        """Read and check the inputs, build model, loss and task (nothing written yet)."""

    def resumed(self, run_dir: Path, step: int) -> None:
        """A run resumes at ``step`` in ``run_dir`` (rank 0): drop records made after it."""

    def summary(self, config: Config, run_dir: Path, result: FitResult,
                tensorboard: bool) -> Sequence[str]:
        """The end-of-run lines after "Trained to step N": results and where things are."""
