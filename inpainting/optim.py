"""Optimizers and learning-rate schedules, looked up by the names in ``optim.name`` and
``optim.schedule``.

``OPTIMIZERS`` and ``SCHEDULES`` are the one list of valid names: ``inpainting.config`` checks
the config against their keys, so adding an entry here makes it usable from YAML.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # config imports this module for its registries
    from inpainting.config import Config, OptimConfig

__all__ = ["OPTIMIZERS", "SCHEDULES", "build_optimizer", "build_scheduler", "epoch_milestones",
           "lr_factor"]

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

    Parameters frozen later (encoder BatchNorm in the fine-tuning phase) stay in the groups but
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


def lr_factor(step: int, config: Config) -> float:
    """Learning rate at 0-based step ``step`` divided by ``optim.lr``.

    The factor of the schedule ``optim.schedule``, times ``train.finetune_lr / optim.lr`` from
    ``train.finetune_step`` on.
    """
    factor = SCHEDULES[config.optim.schedule](step, config.optim, config.train.max_steps)
    start = config.train.finetune_step
    if start and step >= start:
        factor *= config.train.finetune_lr / config.optim.lr
    return factor


def build_scheduler(config: Config, optimizer: torch.optim.Optimizer
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` following ``lr_factor`` (stepped once per optimizer step).

    Args:
        config: the whole config (the schedule needs ``optim`` and ``train``).
        optimizer: from ``build_optimizer``.
    """
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))
