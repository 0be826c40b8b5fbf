"""Checkpoints: plain dicts of tensors, numbers, strings and lists, written atomically.

Layout (``CHECKPOINT_VERSION`` 1)::

    model         state dict of the network
    optimizer     optimizer state dict
    scheduler     lr scheduler state dict (or None)
    scaler        GradScaler state dict (empty unless fp16)
    ema           {"decay", "model"} of the weight average (or None)
    step          optimizer steps done
    train_seconds wall time spent training so far (train.max_minutes; absent: 0)
    best_metric   best validation PSNR so far (or None)
    config        the resolved config as a nested dict; config["model"] = build_model kwargs
    rng_state     {"python", "numpy", "torch", "cuda"}
    data_position {"epoch", "batch"}: batches of that epoch already trained on
    version       CHECKPOINT_VERSION

A classification run writes the same state in the layout of NVIDIA's ImageNet script
(``engine.tasks.ClassificationTask.pack_checkpoint``: ``state_dict`` with DataParallel names
instead of ``model``, plus ``epoch``, ``arch``, ``best_prec1``) to ``checkpoint.pth.tar`` and
``model_best.pth.tar``; ``load_checkpoint`` gives it back with a plain ``model`` entry.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from inpainting.config import config_to_dict
from inpainting.engine.signals import pause_point
from inpainting.errors import EnvironmentProblem, UserInputError

__all__ = [
    "CHECKPOINT_VERSION",
    "capture_rng_state",
    "find_checkpoint",
    "load_checkpoint",
    "load_resume_state",
    "load_model_from_checkpoint",
    "restore_rng_state",
    "restore_training_state",
    "save_checkpoint",
    "training_state",
]

if TYPE_CHECKING:
    from inpainting.engine.trainer import Trainer

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


def training_state(trainer: Trainer) -> dict[str, Any]:
    """A trainer's checkpoint dict (layout in the module docstring)."""
    return {
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else None,
        "scaler": trainer.scaler.state_dict(),
        "ema": trainer.ema.state_dict() if trainer.ema is not None else None,
        "step": trainer.step,
        "train_seconds": trainer.elapsed_seconds(),
        "best_metric": trainer.best_metric,
        "config": config_to_dict(trainer.config),
        "rng_state": capture_rng_state(),
        "data_position": dict(trainer.position),
        "version": CHECKPOINT_VERSION,
    }


def restore_training_state(trainer: Trainer, state: dict[str, Any]) -> None:
    """Put a checkpoint back into a trainer: weights, optimizer, schedule, scaler, EMA, step,
    best metric, data position, and the process's RNG states."""
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    if trainer.scheduler is not None and state.get("scheduler"):
        trainer.scheduler.load_state_dict(state["scheduler"])
    if state.get("scaler"):
        trainer.scaler.load_state_dict(state["scaler"])
    if trainer.ema is not None and state.get("ema"):
        trainer.ema.load_state_dict(state["ema"])
    elif trainer.ema is not None:  # EMA switched on for a run that had none
        trainer.ema.reset(trainer.model)
    trainer.step = int(state["step"])
    if trainer.scheduler is not None and not state.get("scheduler"):
        _fast_forward(trainer.scheduler, trainer.step)
    trainer.train_seconds = float(state.get("train_seconds", 0.0))
    trainer.best_metric = state.get("best_metric")
    trainer.position = {k: int(v) for k, v in state["data_position"].items()}
    if state.get("rng_state") is not None:  # None: a foreign checkpoint, the seed's RNG stays
        restore_rng_state(state["rng_state"])


def _fast_forward(scheduler: torch.optim.lr_scheduler.LambdaLR, step: int) -> None:
    """Put a fresh ``LambdaLR`` (and its optimizer's lr) at ``step`` of its schedule."""
    lrs = [base * factor(step) for base, factor in zip(scheduler.base_lrs, scheduler.lr_lambdas)]
    for group, lr in zip(scheduler.optimizer.param_groups, lrs):
        group["lr"] = lr
    scheduler.load_state_dict({**scheduler.state_dict(), "last_epoch": step, "_last_lr": lrs})


