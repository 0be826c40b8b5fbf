"""Exponential moving average of a model's weights (off by default: ``train.ema: 0``)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

__all__ = ["ModelEma"]


class ModelEma:
    """``ema = decay * ema + (1 - decay) * weights`` after every optimizer step.

    Floating parameters and buffers are averaged; integer buffers (BatchNorm's
    ``num_batches_tracked``) are copied.

    Args:
        model: the trained model (unwrapped: not DDP or compiled).
        decay: in (0, 1), e.g. 0.999.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights."""
        current = model.state_dict()
        for name, average in self.module.state_dict().items():
            value = current[name].detach()
            if average.is_floating_point():
                average.lerp_(value.to(average.dtype), 1.0 - self.decay)
            else:
                average.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "model": self.module.state_dict()}

    @torch.no_grad()
    def reset(self, model: nn.Module) -> None:
        """Restart the average at ``model``'s current weights."""
        self.module.load_state_dict(model.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load the averaged weights; the decay stays as configured (``--set train.ema``)."""
        self.module.load_state_dict(state["model"])
