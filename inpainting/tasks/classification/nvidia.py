"""Checkpoints in the format of NVIDIA's partialconv ImageNet script (``main.py``).

That script saves ``{'epoch', 'arch', 'state_dict', 'best_prec1', 'optimizer'}`` dicts to
``checkpoint.pth.tar`` (and copies the best to ``model_best.pth.tar``). Its models are wrapped
in ``DataParallel`` before saving, and the wrapper shows in the weight names: a ResNet is
wrapped whole (``module.conv1.weight``), a VGG (or AlexNet) only in its ``features``
(``features.module.0.weight``, ``classifier.0.weight``). Files written here use those very
names, so NVIDIA's script resumes from them with its own ``model.load_state_dict``, and files
written by NVIDIA's script load here (:func:`load_nvidia_checkpoint`).

``epoch`` is the number of finished epochs (the epoch to resume at), ``best_prec1`` the best
top-1 accuracy in percent, ``optimizer`` the optimizer's state dict for an optimizer built from
``model.parameters()`` in their order (as NVIDIA's script builds its SGD). A ``padding`` entry
is added for the paddings NVIDIA's names cannot express (reflect, replicate); their script
ignores it.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from inpainting.engine.errors import UserInputError
from inpainting.engine.files import atomic_write

__all__ = [
    "NvidiaCheckpoint",
    "load_nvidia_checkpoint",
    "make_nvidia_checkpoint",
    "nvidia_state_dict",
    "read_nvidia_checkpoint",
    "save_nvidia_checkpoint",
]

logger = logging.getLogger(__name__)

_MAX_LISTED_KEYS = 5  # how many offending keys an error message names
_CHECKPOINT_KEYS = ("epoch", "arch", "state_dict", "best_prec1", "optimizer")


def _unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DataParallel / DistributedDataParallel wrapper (or itself)."""
    parallel = (nn.DataParallel, nn.parallel.DistributedDataParallel)
    return model.module if isinstance(model, parallel) else model


def _wraps_features_only(arch: str) -> bool:
    """NVIDIA's rule: ``alexnet*`` and any name holding ``vgg`` wrap only ``model.features``."""
    return arch.startswith("alexnet") or "vgg" in arch


def nvidia_state_dict(model: nn.Module, arch: str) -> dict[str, Tensor]:
    """The model's state dict with the names NVIDIA's DataParallel models give it.

    Args:
        model: the classifier, bare or wrapped in (Distributed)DataParallel.
        arch: its architecture name (``resnet50``, ``pdvgg16_bn``, ...), which decides the
            layout as in NVIDIA's script: ``features.module.`` for VGG/AlexNet, else ``module.``.

    Returns:
        ``{name: tensor}`` with the DataParallel names, tensors shared with the model.
    """
    state = _unwrap(model).state_dict()
    if _wraps_features_only(arch):
        return {(f"features.module.{k[len('features.'):]}" if k.startswith("features.") else k): v
                for k, v in state.items()}
    return {f"module.{k}": v for k, v in state.items()}


def make_nvidia_checkpoint(
    model: nn.Module,
    arch: str,
    epoch: int,
    best_prec1: float,
    optimizer: torch.optim.Optimizer | None,
    padding: str | None = None,
) -> dict[str, Any]:
    """The dict NVIDIA's script saves, from our objects.

    Args:
        model: the classifier (bare or wrapped).
        arch: NVIDIA's name of the model (``pdresnet50`` for partial padding).
        epoch: finished epochs, i.e. the epoch a resumed run starts at.
        best_prec1: best validation top-1 so far, in percent.
        optimizer: built over ``model.parameters()`` in their order, or None (saved as ``{}``).
        padding: ``reflect`` / ``replicate`` (or any scheme) to record beside ``arch``.

    Returns:
        ``{'epoch', 'arch', 'state_dict', 'best_prec1', 'optimizer'}`` (+ ``'padding'``).
    """
    checkpoint: dict[str, Any] = {
        "epoch": int(epoch),
        "arch": arch,
        "state_dict": nvidia_state_dict(model, arch),
        "best_prec1": float(best_prec1),
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
    }
    if padding is not None:
        checkpoint["padding"] = padding
    return checkpoint


