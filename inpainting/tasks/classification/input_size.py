"""Refuse an input size that a classifier's feature maps outgrow, before training starts.

Each stride-2 stage halves the feature maps, so a small input leaves the deep layers maps of a
pixel or two. Two things then fail inside ``forward`` with a torch traceback: reflection
padding, which ``F.pad`` only defines for maps larger than the padding (torchvision's ResNets
at 32 px: layer4 works on 1x1 maps), and a conv or pool whose window no longer fits (a VGG's
fifth max-pool below 32 px). :func:`check_input_size` runs the network once on a blank image
with a check before every conv and pool, and turns the first such layer into one line that
names it, its map size, and the smallest input size that works.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from inpainting.engine.errors import UserInputError

__all__ = ["check_input_size", "input_size_problem"]

_LARGEST_SUGGESTION = 1024  # sizes tried when searching for the smallest one that works


class _TooSmall(Exception):
    """Raised by the check hooks: the message says which layer and why."""


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


def _check_layer(name: str, module: nn.Module, height: int, width: int) -> None:
    """Raise ``_TooSmall`` when ``module`` cannot work on ``height x width`` maps."""
    padding = module.padding
    if isinstance(padding, str):  # 'same' keeps the size, 'valid' is checked by its window
        padding = (0, 0)
    padding = _pair(padding)
    kind = type(module).__name__
    if getattr(module, "padding_mode", None) == "reflect" and (
            height <= padding[0] or width <= padding[1]):
        raise _TooSmall(f"{name} ({kind}) pads {padding[0]} px by reflection, which needs maps "
                        f"larger than that, but gets {height}x{width}")
    kernel, stride, dilation = (_pair(getattr(module, key, 1))
                                for key in ("kernel_size", "stride", "dilation"))
    for size, axis in ((height, 0), (width, 1)):
        span = dilation[axis] * (kernel[axis] - 1) + 1
        if size + 2 * padding[axis] < span:
            raise _TooSmall(f"{name} ({kind}) has a {kernel[0]}x{kernel[1]} window that does "
                            f"not fit its {height}x{width} maps")


def input_size_problem(model: nn.Module, size: int, channels: int = 3) -> str | None:
    """Why ``size x size`` inputs fail in ``model``'s convs or pools, or None when they work.

    Runs one forward pass in eval mode without gradients (the training mode and every weight
    and buffer are left as they were).

    Args:
        model: a classifier taking ``(B, channels, H, W)``.
        size: the input side in pixels.
        channels: input channels.
    """
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            def hook(module: nn.Module, args: tuple, name: str = name) -> None:
                _check_layer(name, module, *args[0].shape[-2:])
            hooks.append(module.register_forward_pre_hook(hook))
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else None
    dtype = parameter.dtype if parameter is not None else None
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, channels, size, size, device=device, dtype=dtype))
    except _TooSmall as problem:
        return str(problem)
    finally:
        model.train(was_training)
        for handle in hooks:
            handle.remove()
    return None


def _smallest_working_size(model: nn.Module, failing: int, channels: int) -> int | None:
    """The smallest size above ``failing`` that works (None beyond ``_LARGEST_SUGGESTION``),
    assuming a size works when a smaller one does."""
    high = 2 * failing
    while input_size_problem(model, high, channels) is not None:
        if high >= _LARGEST_SUGGESTION:
            return None
        failing, high = high, min(2 * high, _LARGEST_SUGGESTION)
    while high - failing > 1:
        middle = (failing + high) // 2
        if input_size_problem(model, middle, channels) is None:
            high = middle
        else:
            failing = middle
    return high


def check_input_size(model: nn.Module, size: int, what: str = "the input size",
                     channels: int = 3) -> None:
    """Refuse ``size x size`` inputs that make a conv or pool of ``model`` fail.

    Args:
        model: a classifier taking ``(B, channels, H, W)``.
        size: the input side in pixels.
        what: how the message names the size setting (``"classifier.crop_size"``).
        channels: input channels.

    Raises:
        UserInputError: one line naming the layer that fails, its map size, and the fix.
    """
    problem = input_size_problem(model, size, channels)
    if problem is None:
        return
    smallest = _smallest_working_size(model, size, channels)
    fix = (f"raise {what} to at least {smallest} px" if smallest is not None
           else f"raise {what}")
    if "reflection" in problem:
        fix += " or use zero, replicate or partial padding"
    raise UserInputError(f"{size} px inputs are too small for this network: {problem}; {fix}")
