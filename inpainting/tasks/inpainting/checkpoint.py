"""Checkpoints of the inpainting task: ``last.pt`` / ``best.pt`` in the engine's layout
(``inpainting.engine.checkpoint``), whose ``config["model"]`` holds the arguments of
``inpainting.models.build_model``; and the network of one, for evaluation and prediction.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from inpainting import tasks
from inpainting.engine.checkpoint import find_checkpoint, read_checkpoint_file, training_state_of
from inpainting.engine.errors import UserInputError
from inpainting.models import build_model

__all__ = ["TASK_NAME", "describe_checkpoint", "load_model_from_checkpoint"]

TASK_NAME = "inpainting"
# How a refusal of a checkpoint ends (evaluate.py, predict, the app, export)
ADVICE = "pass an inpainting checkpoint of train.py (RUN/best.pt) or its run folder"


def describe_checkpoint(state: Any) -> str | None:
    """``"an inpainting checkpoint (pconv_unet, depth 7)"`` for a loaded checkpoint of this
    task, else None."""
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
        return None
    config = state["config"]
    if config.get("task", tasks.DEFAULT_TASK) != TASK_NAME:
        return None
    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    return (f"an inpainting checkpoint ({model.get('name', 'pconv_unet')}, depth "
            f"{model.get('depth', '?')})")


def load_model_from_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """The network of an inpainting checkpoint, for evaluation and prediction.

    The weight average (EMA) is used when the run kept one, as it is the better model.

    Args:
        path: a checkpoint file or a run folder (its ``last.pt``).
        device: where to put the model (a ``torch.device`` or its name).

    Returns:
        ``(model, config)``: the model in eval mode on ``device``, mapping ``(image * mask,
        mask)`` (image (B, 3, H, W) in [0, 1], mask (B, 1, H, W), 1 = known, 0 = hole) to
        ``(output, final_mask)``, and the resolved training config as a nested dict
        (``config["data"]["image_size"]`` etc.).

    Raises:
        UserInputError: no such checkpoint, not a readable checkpoint of this project, one of
            another task (named, e.g. "a classification checkpoint (arch small_vgg), not an
            inpainting one"), or weights that do not fit the model its config describes.
    """
    file = find_checkpoint(path)
    raw = read_checkpoint_file(file, advice=ADVICE)
    if describe_checkpoint(raw) is None:
        owner = tasks.checkpoint_owner(raw)
        if owner is not None:
            raise UserInputError(f"'{file}' is {owner}, not an inpainting one; {ADVICE}")
    state = training_state_of(raw, file, ADVICE)
    config = state["config"]
    try:  # on the CPU, so these errors are about the file's content, never the device
        model = build_model(**config["model"])
        weights = state["ema"]["model"] if state.get("ema") else state["model"]
        model.load_state_dict(weights)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        message = " ".join(str(error).split())
        if len(message) > 160:
            message = message[:160].rsplit(" ", 1)[0] + " ..."
        raise UserInputError(f"checkpoint '{file}' does not fit its model config: "
                             f"{message}") from error
    return model.to(device).eval(), config
