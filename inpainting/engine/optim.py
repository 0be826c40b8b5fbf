"""Optimizers and learning-rate schedules, looked up by the names in ``optim.name`` and
``optim.schedule``.

``OPTIMIZERS`` and ``SCHEDULES`` are the one list of valid names: the config checks against
their keys, so adding an entry here makes it usable from YAML.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from inpainting.engine.config_parsing import check, check_choice

__all__ = ["OPTIMIZERS", "SCHEDULES", "OptimConfig", "build_optimizer", "build_scheduler",
           "epoch_milestones", "lr_factor"]


@dataclass(frozen=True)
class OptimConfig:
    """``optim``: optimizer, learning-rate schedule and gradient clipping."""

    name: str = "adam"  # a key of OPTIMIZERS: adam | adamw | sgd
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)  # adam, adamw
    momentum: float = 0.9  # sgd
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # max gradient norm; 0: off
    schedule: str = "constant"  # constant (the paper) | cosine (to 0 at max_steps) | step
    milestones: tuple[int, ...] = ()  # schedule: step multiplies the lr by gamma at these steps
    gamma: float = 0.1

    def __post_init__(self) -> None:
        check_choice("optim.name", self.name, OPTIMIZERS)
        check(self.lr > 0.0, "optim.lr", "> 0", self.lr)
        check(all(0.0 <= b < 1.0 for b in self.betas), "optim.betas", "in [0, 1)",
              list(self.betas))
        check(self.weight_decay >= 0.0, "optim.weight_decay", ">= 0", self.weight_decay)
        check(0.0 <= self.momentum < 1.0, "optim.momentum", "in [0, 1)", self.momentum)
        check(self.grad_clip >= 0.0, "optim.grad_clip", ">= 0", self.grad_clip)
        check_choice("optim.schedule", self.schedule, SCHEDULES)
        check(all(m > 0 for m in self.milestones), "optim.milestones", "> 0",
              list(self.milestones))
        check(0.0 < self.gamma <= 1.0, "optim.gamma", "in (0, 1]", self.gamma)

def _adam(params: Iterable[nn.Parameter], optim: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=optim.lr, betas=optim.betas,
                            weight_decay=optim.weight_decay)


def _adamw(params: Iterable[nn.Parameter], optim: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=optim.lr, betas=optim.betas,
                             weight_decay=optim.weight_decay)


def _sgd(params: Iterable[nn.Parameter], optim: OptimConfig) -> torch.optim.Optimizer:
    # NVIDIA's ImageNet script: SGD, momentum 0.9, weight decay 1e-4 on every parameter
    return torch.optim.SGD(params, lr=optim.lr, momentum=optim.momentum,
                           weight_decay=optim.weight_decay)


# name -> builder(parameters, optim config).
OPTIMIZERS: dict[str, Callable[[Iterable[nn.Parameter], OptimConfig], torch.optim.Optimizer]] = {
    "adam": _adam,
    "adamw": _adamw,
    "sgd": _sgd,
}


def _constant(step: int, optim: OptimConfig, max_steps: int) -> float:
    return 1.0


def _cosine(step: int, optim: OptimConfig, max_steps: int) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(step, max_steps) / max_steps))


def _step_decay(step: int, optim: OptimConfig, max_steps: int) -> float:
    return optim.gamma ** sum(step >= milestone for milestone in optim.milestones)


# name -> factor(step, optim config, max_steps) multiplying the learning rate.
SCHEDULES: dict[str, Callable[[int, OptimConfig, int], float]] = {
    "constant": _constant,  # the paper
    "cosine": _cosine,  # to 0 at max_steps
    "step": _step_decay,  # times gamma at each of optim.milestones
}


def epoch_milestones(every_epochs: int, epochs: int, steps_per_epoch: int) -> tuple[int, ...]:
    """The ``step`` schedule's milestones (in steps) of a decay every ``every_epochs`` epochs.

    NVIDIA's ImageNet script multiplies the lr by 0.1 every 30 epochs: ``epoch_milestones(30,
    100, n)`` is ``(30 n, 60 n, 90 n)``.
    """
    return tuple(e * steps_per_epoch for e in range(every_epochs, epochs, every_epochs))


def build_optimizer(optim: OptimConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer ``optim.name`` over all of ``model``'s parameters.

    Parameters a task freezes later (its fine-tuning phase) stay in the groups but
    get no gradient, so the optimizer leaves them unchanged.

    Args:
        optim: the ``optim`` config section (its name is a key of ``OPTIMIZERS``, checked when
            the config was built).
        model: the network to train.

    Returns:
        The optimizer with ``optim.lr`` and ``optim.weight_decay``, and ``optim.betas``
        (adam, adamw) or ``optim.momentum`` (sgd).
    """
    return OPTIMIZERS[optim.name](model.parameters(), optim)


def lr_factor(step: int, optim: OptimConfig, max_steps: int,
              scale: Callable[[int], float] | None = None) -> float:
    """Learning rate at 0-based step ``step`` divided by ``optim.lr``.

    Args:
        step: the optimizer step.
        optim: the ``optim`` section.
        max_steps: ``train.max_steps`` (the cosine schedule ends there).
        scale: the task's factor at a step (its fine-tuning phase), or None.
    """
    factor = SCHEDULES[optim.schedule](step, optim, max_steps)
    return factor * scale(step) if scale is not None else factor


def build_scheduler(optim: OptimConfig, max_steps: int, optimizer: torch.optim.Optimizer,
                    scale: Callable[[int], float] | None = None
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` following ``lr_factor`` (stepped once per optimizer step).

    Args:
        optim: the ``optim`` section.
        max_steps: ``train.max_steps``.
        optimizer: from ``build_optimizer``.
        scale: the task's factor at a step, or None.
    """
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, optim, max_steps, scale))
