"""What ``--resume`` may change of the checkpoint's config, and what it says about each change.

A resumed run takes its config from the checkpoint, a ``--config`` file and ``--set``
overrides. Every key that differs from the checkpoint's config is logged (``old -> new``), and
falls in one of three classes:

- refused (``ConfigError``, exit 2): the task, the keys its task calls fixed (the network's
  shapes: ``TaskDefinition.fixed_key``), and a ``--set train.run_dir`` naming another folder
  than the one resumed;
- bookkeeping (``RUN_NEUTRAL_KEYS`` and the task's ``neutral_key``): how long (unless the
  schedule is cosine), how often to log and save, where to run, how many loader processes; the
  trained numbers stay those of an uninterrupted run;
- everything else (batch size, data, loss, optimizer, schedule, EMA, seed, precision):
  accepted with a warning that the run will not reproduce an uninterrupted one.

A changed optimizer setting is applied over the one the checkpoint's optimizer state carries
(``apply_optimizer_changes``).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from inpainting import tasks
from inpainting.engine.config import Config
from inpainting.engine.config_parsing import ConfigError, apply_overrides
from inpainting.engine.optim import lr_factor
from inpainting.engine.trainer import Trainer

__all__ = [
    "RUN_NEUTRAL_KEYS",
    "ConfigChange",
    "apply_optimizer_changes",
    "check_resume_config",
    "log_resume_changes",
]

logger = logging.getLogger(__name__)

# Keys of the base sections whose change leaves the trained weights of a resumed run those of
# an uninterrupted one (a task adds its own: TaskDefinition.neutral_key).
RUN_NEUTRAL_KEYS = frozenset({
    "train.max_steps", "train.max_minutes", "train.log_every", "train.val_every",
    "train.ckpt_every", "train.keep_numbered", "train.device", "train.compile",
    "train.channels_last", "train.cpu_keep_freed_memory",
    "log.progress", "log.tensorboard", "log.image_every", "log.grid_size",
})


@dataclasses.dataclass(frozen=True)
class ConfigChange:
    """One config key that differs from the checkpoint's config."""

    key: str  # dotted, e.g. "data.batch_size"
    old: Any
    new: Any
    changes_the_run: bool  # False for bookkeeping (RUN_NEUTRAL_KEYS)


def _changes_the_run(key: str, config: Config) -> bool:
    if key == "train.max_steps":  # the cosine schedule decays to 0 at max_steps
        return config.optim.schedule == "cosine"
    return key not in RUN_NEUTRAL_KEYS and not tasks.get(config.task).neutral_key(key)


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{dotted}."))
        else:
            flat[dotted] = list(value) if isinstance(value, tuple) else value
    return flat


def _saved_values(saved: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's config with today's defaults filled in (keys added since it was
    written count as unchanged), or as written when it no longer parses."""
    try:
        return _flatten(dataclasses.asdict(tasks.config_from_dict(saved)))
    except ConfigError:
        return _flatten(saved)


def check_resume_config(saved: dict[str, Any], config: Config, overrides: list[str],
                        run_dir: Path) -> list[ConfigChange]:
    """Compare the resumed run's config with its checkpoint's, refusing what cannot work.

    Args:
        saved: ``state["config"]`` of the checkpoint.
        config: the config the run will train with (before ``train.run_dir`` is set).
        overrides: the ``--set`` strings, to tell an explicit ``train.run_dir``.
        run_dir: the folder being resumed.

    Returns:
        The changed keys but ``train.run_dir``, in config order (for ``log_resume_changes``).

    Raises:
        ConfigError: a changed task or key its task keeps fixed (naming the keys and the way
            out), or ``--set train.run_dir`` naming another folder.
    """
    _check_run_dir_override(overrides, run_dir)
    old = _saved_values(saved)
    changes = [ConfigChange(key, old.get(key), new, _changes_the_run(key, config))
               for key, new in _flatten(dataclasses.asdict(config)).items()
               if key != "train.run_dir" and old.get(key) != new]
    definition = tasks.get(config.task)
    refused = [c for c in changes if c.key == "task" or definition.fixed_key(c.key)]
    if refused:
        differing = ", ".join(f"{c.key} {c.old!r} -> {c.new!r}" for c in refused)
        keep = " ".join(f"--set {c.key}={c.old}" for c in refused)
        raise ConfigError(f"--resume cannot change the model ({differing}): the checkpoint's "
                          f"weights have its shapes; keep them ({keep}) or start a new run "
                          "(--config without --resume)")
    return changes


def _check_run_dir_override(overrides: list[str], run_dir: Path) -> None:
    wanted = apply_overrides({}, overrides).get("train", {}).get("run_dir")
    if wanted is None:
        return
    if Path(str(wanted)).expanduser().resolve() != run_dir.expanduser().resolve():
        raise ConfigError(f"--resume continues the run in its own folder '{run_dir}', not in "
                          f"train.run_dir '{wanted}'; drop --set train.run_dir, or copy the "
                          "run folder there and --resume the copy")


def log_resume_changes(changes: list[ConfigChange]) -> None:
    """One line per changed key (``old -> new``), then one warning naming those that make the
    run differ from an uninterrupted one."""
    for change in changes:
        logger.info("resumed with %s changed: %r -> %r", change.key, change.old, change.new)
    altering = [change.key for change in changes if change.changes_the_run]
    if altering:
        logger.warning("resumed with %s changed: the run will not reproduce an uninterrupted "
                       "one", ", ".join(altering))




def apply_optimizer_changes(trainer: Trainer, config: Config, changes: list[ConfigChange]
                            ) -> None:
    """Train a resumed run with the config's optimizer settings, not the checkpoint's.

    The optimizer state of a checkpoint carries the hyper-parameters it was built with (lr,
    betas, weight decay, decoupled decay) and the scheduler its base lr; once loaded they
    would silently undo ``--set optim.lr=...`` on resume. Call after
    ``trainer.load_state_dict``; nothing changes unless an optimizer or schedule key did.
    """
    definition = tasks.get(config.task)
    if not any(c.key.startswith("optim.") or c.key == "train.max_steps"
               or definition.lr_key(c.key) for c in changes):
        return
    optimizer, scheduler = trainer.optimizer, trainer.scheduler
    for group in optimizer.param_groups:
        group.update({k: v for k, v in optimizer.defaults.items() if k != "lr"})
        group["initial_lr"] = config.optim.lr
    if scheduler is not None:
        scheduler.base_lrs = [config.optim.lr] * len(optimizer.param_groups)
        lr = config.optim.lr * lr_factor(scheduler.last_epoch, config.optim,
                                         config.train.max_steps, trainer.task.lr_scale)
        for group in optimizer.param_groups:
            group["lr"] = lr
