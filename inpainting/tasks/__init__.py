"""The registry of tasks: what a run trains, by name, each loaded on first use.

A task is a package that owns its config sections, data, model and loss, validation, checkpoint
files and summary, and exposes them as a ``DEFINITION`` (see ``inpainting.engine.task``). The
engine and the run set-up know tasks only through this module, and a task is imported only when
a run (or a checkpoint) names it, so running one task loads nothing of another::

    definition = tasks.get("inpainting")      # imports inpainting.tasks.inpainting
    config = tasks.load_config("configs/demo.yaml", ["optim.lr=1e-4"])

A task defined elsewhere (a test, a plug-in) joins with :func:`register`.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inpainting.engine.config_parsing import (
    ConfigError,
    apply_overrides,
    build_dataclass,
    check_choice,
    read_yaml,
)

if TYPE_CHECKING:
    from inpainting.engine.config import Config
    from inpainting.engine.task import TaskDefinition

__all__ = ["DEFAULT_TASK", "checkpoint_owner", "config_from_dict", "get", "load_config",
           "migrate_config", "names", "register"]

DEFAULT_TASK = "inpainting"  # a config without ``task:`` trains this one

# name -> "module:attribute" of its definition, imported on first use
_LOCATIONS: dict[str, str] = {
    "inpainting": "inpainting.tasks.inpainting:DEFINITION",
    "classification": "inpainting.tasks.classification:DEFINITION",
}
_LOADED: dict[str, TaskDefinition] = {}


def register(name: str, definition: str | TaskDefinition) -> None:
    """Add (or replace) a task: a definition object, or ``"module:attribute"`` naming one."""
    _LOADED.pop(name, None)
    if isinstance(definition, str):
        _LOCATIONS[name] = definition
    else:
        _LOCATIONS[name] = ""
        _LOADED[name] = definition


def names() -> tuple[str, ...]:
    """The registered task names."""
    return tuple(_LOCATIONS)


def get(name: str) -> TaskDefinition:
    """The definition of task ``name``, imported on first use.

    Raises:
        ConfigError: no such task (the message lists the registered ones).
    """
    check_choice("task", name, names())
    if name not in _LOADED:
        module, _, attribute = _LOCATIONS[name].partition(":")
        _LOADED[name] = getattr(importlib.import_module(module), attribute)
    return _LOADED[name]


def _task_name(values: dict[str, Any]) -> str:
    name = values.get("task", DEFAULT_TASK)
    if not isinstance(name, str):
        raise ConfigError(f"config key 'task' expects str, got {type(name).__name__}")
    check_choice("task", name, names())
    return name


def config_from_dict(values: dict[str, Any]) -> Config:
    """Build the checked config of the task ``values["task"]`` names (default ``DEFAULT_TASK``).

    Args:
        values: ``{"task": ..., "optim": {"lr": 1e-4}, ...}``; missing keys keep defaults.

    Returns:
        The frozen config: an instance of the task's config class.

    Raises:
        ConfigError: an unknown task, section or key, a wrong type or an out-of-range value
            (one line naming the dotted key).
    """
    if not isinstance(values, dict):
        raise ConfigError(f"the config expects a mapping of sections, got "
                          f"{type(values).__name__}")
    values = {**values, "task": _task_name(values)}
    return build_dataclass(get(values["task"]).config_class, values)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config, apply ``--set`` overrides and check everything.

    Args:
        path: YAML file, or ``None`` for the defaults of ``DEFAULT_TASK``.
        overrides: ``section.key=value`` strings applied after the file.

    Returns:
        The frozen, checked config of the task the file names.

    Raises:
        ConfigError: with one line naming the file or dotted key and what is valid.

    Example:
        >>> cfg = load_config("configs/demo.yaml", ["optim.lr=1e-4"])
        >>> cfg.optim.lr
        0.0001
    """
    values = read_yaml(path) if path is not None else {}
    return config_from_dict(apply_overrides(values, list(overrides or [])))


def migrate_config(values: dict[str, Any]) -> dict[str, Any]:
    """A config dict saved by an earlier version (in a checkpoint), readable by today's code.

    Earlier versions saved every task's sections in every run; a run now keeps the sections its
    task declares, with the task's retired or renamed keys (``renamed_keys``: old dotted key ->
    new dotted key, or None to drop it) applied. A config of today passes unchanged.

    Raises:
        ConfigError: the config names no registered task.
    """
    name = _task_name(values)
    definition = get(name)
    sections = {field.name for field in dataclasses.fields(definition.config_class)}
    kept: dict[str, Any] = {key: _copy(value) for key, value in values.items()
                            if key in sections}
    kept["task"] = name
    for old, new in definition.renamed_keys.items():
        section, _, key = old.partition(".")
        node = kept.get(section)
        if not isinstance(node, dict) or key not in node:
            continue
        value = node.pop(key)
        if new is not None:
            new_section, _, new_key = new.partition(".")
            kept.setdefault(new_section, {}).setdefault(new_key, value)
    return kept


def _copy(value: Any) -> Any:
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, dict) else value


def checkpoint_owner(state: Any) -> str | None:
    """What a loaded checkpoint is, in a few words (``"a classification checkpoint (arch
    small_vgg)"``), asking every registered task; None when no task recognises it.

    Imports every task: for error messages about a checkpoint that does not fit.
    """
    for name in names():
        description = get(name).describe_checkpoint(state)
        if description is not None:
            return description
    return None
