"""NVIDIA's ImageNet command line (``classify.py``) mapped onto this project's config and engine.

``training_settings`` turns the flags into ``--set`` overrides of a ``task: classification``
config (epochs -> steps, NVIDIA's lr decay every 30 epochs -> the ``step`` schedule, the global
``-b`` -> ``data.batch_size`` per process), so a ``classify.py`` run is a ``train.py`` run
underneath. NVIDIA's multi-process flags map onto ``torchrun``: launched without it, a
``--world-size`` above 1 or a ``--dist-url`` is refused with the command to use instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

from inpainting import tasks
from inpainting.engine.checkpoint import find_checkpoint, training_state_of
from inpainting.engine.config import config_to_dict
from inpainting.engine.config_parsing import apply_overrides
from inpainting.engine.distributed import cleanup_distributed, init_distributed
from inpainting.engine.errors import UserInputError
from inpainting.engine.optim import epoch_milestones
from inpainting.engine.trainer import AUTOCAST_DTYPES
from inpainting.tasks.classification.checkpoint import (
    ADVICE,
    is_nvidia_main_checkpoint,
    read_checkpoint,
)
from inpainting.tasks.classification.data import (
    ImageFolderDataset,
    check_same_classes,
    find_classes,
)
from inpainting.tasks.classification.models import (
    build_classifier,
    nvidia_arch_name,
    resolve_arch,
)
from inpainting.tasks.classification.nvidia import nvidia_resume_state
from inpainting.tasks.classification.setup import evaluate_classifier, steps_per_epoch
from inpainting.tasks.classification.task import ClassificationResult, checkpoint_file

__all__ = ["DEFAULT_DIST_URL", "LR_DECAY_EPOCHS", "checkpoint_path",
           "evaluate_classifier_checkpoint", "run_folder",
           "training_settings"]

logger = logging.getLogger(__name__)

DEFAULT_DIST_URL = "tcp://224.66.41.62:23456"  # NVIDIA's default: means "not given"
LR_DECAY_EPOCHS = 30  # NVIDIA's adjust_learning_rate: lr * 0.1 ** (epoch // 30)


def _world_size(args: argparse.Namespace) -> int:
    """The number of processes (torchrun's ``WORLD_SIZE``), checked against NVIDIA's flags.

    Raises:
        UserInputError: ``--world-size`` / ``--dist-url`` outside torchrun, a ``--world-size``
            other than torchrun's, or ``--gpu`` under torchrun.
    """
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    wanted = args.world_size
    if launched == 1 and (wanted > 1 or args.dist_url != DEFAULT_DIST_URL):
        processes = max(wanted, 2)
        raise UserInputError(f"--world-size / --dist-url: launch the processes with torchrun "
                             f"instead, e.g. torchrun --nproc_per_node {processes} classify.py "
                             "... (without --world-size, --dist-url and --dist-backend)")
    if wanted > 1 and wanted != launched:
        raise UserInputError(f"--world-size {wanted} differs from torchrun's {launched} "
                             "processes; drop --world-size")
    if args.gpu is not None and launched > 1:
        raise UserInputError("--gpu picks one GPU for a single process; under torchrun each "
                             "process takes the GPU of its LOCAL_RANK: drop --gpu")
    if args.gpu is not None:  # before CUDA starts: the process sees that one GPU only
        os.environ["CUDA_VISIBLE_DEVICES"] = str(args.gpu)
    return launched


def _per_process_batch(args: argparse.Namespace, world_size: int) -> int:
    if args.batch_size < 1 or args.batch_size % world_size:
        raise UserInputError(f"--batch-size {args.batch_size} is the global batch: it must be a "
                             f"positive multiple of the {world_size} processes")
    return args.batch_size // world_size


def run_folder(args: argparse.Namespace) -> str:
    """NVIDIA's ``{ckptdirprefix}checkpoint_{arch}_{prefix}``, with ``pd`` + arch for partial
    padding; reflect and replicate, which NVIDIA's names cannot express, add ``_{padding}``."""
    _, padding = resolve_arch(args.arch, args.padding)
    name = nvidia_arch_name(args.arch, padding)
    if padding in ("reflect", "replicate"):
        name += f"_{padding}"
    return f"{args.ckptdirprefix}checkpoint_{name}_{args.prefix}"


def _setting(key: str, value: Any) -> str:
    return f"{key}={json.dumps(value)}"  # JSON is YAML: paths with any characters stay strings


# The flags (argparse dests) whose values a run's config keeps, by config key. On --resume a
# flag the user did not give takes the checkpoint's value from here, as train.py --resume
# takes the checkpoint's config; -b and --epochs are derived (batch per process, steps).
_FLAG_KEYS = {
    "data_train": "data.train", "data_val": "data.val", "arch": "classifier.arch",
    "padding": "classifier.padding", "pretrained": "classifier.pretrained",
    "finetune_from": "classifier.init_from", "crop_size": "classifier.crop_size",
    "resize_size": "classifier.resize_size", "workers": "data.num_workers", "lr": "optim.lr",
    "momentum": "optim.momentum", "weight_decay": "optim.weight_decay",
    "print_freq": "train.log_every", "seed": "train.seed", "precision": "train.precision",
    "channels_last": "train.channels_last", "device": "train.device",
}
_STEP_FLAGS = frozenset({"epochs", "data_train", "batch_size"})
# What -e takes from the checkpoint: the network and how its val images are read (the train
# folder, which -e only compares class lists with, may be long gone).
_EVAL_FLAGS = frozenset({"data_val", "arch", "padding", "crop_size", "resize_size"})
# The flags each setting follows from, where that is not just its own flag (_FLAG_KEYS).
_SETTING_FLAGS = {
    **{key: {flag} for flag, key in _FLAG_KEYS.items()},
    "classifier.padding": {"arch", "padding"}, "data.batch_size": {"batch_size"},
    "optim.milestones": _STEP_FLAGS, "train.max_steps": _STEP_FLAGS,
    "train.val_every": {"data_train", "batch_size"},
    "train.ckpt_every": {"data_train", "batch_size"}, "train.device": {"device", "gpu"},
}


def _given(args: argparse.Namespace) -> set[str]:
    """The flags typed on the command line (``args.given``); all of them when it is not set."""
    given = getattr(args, "given", None)
    return set(vars(args)) if given is None else set(given)


def _settings(args: argparse.Namespace, batch: int, steps: int) -> dict[str, Any]:
    """Every config key the flags set: dotted key -> value."""
    _, padding = resolve_arch(args.arch, args.padding)
    return {
        "task": "classification",
        "classifier.arch": args.arch, "classifier.padding": padding,
        "classifier.pretrained": args.pretrained, "classifier.init_from": args.finetune_from,
        "classifier.crop_size": args.crop_size, "classifier.resize_size": args.resize_size,
        "data.train": args.data_train, "data.val": args.data_val, "data.batch_size": batch,
        "data.num_workers": args.workers,
        "optim.name": "sgd", "optim.lr": args.lr, "optim.momentum": args.momentum,
        "optim.weight_decay": args.weight_decay, "optim.schedule": "step", "optim.gamma": 0.1,
        "optim.milestones": list(epoch_milestones(LR_DECAY_EPOCHS, args.epochs, steps)),
        "train.max_steps": args.epochs * steps, "train.val_every": steps,
        "train.ckpt_every": steps, "train.log_every": args.print_freq,
        "train.seed": args.seed if args.seed is not None else 0,
        "train.run_dir": run_folder(args),
        "train.precision": args.precision, "train.channels_last": args.channels_last,
        "train.device": "cuda" if args.gpu is not None else args.device,
    }


def training_settings(args: argparse.Namespace
                      ) -> tuple[list[str], str | None, dict[str, Any] | None]:
    """The ``--set`` overrides of a training run, the checkpoint to resume (or None), and the
    state that continues it (read once, NVIDIA's ``main.py`` checkpoints included; or None).

    With ``--resume``, a flag not given (``args.given``) keeps the checkpoint's value, so that
    ``classify.py --resume RUN`` continues the run as it was; only given flags change it.

    Raises:
        UserInputError: a missing or bad folder, flag or combination (one line).
    """
    if args.start_epoch:
        raise UserInputError("--start-epoch: continue a run with --resume CHECKPOINT, which "
                             "restarts at its exact step (epoch, schedule and data position)")
    resume, raw = None, None
    if args.resume:
        resume = checkpoint_path(args.resume)
        raw = read_checkpoint(resume)
        if not is_nvidia_main_checkpoint(raw):  # the engine's layout, its config migrated
            raw = training_state_of(raw, resume, ADVICE)
        _take_checkpoint_flags(args, raw)
    if not (args.data_train and args.data_val):
        nvidia = raw is not None and is_nvidia_main_checkpoint(raw)
        raise UserInputError(f"--resume '{resume}' is a checkpoint of NVIDIA's main.py, which "
                             "records no data folders: pass --data_train and --data_val" if nvidia
                             else "training needs --data_train and --data_val (folders with "
                             "one sub-folder of images per class)")
    world_size = _world_size(args)
    batch = _per_process_batch(args, world_size)
    run_folder(args)  # checks the arch and padding
    check_same_classes(find_classes(args.data_train, "train"), find_classes(args.data_val, "val"))
    steps = steps_per_epoch(args.data_train, batch, world_size)
    settings = _settings(args, batch, steps)
    if resume is None:
        return [_setting(k, v) for k, v in settings.items()] + args.overrides, None, None
    if not is_nvidia_main_checkpoint(raw):  # the checkpoint's config holds the rest
        given = _given(args)
        settings = {k: v for k, v in settings.items() if _SETTING_FLAGS.get(k, set()) & given}
    settings.pop("train.run_dir", None)  # the run continues in the checkpoint's folder
    overrides = [_setting(key, value) for key, value in settings.items()] + args.overrides
    state = _resume_state(args, raw, overrides, steps)
    _check_run_folder(args, resume)
    return overrides, str(resume), state


def _take_checkpoint_flags(args: argparse.Namespace, raw: Any,
                           flags: frozenset[str] | None = None) -> None:
    """Fill in the flags the user did not give from the checkpoint given to ``--resume`` (read
    by ``read_checkpoint``, then ``training_state_of`` for this project's): its config, or the
    arch and padding of one of NVIDIA's ``main.py`` (which records nothing else). ``flags``:
    only these (default: all)."""
    given = _given(args)
    if is_nvidia_main_checkpoint(raw):
        taken = {"arch": raw.get("arch"), "padding": raw.get("padding")}
    else:
        config = raw["config"]
        taken = {flag: config[section].get(key) for flag, dotted in _FLAG_KEYS.items()
                 for section, key in [dotted.split(".")] if section in config}
        data, train = config.get("data", {}), config.get("train", {})
        taken["batch_size"] = data.get("batch_size", 1) * int(os.environ.get("WORLD_SIZE", "1"))
        taken["epochs"] = train.get("max_steps", 1) // max(train.get("val_every", 1), 1)
    for flag, value in taken.items():
        if flag not in given and value is not None and (flags is None or flag in flags):
            setattr(args, flag, value)


def _check_run_folder(args: argparse.Namespace, resume: Path) -> None:
    """A resumed run stays in its folder; ``--prefix`` / ``--ckptdirprefix`` naming another
    is refused."""
    if not {"prefix", "ckptdirprefix"} & _given(args):
        return
    folder = Path(run_folder(args)).expanduser()
    if folder.resolve() != resume.parent.resolve():
        raise UserInputError(f"--resume continues the run in its folder '{resume.parent}', not "
                             f"in '{folder}'; drop --prefix and --ckptdirprefix")


def checkpoint_path(path: str) -> Path:
    """A checkpoint file, or a run folder's (NVIDIA's or ours) ``checkpoint.pth.tar``.

    Raises:
        UserInputError: neither exists.
    """
    folder = Path(path).expanduser()
    last = folder / checkpoint_file("last.pt")
    return last if folder.is_dir() and last.is_file() else find_checkpoint(folder)


def _resume_state(args: argparse.Namespace, raw: Any, overrides: list[str], steps: int
                  ) -> dict[str, Any]:
    """The state that ``--resume`` continues: this project's checkpoint (``raw``, already the
    engine's state), or one of NVIDIA's ``main.py`` (continued at the start of its next
    epoch), checked against ``-a`` / ``--padding``."""
    state = raw
    if is_nvidia_main_checkpoint(raw):
        config = config_to_dict(tasks.config_from_dict(apply_overrides({}, overrides)))
        state = nvidia_resume_state(raw, config, steps)
    if state.get("arch"):
        expected = nvidia_arch_name(*resolve_arch(args.arch, args.padding))
        if state["arch"] != expected:
            raise UserInputError(f"--resume {args.resume} is a {state['arch']} run, the flags "
                                 f"ask for {expected}; pass -a {state['arch']}")
    return state


def evaluate_classifier_checkpoint(args: argparse.Namespace
                                   ) -> tuple[ClassificationResult, bool]:
    """``-e``: Prec@1 / Prec@5 on ``--data_val`` of ``--resume`` (ours or NVIDIA's checkpoint,
    or a plain state dict) or of torchvision's weights (``--pretrained``). Flags not given take
    the values the checkpoint records (ours: the config; NVIDIA's: the arch).

    Returns:
        ``(result, is_main)``: the scores, and whether this process prints them.

    Raises:
        UserInputError: no val folder or no weights given, a bad folder, class lists that
            differ, a checkpoint that does not fit ``-a`` / ``--padding``.
    """
    if args.resume:  # the flags not given take the checkpoint's values
        path = checkpoint_path(args.resume)
        raw = read_checkpoint(path)
        if isinstance(raw, dict) and isinstance(raw.get("config"), dict):
            _take_checkpoint_flags(args, training_state_of(raw, path, ADVICE), _EVAL_FLAGS)
        elif is_nvidia_main_checkpoint(raw):
            _take_checkpoint_flags(args, raw)  # a plain state dict records no flags
    if not args.data_val:
        raise UserInputError("-e needs --data_val (a folder with one sub-folder per class)")
    if not (args.resume or args.pretrained):
        raise UserInputError("-e needs the weights to score: --resume CHECKPOINT or "
                             "--pretrained (torchvision's)")
    world_size = _world_size(args)
    batch = _per_process_batch(args, world_size)
    _, padding = resolve_arch(args.arch, args.padding)
    val_set = ImageFolderDataset(args.data_val, train=False, crop_size=args.crop_size,
                                 resize_size=args.resize_size, role="val")
    if args.data_train:
        check_same_classes(find_classes(args.data_train, "train"), val_set.classes)
    weights = checkpoint_path(args.resume) if args.resume else None
    model = build_classifier(args.arch, padding, len(val_set.classes),
                             pretrained=args.pretrained, init_weights=weights,
                             input_size=args.crop_size)
    dist, device = init_distributed("cuda" if args.gpu is not None else args.device)
    try:
        result = evaluate_classifier(model, val_set, batch, args.workers, dist, device,
                                     AUTOCAST_DTYPES[args.precision])
    finally:
        cleanup_distributed()
    return result, dist.is_main
