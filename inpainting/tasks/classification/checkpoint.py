"""Which checkpoints the classification task takes, and reading one: this task's own (NVIDIA's
layout with the engine's training state), one written by NVIDIA's ``main.py``, or (for weights
only) a plain state dict. A checkpoint of another task is refused naming what it is (through
the registry, ``inpainting.tasks.checkpoint_owner``), and an unreadable file naming what was
found (``engine.checkpoint.read_checkpoint_file``).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from inpainting import tasks
from inpainting.engine.checkpoint import read_checkpoint_file
from inpainting.engine.errors import UserInputError

__all__ = ["ADVICE", "TASK_NAME", "describe_checkpoint", "is_nvidia_main_checkpoint",
           "read_checkpoint"]

TASK_NAME = "classification"
# How a refusal of a checkpoint ends (classify.py --resume, -e --resume, --finetune-from)
ADVICE = "pass a checkpoint.pth.tar of classify.py or NVIDIA's main.py"


def is_nvidia_main_checkpoint(state: Any) -> bool:
    """True for a file written by NVIDIA's ``main.py`` itself (its keys, no training state of
    this project)."""
    return (isinstance(state, Mapping) and "config" not in state
            and {"epoch", "state_dict", "optimizer"} <= state.keys())


def describe_checkpoint(state: Any) -> str | None:
    """``"a classification checkpoint (arch small_vgg)"`` (ours), or ``"a checkpoint of
    NVIDIA's main.py (arch pdresnet50)"``; None for anything else."""
    if not isinstance(state, dict):
        return None
    if is_nvidia_main_checkpoint(state):
        return f"a checkpoint of NVIDIA's main.py (arch {state.get('arch', '?')})"
    config = state.get("config")
    if isinstance(config, dict) and config.get("task") == TASK_NAME:
        classifier = config.get("classifier")
        arch = state.get("arch") or (classifier.get("arch", "?")
                                     if isinstance(classifier, dict) else "?")
        return f"a classification checkpoint (arch {arch})"
    return None


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Load a checkpoint file with ``weights_only=True`` for this task.

    Returns:
        What the file holds: a checkpoint of this task or NVIDIA's, or a plain state dict.

    Raises:
        FileNotFoundError: the file does not exist.
        UserInputError: not a torch file, truncated, a foreign pickle, or a checkpoint another
            task recognises ("an inpainting checkpoint (...), not a classification one"); one
            line.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(errno.ENOENT, "checkpoint does not exist", os.fspath(path))
    raw = read_checkpoint_file(Path(path), map_location, advice=ADVICE)
    if describe_checkpoint(raw) is None:
        owner = tasks.checkpoint_owner(raw)
        if owner is not None:
            raise UserInputError(f"'{os.fspath(path)}' is {owner}, not a classification one; "
                                 f"{ADVICE}")
    return raw
