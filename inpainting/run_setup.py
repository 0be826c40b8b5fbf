"""One training run from the command line's point of view: config -> run folder -> Trainer.

``setup_training`` resolves the config (a file, a checkpoint's own config, ``--set``
overrides), prepares the run folder, builds each component with its package's builder
(``inpainting.data.builders``, ``models.build_model``, ``losses.build_loss``, ``optim``) and
returns a ``Session`` holding a ready ``Trainer``. Everything that can fail because of user
input fails here, before the first step, with a ``UserInputError`` (``inpainting.errors``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from inpainting.classification_setup import (
    build_classification_loaders,
    resolve_classification_inputs,
)
from inpainting.cli import is_environment_error
from inpainting.config import (
    Config,
    ConfigError,
    apply_overrides,
    config_from_dict,
    load_config,
    save_config,
)
from inpainting.data import (
    build_datasets,
    build_mask_source,
    build_val_loader,
    build_val_masks,
    resolve_image_paths,
    write_file_list,
)
from inpainting.data.builders import check_images_decode
from inpainting.data.dataset import InpaintingDataset
from inpainting.data.demo import prepare_demo_data
from inpainting.engine import (
    DistInfo,
    ModelEma,
    Trainer,
    load_checkpoint,
)
from inpainting.engine.batches import check_batch_fits, make_train_loader
from inpainting.engine.checkpoint import find_checkpoint
from inpainting.engine.devices import check_device_options
from inpainting.engine.distributed import (
    barrier,
    broadcast_object,
    init_distributed,
)
from inpainting.engine.memory import keep_freed_memory
from inpainting.engine.reporting import make_writer, setup_logging
from inpainting.engine.run_lock import RunLock, acquire_run_lock
from inpainting.engine.tasks import drop_metrics_after
from inpainting.losses import build_loss
from inpainting.models import build_model
from inpainting.optim import build_optimizer, build_scheduler
from inpainting.resume_config import (
    ConfigChange,
    apply_optimizer_changes,
    check_resume_config,
    log_resume_changes,
)
from inpainting.run import Session
from masks import parse_bins

__all__ = ["Session", "setup_training"]

logger = logging.getLogger(__name__)


def _resolve_config(config_path: str | None, overrides: list[str],
                    state: dict[str, Any] | None, values: dict[str, Any] | None) -> Config:
    if config_path is not None:
        return load_config(config_path, overrides)
    if values is not None and state is None:
        return config_from_dict(apply_overrides(values, overrides))
    if state is None:
        raise ConfigError("no config given: use --config configs/X.yaml (or --resume RUN_DIR)")
    return config_from_dict(apply_overrides(state["config"], overrides))


def _with_run_dir(config: Config, run_dir: Path) -> Config:
    return dataclasses.replace(config, train=dataclasses.replace(config.train,
                                                                 run_dir=str(run_dir)))


def _fresh_run_dir(config: Config) -> Path:
    stamp = broadcast_object(time.strftime("%Y%m%d-%H%M%S"))  # the same on every rank
    run_dir = Path(config.train.run_dir.replace("{time}", stamp)).expanduser()
    if any((run_dir / name).exists() for name in ("last.pt", "checkpoint.pth.tar")):
        raise ConfigError(f"run folder '{run_dir}' already holds a checkpoint; continue it with "
                          f"--resume {run_dir} or set another train.run_dir")
    return run_dir


def _load_init_from(config: Config, path: str) -> dict[str, Any]:
    """The checkpoint whose weights start a new run, checked against ``config.model``."""
    state = load_checkpoint(path)
    theirs = dict(state["config"]["model"])
    ours = dataclasses.asdict(config.model)
    differing = [k for k in ours if k != "freeze_encoder_bn" and theirs.get(k) != ours[k]]
    if differing:
        fixes = " ".join(f"--set model.{k}={theirs.get(k)}" for k in differing)
        raise ConfigError(f"--init-from checkpoint has a different model ({', '.join(differing)}"
                          f"); use the same model settings, e.g. {fixes}")
    return state


@dataclass
class _Inputs:
    """What the run reads and builds, resolved and checked before its folder is created."""

    train_paths: Sequence[Any]  # image paths (a classification run: its datasets)
    val_paths: Sequence[Any]
    test_paths: Sequence[Any]
    mask_source: Any
    model: nn.Module
    loss: nn.Module
    classification: Any = None  # ClassificationInputs of a classification run


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup_training(config_path: str | None, overrides: list[str] | None = None,
                   resume: str | None = None, init_from: str | None = None,
                   values: dict[str, Any] | None = None,
                   resume_state: dict[str, Any] | None = None) -> Session:
    """Build a run from the command-line arguments of ``train.py``.

    Args:
        config_path: YAML config (optional with ``resume``: the checkpoint's config is used).
        overrides: ``section.key=value`` strings.
        resume: run folder or checkpoint to continue at its exact step.
        init_from: checkpoint whose weights start a new run (e.g. ``configs/finetune.yaml``).
        values: a nested config dict in place of ``config_path`` (``classify.py``'s flags).
        resume_state: the state to continue in place of ``resume``'s contents (a foreign
            checkpoint read by the caller); ``resume`` still names the run folder.

    Returns:
        A ``Session`` with a ready ``Trainer``.

    Raises:
        UserInputError: (``ConfigError`` among them) a problem with the config, the data or
            the files named, with a one-line message.
        OSError: a file or folder cannot be read or written.
    """
    if resume and init_from:
        raise ConfigError("use either --resume (continue a run) or --init-from (new run)")
    state = resume_state if resume_state is not None else (
        load_checkpoint(resume) if resume else None)
    config = _resolve_config(config_path, list(overrides or []), state, values)
    dist, device = init_distributed(config.train.device)
    check_device_options(config, device)
    if device.type == "cpu" and config.train.cpu_keep_freed_memory:
        keep_freed_memory()  # ~15 % faster CPU steps: no page faults on reused activations
    changes: list[ConfigChange] = []
    if state is not None:
        run_dir = find_checkpoint(resume).parent
        changes = check_resume_config(state["config"], config, list(overrides or []), run_dir)
        if state["step"] >= config.train.max_steps:
            raise ConfigError(f"the checkpoint is at step {state['step']}, train.max_steps is "
                              f"{config.train.max_steps}; raise it to train longer, e.g. --set "
                              f"train.max_steps={2 * state['step']}")
    else:
        run_dir = _fresh_run_dir(config)
    config = _with_run_dir(config, run_dir)
    setup_logging(None, dist.is_main)  # console only until the run folder exists
    inputs = (_resolve_classification(config, dist, init_from)
              if config.task == "classification" else _resolve_inputs(config, dist, init_from))
    with _naming_run_folder(run_dir):
        return _open_run(config, run_dir, dist, device, state, inputs, changes)


def _open_run(config: Config, run_dir: Path, dist: DistInfo, device: torch.device,
              state: dict[str, Any] | None, inputs: _Inputs, changes: list[ConfigChange]
              ) -> Session:
    """Create and lock the run folder, then start the run; the lock goes if that fails."""
    barrier()  # every rank has checked before rank 0 writes
    lock = None
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = acquire_run_lock(run_dir)  # before the first write into the folder
    try:
        return _start_run(config, run_dir, dist, device, state, inputs, lock, changes)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _start_run(config: Config, run_dir: Path, dist: DistInfo, device: torch.device,
               state: dict[str, Any] | None, inputs: _Inputs, lock: RunLock | None,
               changes: list[ConfigChange]) -> Session:
    """Write the run folder's config and splits, start logging, build the session."""
    if dist.is_main:
        save_config(config, run_dir / "config.yaml")
    barrier()
    setup_logging(run_dir, dist.is_main)
    logger.info("%s run in %s on %s (%d process(es))", "resuming" if state else "starting",
                run_dir, device, dist.world_size)
    logger.info("%d training, %d validation and %d test images", len(inputs.train_paths),
                len(inputs.val_paths), len(inputs.test_paths))
    log_resume_changes(changes)
    if dist.is_main and inputs.classification is None:
        _record_splits(run_dir, inputs)
    session = _build_session(config, run_dir, dist, device, state, inputs)
    apply_optimizer_changes(session.trainer, config, changes)
    session.lock = lock
    return session


@contextlib.contextmanager
def _naming_run_folder(run_dir: Path) -> Iterator[None]:
    """Name the run folder in an OSError that names no file (image and mask writers raise
    ``No space left on device`` without one), so that its one line says where."""
    try:
        yield
    except OSError as error:
        if error.filename or error.errno is None or not is_environment_error(error):
            raise
        raise OSError(error.errno, error.strerror, str(run_dir)) from error


def _resolve_inputs(config: Config, dist: DistInfo, init_from: str | None) -> _Inputs:
    """Find the images, open the mask source, build the model and loss (VGG weights), read
    ``--init-from``: everything that can fail on user input, before anything is written."""
    train_paths, val_paths, test_paths = resolve_image_paths(
        config.data, config.train.seed, functools.partial(_demo_data_once_per_node, dist))
    check_batch_fits(len(train_paths), config.data.batch_size, dist.world_size)
    check_images_decode(train_paths, "data.train", strict=config.data.strict)
    # the validation images come from data.val, or are held out of data.train
    check_images_decode(val_paths[:config.masks.val_count],
                        "data.val" if config.data.val.strip() else "data.train",
                        strict=config.data.strict, split="validation")
    mask_source = build_mask_source(config)
    _seed_everything(config.train.seed)
    model = build_model(**dataclasses.asdict(config.model))
    loss = build_loss(config.loss)
    if init_from:
        init_state = _load_init_from(config, init_from)
        # The averaged weights when the run kept them: they are the ones it validated with.
        ema = init_state.get("ema")
        model.load_state_dict(ema["model"] if ema else init_state["model"])
        logger.info("initialised the %sweights from %s (step %s)", "EMA " if ema else "",
                    init_from, init_state.get("step"))
    return _Inputs(train_paths, val_paths, test_paths, mask_source, model, loss)


def _resolve_classification(config: Config, dist: DistInfo, init_from: str | None) -> _Inputs:
    if init_from:
        raise ConfigError("a classification run starts from weights with "
                          "classifier.init_from, not --init-from")
    found = resolve_classification_inputs(config, dist)
    # the datasets stand in for the path lists: only their lengths are read
    return _Inputs(found.train_set, found.val_set, [], None, found.model, found.loss, found)


def _record_splits(run_dir: Path, inputs: _Inputs) -> None:
    """Write the validation and test image lists to ``run_dir/splits`` (for evaluate.py)."""
    write_file_list(inputs.val_paths, run_dir / "splits" / "val.txt")
    if inputs.test_paths:
        write_file_list(inputs.test_paths, run_dir / "splits" / "test.txt")


def _build_session(config: Config, run_dir: Path, dist: DistInfo, device: torch.device,
                   state: dict[str, Any] | None, inputs: _Inputs) -> Session:
    model = inputs.model
    if config.train.sync_bn and dist.enabled:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    if config.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(config.optim, model)
    # A resumed run drops events logged after its checkpoint (a crash, or --resume best.pt).
    purge_step = int(state["step"]) + 1 if state is not None else None
    writer = make_writer(run_dir, config.log.tensorboard, purge_step) if dist.is_main else None
    train_loader, val_loader, task = _loaders(config, run_dir, dist, device, inputs)
    trainer = Trainer(
        model, inputs.loss.to(device), optimizer, train_loader, val_loader,
        config, run_dir, scheduler=build_scheduler(config, optimizer), writer=writer,
        device=device, dist=dist,
        ema=ModelEma(model, config.train.ema) if config.train.ema > 0 else None,
        val_bins=parse_bins(config.masks.val_bins), task=task)
    if state is not None:
        trainer.load_state_dict(state)
        if inputs.classification is not None and dist.is_main:
            drop_metrics_after(run_dir, trainer.step)  # they are validated again
        logger.info("resumed at step %d (epoch %d, batch %d)", trainer.step,
                    trainer.position["epoch"], trainer.position["batch"])
    return Session(trainer, config, run_dir, dist, writer)


def _loaders(config: Config, run_dir: Path, dist: DistInfo, device: torch.device,
             inputs: _Inputs) -> tuple[DataLoader, DataLoader | None, Any]:
    """The training and validation loaders of the run's task, and the task (None: the
    trainer's default, inpainting)."""
    if inputs.classification is not None:
        train, val = build_classification_loaders(config, inputs.classification, dist, device)
        return train, val, inputs.classification.task
    val_masks = build_val_masks(config, run_dir) if dist.is_main else None
    train_set, val_set = build_datasets(config, inputs.train_paths, inputs.val_paths, val_masks,
                                        inputs.mask_source)
    val = (build_val_loader(config.data, val_set, pin_memory=device.type == "cuda")
           if val_set is not None else None)
    return build_train_loader(config, train_set, dist, device), val, None


def _demo_data_once_per_node(dist: DistInfo, root: Path) -> tuple[Path, Path]:
    """``prepare_demo_data`` by one process per node while the others wait at a barrier."""
    if dist.local_rank == 0:  # one builder per node: nodes need not share a file system
        prepare_demo_data(root, progress=True)
    barrier()
    return prepare_demo_data(root)


def build_train_loader(config: Config, dataset: InpaintingDataset, dist: DistInfo,
                       device: torch.device) -> DataLoader:
    """The resumable training loader of this process's shard (see ``engine.batches``)."""
    return make_train_loader(dataset, config.data.batch_size, config.data.num_workers,
                             config.train.seed, dist.rank, dist.world_size,
                             pin_memory=device.type == "cuda")