def load_resume_state(path: str | os.PathLike, config: dict[str, Any],
                      steps_per_epoch: int) -> dict[str, Any]:
    """:func:`load_checkpoint` for ``classify.py --resume``, which also continues a checkpoint
    written by NVIDIA's ``main.py``; the file is read once either way.

    ``main.py`` saves after each epoch the weights, the optimizer and the best top-1, and no
    schedule, RNG or data position: such a run continues at the start of epoch ``epoch`` (step
    ``epoch * steps_per_epoch``), with the lr of ``config``'s schedule at that step and the RNG
    of ``config``'s seed. Its state carries ``arch`` (as saved) for the caller to check.

    Args:
        path: a checkpoint file or a run folder holding ``checkpoint.pth.tar``.
        config: the run's config as a dict (the continuing command's flags).
        steps_per_epoch: optimizer steps per epoch of the continuing run.

    Raises:
        UserInputError, OSError: as :func:`load_checkpoint`.
    """
    path = find_checkpoint(path)
    raw = _read_checkpoint_file(path, "cpu")
    if not isinstance(raw, dict) or "config" in raw \
            or not {"epoch", "state_dict", "optimizer"} <= raw.keys():
        return _checked_state(raw, path)  # this project's own, or a bad file
    best = raw.get("best_prec1")
    epoch = int(raw["epoch"])
    return {
        "model": _without_data_parallel_names(raw["state_dict"]), "optimizer": raw["optimizer"],
        "scheduler": None, "scaler": None, "ema": None, "step": epoch * steps_per_epoch,
        "best_metric": None if best is None else float(best), "config": config,
        "rng_state": None, "data_position": {"epoch": epoch, "batch": 0},
        "arch": str(raw.get("arch", "")),
    }


def find_checkpoint(path: str | os.PathLike) -> Path:
    """``RUN_DIR`` (-> ``RUN_DIR/last.pt``, or ``checkpoint.pth.tar`` for a classification run)
    or a checkpoint file -> the checkpoint file.

    Raises:
        UserInputError: neither exists; the message says what was looked for.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        for name in ("last.pt", "checkpoint.pth.tar"):
            if (path / name).is_file():
                return path / name
        raise UserInputError(f"no last.pt in run folder '{path}'; pass a checkpoint file")
    if path.is_file():
        return path
    raise UserInputError(f"checkpoint or run folder '{path}' does not exist; pass a checkpoint "
                         "file (.pt) or a run folder")


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
    return _checked_state(_read_checkpoint_file(path, map_location), path)


def _read_checkpoint_file(path: Path, map_location: Any) -> Any:
    """``torch.load(path, weights_only=True)``; a file torch cannot read is a UserInputError."""
    try:
        with warnings.catch_warnings():  # torch warns on pickles of other protocols: a bad file
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except OSError:
        raise
    except Exception as error:  # KeyError (a text file), EOFError (empty), RuntimeError
        # (truncated zip), UnpicklingError (foreign pickle): no common type
        raise UserInputError(f"cannot read checkpoint '{path}': {_unreadable_reason(path, error)}"
                             "; pass a .pt file written by train.py") from error


def _checked_state(state: Any, path: Path) -> dict[str, Any]:
    """A loaded checkpoint as this project's state dict, or a UserInputError saying why not."""
    if isinstance(state, dict) and "model" not in state and "state_dict" in state:
        state["model"] = _without_data_parallel_names(state["state_dict"])
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise UserInputError(f"'{path}' is not a training checkpoint of this project; pass a "
                             ".pt file written by train.py")
    if int(state.get("version", 0)) > CHECKPOINT_VERSION:
        raise UserInputError(f"checkpoint '{path}' has version {state['version']}, newer than "
                             f"this code ({CHECKPOINT_VERSION}); update the package")
    return state


def _without_data_parallel_names(weights: dict[str, Any]) -> dict[str, Any]:
    """NVIDIA's DataParallel names (``module.conv1.weight``, ``features.module.0.weight``)
    -> the bare model's; torchvision's ResNets and VGGs have no ``module`` of their own."""
    return {".".join(p for p in key.split(".") if p != "module"): value
            for key, value in weights.items()}


def _unreadable_reason(path: Path, error: Exception) -> str:
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


def load_model_from_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """The network of a checkpoint, for evaluation and prediction.

    The weight average (EMA) is used when the run kept one, as it is the better model.

    Args:
        path: a checkpoint file or a run folder (its ``last.pt``).
        device: where to put the model.

    Returns:
        ``(model, config)``: the model in eval mode on ``device``, and the resolved training
        config as a nested dict (``config["data"]["image_size"]`` etc.).

    Raises:
        UserInputError: see ``load_checkpoint``, or the weights do not fit the model its config
            describes.
    """
    from inpainting.models import build_model  # engine sits above models

    state = load_checkpoint(path, map_location="cpu")
    config = state["config"]
    try:  # on the CPU, so these errors are about the file's content, never the device
        model = build_model(**config["model"])
        weights = state["ema"]["model"] if state.get("ema") else state["model"]
        model.load_state_dict(weights)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        message = " ".join(str(error).split())
        raise UserInputError(f"checkpoint '{path}' does not fit its model config: "
                             f"{message}") from error
    return model.to(device).eval(), config


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