def save_nvidia_checkpoint(
    checkpoint: Mapping[str, Any],
    folder: str | os.PathLike,
    is_best: bool,
    filename: str = "checkpoint.pth.tar",
) -> Path:
    """Write ``folder/filename`` atomically (``inpainting.engine.files.atomic_write``), and copy
    it to ``folder/model_best.pth.tar`` when ``is_best``, as NVIDIA's ``save_checkpoint`` does.

    Args:
        checkpoint: from :func:`make_nvidia_checkpoint`.
        folder: the run's checkpoint folder (created if missing).
        is_best: this epoch has the best top-1 so far.
        filename: NVIDIA's names are ``checkpoint.pth.tar`` and ``epoch_{N}_checkpoint.pth.tar``.

    Returns:
        The path written.

    Raises:
        EnvironmentProblem: a file cannot be written (a full disk, permissions); the earlier
            file there is intact and no temporary file is left.
    """
    missing = [k for k in _CHECKPOINT_KEYS if k not in checkpoint]
    if missing:
        raise ValueError(f"an NVIDIA checkpoint needs the keys {missing}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    # torch.save into atomic_write's handle, not to a path: its C++ writer would abort the
    # process on a full disk instead of raising
    atomic_write(path, lambda handle: torch.save(dict(checkpoint), handle))
    if is_best:
        with open(path, "rb") as written:
            atomic_write(folder / "model_best.pth.tar",
                         lambda handle: shutil.copyfileobj(written, handle))
    return path


@dataclass(frozen=True)
class NvidiaCheckpoint:
    """What a checkpoint of NVIDIA's format holds, with plain Python types.

    Attributes:
        epoch: finished epochs (the epoch to resume at).
        arch: the architecture name written by the run (``pdresnet50``, ``vgg16_bn``, ...).
        best_prec1: best top-1 in percent (NVIDIA's files hold a tensor; this is a float).
        state_dict: the weights, with the names as saved (``module.`` components included).
        optimizer: the optimizer's state dict (``{}`` when none was saved).
        padding: the padding recorded beside ``arch``, or None (NVIDIA's own files).
    """

    epoch: int
    arch: str
    best_prec1: float
    state_dict: dict[str, Tensor]
    optimizer: dict[str, Any]
    padding: str | None = None


def _torch_load(path: str | os.PathLike, map_location: Any) -> Any:
    if not os.path.isfile(path):
        raise FileNotFoundError(errno.ENOENT, "checkpoint does not exist", os.fspath(path))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # pickle, zip and weights_only errors have no common type
        raise UserInputError(
            f"cannot read {os.fspath(path)!r} as a PyTorch checkpoint with weights_only=True "
            f"({type(error).__name__}: {' '.join(str(error).split())[:200]})"
        ) from error


def read_nvidia_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> NvidiaCheckpoint:
    """Read a checkpoint of NVIDIA's format (theirs or ours) without building a model.

    Args:
        path: e.g. ``checkpoint_pdresnet50_x/model_best.pth.tar``.
        map_location: where to put the tensors.

    Returns:
        The checkpoint's entries; load the weights with :func:`load_nvidia_checkpoint`.

    Raises:
        FileNotFoundError: the file does not exist.
        UserInputError: not a readable checkpoint, or one that lacks NVIDIA's keys.
    """
    raw = _torch_load(path, map_location)
    missing = ([k for k in _CHECKPOINT_KEYS if k not in raw] if isinstance(raw, Mapping)
               else list(_CHECKPOINT_KEYS))
    if missing:
        raise UserInputError(f"{os.fspath(path)!r} is not a checkpoint of NVIDIA's format "
                             f"(missing {', '.join(missing)})")
    best = raw["best_prec1"]
    return NvidiaCheckpoint(
        epoch=int(raw["epoch"]), arch=str(raw["arch"]),
        best_prec1=float(best.item() if torch.is_tensor(best) else best),
        state_dict=_state_dict_of(raw), optimizer=dict(raw["optimizer"] or {}),
        padding=raw.get("padding"),
    )


def _listed(keys: list[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:_MAX_LISTED_KEYS])
    more = len(keys) - _MAX_LISTED_KEYS
    return shown + (f" and {more} more" if more > 0 else "")


def _state_dict_of(source: Any) -> dict[str, Tensor]:
    """The tensor state dict held by a loaded checkpoint (wrapped or bare)."""
    if isinstance(source, Mapping) and isinstance(source.get("state_dict"), Mapping):
        details = {k: source[k] for k in ("arch", "epoch") if k in source}
        logger.info("checkpoint wrapper found (%s)", details or "no arch/epoch")
        source = source["state_dict"]
    if not isinstance(source, Mapping):
        raise UserInputError(f"expected a state dict (or a dict with a 'state_dict' entry), "
                             f"got {type(source).__name__}")
    bad = [str(k) for k, v in source.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise UserInputError(f"not a state dict: entries {_listed(bad)} are not named tensors "
                             "(expected a model state dict or a dict with a 'state_dict' entry)")
    return dict(source)


def _match_keys(state: dict[str, Tensor], expected: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename checkpoint keys to the model's: drop ``module`` path components of DataParallel.

    The component can sit anywhere (``module.conv1.weight``, ``features.module.0.weight``).
    Keys that already match the model are kept as they are.
    """
    renamed: dict[str, Tensor] = {}
    for key, value in state.items():
        new_key = key
        if key not in expected:
            new_key = ".".join(part for part in key.split(".") if part != "module")
        if new_key in renamed:
            raise UserInputError(f"checkpoint keys collide after removing 'module.': {new_key!r}")
        renamed[new_key] = value
    return renamed


def load_nvidia_checkpoint(
    model: nn.Module,
    path_or_state_dict: str | os.PathLike | Mapping[str, Any],
    strict: bool = True,
    map_location: str | torch.device = "cpu",
) -> nn.Module:
    """Load a checkpoint of NVIDIA's format (or a plain state dict) into ``model``.

    ``module`` components of the names (DataParallel, anywhere in the name) are dropped.
    NVIDIA's layer keeps its mask kernel as a plain attribute, so its state dicts are ordinary
    conv state dicts. Batch-norm ``num_batches_tracked`` entries missing from old
    (torch < 0.4.1) files are not an error: the model keeps its current counters. The padding
    scheme adds no weights, so a checkpoint of any padding loads into a model of any other
    (this is how zero-padding weights are fine-tuned with partial padding).

    Args:
        model: the matching architecture (a (Distributed)DataParallel wrapper is looked through).
        path_or_state_dict: path to the file (read with ``torch.load(weights_only=True)``), or
            an already loaded checkpoint dict / state dict.
        strict: require the keys to match exactly. With ``False`` missing and unexpected keys
            are logged as a warning and skipped.
        map_location: where to put the loaded tensors.

    Returns:
        ``model`` with the checkpoint's weights.

    Raises:
        FileNotFoundError: the path does not exist.
        UserInputError: (a ``ValueError``) the file is not a readable checkpoint, holds no state
            dict, keys do not match (with ``strict``; the message names a few missing /
            unexpected keys), or shapes differ.
    """
    if isinstance(path_or_state_dict, (str, os.PathLike)):
        path_or_state_dict = _torch_load(path_or_state_dict, map_location)
    target = _unwrap(model)
    expected = target.state_dict()
    state = _match_keys(_state_dict_of(path_or_state_dict), expected)
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        message = (f"checkpoint does not match {type(target).__name__}: "
                   f"{len(missing)} missing keys [{_listed(missing)}], "
                   f"{len(unexpected)} unexpected keys [{_listed(unexpected)}]")
        if strict:
            raise UserInputError(message + "; build the architecture the checkpoint was saved "
                                 "from, or pass strict=False to load the matching part")
        logger.warning("%s; loading the matching keys only", message)
        state = {k: v for k, v in state.items() if k in expected}
    wrong = [f"{k}: {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
             for k, v in state.items() if v.shape != expected[k].shape]
    if wrong:
        raise UserInputError(f"checkpoint shapes do not match the model: {_listed(wrong)} "
                             "(different num_classes or architecture?)")
    # Every key was checked above; strict=False only lets num_batches_tracked be absent.
    target.load_state_dict(state, strict=False)
    logger.info("loaded %d tensors into %s", len(state), type(target).__name__)
    return model


def without_data_parallel_names(weights: dict[str, Any]) -> dict[str, Any]:
    """NVIDIA's DataParallel names (``module.conv1.weight``, ``features.module.0.weight``)
    -> the bare model's; torchvision's ResNets and VGGs have no ``module`` of their own."""
    return {".".join(p for p in key.split(".") if p != "module"): value
            for key, value in weights.items()}


def is_nvidia_main_checkpoint(state: Any) -> bool:
    """True for a file written by NVIDIA's ``main.py`` itself (its keys, no training state of
    this project)."""
    return (isinstance(state, Mapping) and "config" not in state
            and {"epoch", "state_dict", "optimizer"} <= state.keys())


def nvidia_resume_state(raw: Mapping[str, Any], config: dict[str, Any],
                        steps_per_epoch: int) -> dict[str, Any]:
    """The training state that continues a checkpoint of NVIDIA's ``main.py``.

    ``main.py`` saves after each epoch the weights, the optimizer and the best top-1, and no
    schedule, RNG or data position: such a run continues at the start of epoch ``epoch`` (step
    ``epoch * steps_per_epoch``), with the lr of ``config``'s schedule at that step and the RNG
    of ``config``'s seed. The state carries ``arch`` (as saved) for the caller to check.

    Args:
        raw: the loaded file (``is_nvidia_main_checkpoint``).
        config: the continuing run's config as a dict (the command's flags).
        steps_per_epoch: optimizer steps per epoch of the continuing run.
    """
    best = raw.get("best_prec1")
    epoch = int(raw["epoch"])
    return {
        "model": without_data_parallel_names(raw["state_dict"]), "optimizer": raw["optimizer"],
        "scheduler": None, "scaler": None, "ema": None, "step": epoch * steps_per_epoch,
        "best_metric": None if best is None else float(best), "config": config,
        "rng_state": None, "data_position": {"epoch": epoch, "batch": 0},
        "arch": str(raw.get("arch", "")),
    }
