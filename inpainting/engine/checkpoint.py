"""Checkpoints: plain dicts of tensors, numbers, strings and lists, written atomically.

Layout (``CHECKPOINT_VERSION`` 1)::

    model         state dict of the network
    optimizer     optimizer state dict
    scheduler     lr scheduler state dict (or None)
    scaler        GradScaler state dict (empty unless fp16)
    ema           {"decay", "model"} of the weight average (or None)
    step          optimizer steps done
    train_seconds wall time spent training so far (train.max_minutes; absent: 0)
    best_metric   best validation score so far (the task's ``score``; or None)
    config        the resolved config as a nested dict (its task's sections only)
    rng_state     {"python", "numpy", "torch", "cuda"}
    data_position {"epoch", "batch"}: batches of that epoch already trained on
    version       CHECKPOINT_VERSION

A task may write the state in a layout of its own (``Task.pack_checkpoint``) under file names of
its own (``Task.checkpoint_file``); ``load_checkpoint`` gives it back in this layout through the
task's ``unpack_checkpoint``, found in the registry by ``config["task"]``. A config saved by an
earlier version is migrated first (``inpainting.tasks.migrate_config``).

Everything is read back with ``torch.load(path, map_location=..., weights_only=True)``, which
refuses arbitrary pickled objects, so a checkpoint cannot run code when loaded.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import random
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from inpainting import tasks
from inpainting.engine.config import Config, config_to_dict
from inpainting.engine.ema import ModelEma
from inpainting.engine.errors import EnvironmentProblem, UserInputError
from inpainting.engine.signals import pause_point

__all__ = [
    "CHECKPOINT_VERSION",
    "TrainingParts",
    "capture_rng_state",
    "find_checkpoint",
    "load_checkpoint",
    "read_checkpoint_file",
    "restore_rng_state",
    "restore_training_state",
    "save_checkpoint",
    "training_state",
    "training_state_of",
    "unreadable_reason",
]

CHECKPOINT_VERSION = 1
_ZIP_MAGIC = b"PK\x03\x04"


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``state`` to ``path`` via ``path.tmp`` + ``os.replace``.

    A kill at any moment leaves either the previous file or the new one, never a torn file.
    Any failure removes ``path.tmp``, so that a full disk is not kept full by it.

    Raises:
        EnvironmentProblem: the file cannot be written (disk full, quota, permissions, a
            read-only file system, or torch's report of a failed write); one line naming the
            file and the fix.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(state, tmp)
        pause_point("checkpoint_write")
        os.replace(tmp, path)
    except BaseException as error:
        problem = _write_problem(error, path)  # before the unlink frees the space it took
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if problem is None:
            raise
        raise EnvironmentProblem(problem) from error


# errno values of a failed write that the user fixes outside the program
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS,
                 errno.EFBIG, errno.ENOTDIR, errno.ENOENT}
# torch reports a failed write of its zip writer as a RuntimeError with one of these
_TORCH_WRITE_FAILURES = ("inline_container.cc", "PytorchStreamWriter", "cannot be opened",
                         "Parent directory", "file write failed", "iostream error")


def _write_problem(error: BaseException, path: Path) -> str | None:
    """One line for a failed checkpoint write, or None when the error is no write failure."""
    if isinstance(error, OSError) and error.errno in _WRITE_ERRNOS:
        reason = (error.strerror or str(error)).lower()
    elif isinstance(error, RuntimeError) and any(m in str(error)
                                                 for m in _TORCH_WRITE_FAILURES):
        reason = _probe_folder(path.parent)
    else:
        return None
    return (f"cannot write checkpoint '{path}' ({reason}); free some space or make the folder "
            "writable, or set another train.run_dir")


def _probe_folder(folder: Path) -> str:
    """Why a folder takes no file, as far as the file system tells (torch's errors do not)."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "the folder is missing or unreadable"
    if not os.access(folder, os.W_OK):
        return "the folder is not writable"
    return f"the write failed with {free / 2**20:.0f} MiB free on its disk"


@dataclass
class TrainingParts:
    """The objects whose state a checkpoint holds (scheduler and EMA may be None)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    scaler: torch.amp.GradScaler
    ema: ModelEma | None = None


def training_state(parts: TrainingParts, progress: dict[str, Any], config: Config
                   ) -> dict[str, Any]:
    """The checkpoint dict (layout in the module docstring).

    Args:
        parts: what is trained.
        progress: ``step``, ``train_seconds``, ``best_metric``, ``data_position``.
        config: the run's resolved config.
    """
    return {
        "model": parts.model.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict() if parts.scheduler is not None else None,
        "scaler": parts.scaler.state_dict(),
        "ema": parts.ema.state_dict() if parts.ema is not None else None,
        **progress,
        "config": config_to_dict(config),
        "rng_state": capture_rng_state(),
        "version": CHECKPOINT_VERSION,
    }


def restore_training_state(parts: TrainingParts, state: dict[str, Any]) -> dict[str, Any]:
    """Put a checkpoint back into the parts and the process's RNG states.

    Returns:
        The progress to continue from: ``step``, ``train_seconds``, ``best_metric``,
        ``data_position``.
    """
    parts.model.load_state_dict(state["model"])
    parts.optimizer.load_state_dict(state["optimizer"])
    if parts.scheduler is not None and state.get("scheduler"):
        parts.scheduler.load_state_dict(state["scheduler"])
    if state.get("scaler"):
        parts.scaler.load_state_dict(state["scaler"])
    if parts.ema is not None and state.get("ema"):
        parts.ema.load_state_dict(state["ema"])
    elif parts.ema is not None:  # EMA switched on for a run that had none
        parts.ema.reset(parts.model)
    step = int(state["step"])
    if parts.scheduler is not None and not state.get("scheduler"):
        _fast_forward(parts.scheduler, step)
    if state.get("rng_state") is not None:  # None: a foreign checkpoint, the seed's RNG stays
        restore_rng_state(state["rng_state"])
    return {"step": step, "train_seconds": float(state.get("train_seconds", 0.0)),
            "best_metric": state.get("best_metric"),
            "data_position": {k: int(v) for k, v in state["data_position"].items()}}


def _fast_forward(scheduler: torch.optim.lr_scheduler.LambdaLR, step: int) -> None:
    """Put a fresh ``LambdaLR`` (and its optimizer's lr) at ``step`` of its schedule."""
    lrs = [base * factor(step) for base, factor in zip(scheduler.base_lrs, scheduler.lr_lambdas)]
    for group, lr in zip(scheduler.optimizer.param_groups, lrs):
        group["lr"] = lr
    scheduler.load_state_dict({**scheduler.state_dict(), "last_epoch": step, "_last_lr": lrs})


def find_checkpoint(path: str | os.PathLike) -> Path:
    """``RUN_DIR`` -> the run's last checkpoint (its task's file for ``last.pt``, the task read
    from ``RUN_DIR/config.yaml``), or a checkpoint file as it is.

    Raises:
        UserInputError: neither exists; the message says what was looked for.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        last = _last_checkpoint_name(path)
        if (path / last).is_file():
            return path / last
        raise UserInputError(f"no {last} in run folder '{path}'; pass a checkpoint file")
    if path.is_file():
        return path
    raise UserInputError(f"checkpoint or run folder '{path}' does not exist; pass a checkpoint "
                         "file (.pt) or a run folder")


def _last_checkpoint_name(run_dir: Path) -> str:
    """The file name of a run folder's last checkpoint, as its task names it."""
    try:
        saved = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
        return tasks.get(saved.get("task", tasks.DEFAULT_TASK)).checkpoint_file("last.pt")
    except (OSError, yaml.YAMLError, AttributeError, UnicodeDecodeError, UserInputError):
        return "last.pt"  # no readable config.yaml: the engine's own name


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``.

    Args:
        path: a checkpoint file or a run folder (its ``last.pt``).
        map_location: as for ``torch.load``; the default ``"cpu"`` keeps a CUDA failure from
            reading as a bad file.

    Returns:
        The checkpoint dict (see the module docstring).

    Raises:
        UserInputError: no such checkpoint, not a checkpoint of this project (not a torch file,
            truncated, a foreign pickle), or one from a newer version.
        OSError: the file cannot be read (permissions); the command line gives exit code 3.
    """
    path = find_checkpoint(path)
    return training_state_of(read_checkpoint_file(path, map_location), path)


def training_state_of(raw: Any, path: Path) -> dict[str, Any]:
    """A file read by :func:`read_checkpoint_file` as the engine's training state: checked,
    its config migrated, unpacked by its task.

    Raises:
        UserInputError: as :func:`load_checkpoint`.
    """
    state = _checked_state(raw, path)
    state["config"] = tasks.migrate_config(state["config"])
    return tasks.get(state["config"]["task"]).unpack_checkpoint(state)


def read_checkpoint_file(path: Path, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; a file torch cannot read is a UserInputError."""
    try:
        with warnings.catch_warnings():  # torch warns on pickles of other protocols: a bad file
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except OSError as error:
        if error.errno != errno.EINVAL:  # torch's zip reader on a truncated file: a bad file
            raise
        raise UserInputError(f"cannot read checkpoint '{path}': {unreadable_reason(path, error)}"
                             "; pass a .pt file written by train.py") from error
    except Exception as error:  # KeyError (a text file), EOFError (empty), RuntimeError
        # (truncated zip), UnpicklingError (foreign pickle): no common type
        raise UserInputError(f"cannot read checkpoint '{path}': {unreadable_reason(path, error)}"
                             "; pass a .pt file written by train.py") from error


def _checked_state(state: Any, path: Path) -> dict[str, Any]:
    """A loaded checkpoint with a config of this project, or a UserInputError saying why not.
    """
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
        owner = tasks.checkpoint_owner(state)  # a foreign format a task reads
        found = f"{owner}, not" if owner else "not"
        raise UserInputError(f"'{path}' is {found} a training checkpoint of this project; pass a "
                             ".pt file written by train.py")
    if int(state.get("version", 0)) > CHECKPOINT_VERSION:
        raise UserInputError(f"checkpoint '{path}' has version {state['version']}, newer than "
                             f"this code ({CHECKPOINT_VERSION}); update the package")
    return state


def unreadable_reason(path: Path, error: Exception) -> str:
    """Why ``torch.load`` refused ``path``, in a few words (torch's own text runs to 700
    characters of advice about ``weights_only`` that does not apply to a user's bad file)."""
    with open(path, "rb") as file:
        head = file.read(4)
    if not head:
        return "the file is empty"
    if head != _ZIP_MAGIC:  # every checkpoint torch.save writes is a zip archive
        return "not a file written by torch.save"
    if isinstance(error, pickle.UnpicklingError):
        return ("it holds objects other than tensors and plain types, which are not loaded "
                "because loading them could run code")
    return "the file is truncated or corrupt (an unreadable torch zip archive)"


def capture_rng_state() -> dict[str, Any]:
    """The python, numpy, torch and CUDA generator states, as plain types and tensors."""
    version, mt_state, gauss_next = random.getstate()
    _, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "python": {"version": version, "state": list(mt_state), "gauss_next": gauss_next},
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Undo ``capture_rng_state`` (CUDA states only when the device count matches)."""
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss_next"]))
    numpy_state = state["numpy"]
    np.random.set_state((
        "MT19937",
        numpy_state["keys"].numpy().astype(np.uint32),
        numpy_state["position"],
        numpy_state["has_gauss"],
        numpy_state["cached_gaussian"],
    ))
    torch.set_rng_state(state["torch"].cpu())
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
