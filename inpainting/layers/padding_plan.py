"""How partial-convolution padding renormalises the zero border for one input size.

Partial-convolution padding (Liu et al. 2018, "Partial Convolution based Padding", Eq. 3-4) is
partial convolution with an all-ones mask: only windows that overlap the zero-padded border get
a ratio W / S other than 1. The window sum S of an all-ones mask is a separable product of 1-D
window counts, so the ratio is built in Python from the layer's hyper-parameters, once per input
size, without looking at any data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from inpainting.layers.renorm import BorderBox, plan_border_boxes

__all__ = ["PaddingPlan", "build_padding_plan"]


@dataclass(frozen=True)
class PaddingPlan:
    """Renormalisation of the zero border for one input size (padding use)."""

    ratio: Tensor                    # (1, 1, *spatial_out): W / S, 0 where S == 0
    valid: Tensor | None             # (1, 1, *spatial_out) float32, None when S > 0 everywhere
    boxes: list[BorderBox] | None    # border boxes for the in-place fast path
    padding: tuple[int, ...] | None  # symmetric integer padding for the fast path


def _pad_amounts(padding: str | tuple[int, ...], kernel: int, dilation: int, dim: int) -> tuple:
    """(left, right) zero padding along one spatial dimension, as PyTorch applies it."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        total = dilation * (kernel - 1)
        return total // 2, total - total // 2
    return padding[dim], padding[dim]


def _window_counts(size: int, kernel: int, stride: int, dilation: int, pad: tuple) -> list[int]:
    """Number of kernel taps that land inside ``[0, size)`` for each output position."""
    left, right = pad
    out_size = (size + left + right - dilation * (kernel - 1) - 1) // stride + 1
    counts = []
    for i in range(out_size):
        start = i * stride - left
        counts.append(sum(1 for t in range(kernel) if 0 <= start + t * dilation < size))
    return counts


def build_padding_plan(
    x: Tensor, kernel_size: Sequence[int], stride: Sequence[int], padding: str | Sequence[int],
    dilation: Sequence[int],
) -> PaddingPlan:
    """The border renormalisation of a convolution for input ``x``.

    Args:
        x: (B, C, *spatial) input; only its spatial size, device and dtype are used.
        kernel_size, stride, dilation: per spatial dim, as ``nn.Conv2d`` / ``nn.Conv3d`` hold
            them.
        padding: per spatial dim, or "same" / "valid".

    Returns:
        The plan: border boxes for the in-place fast path (None when the padding is not
        symmetric or the layout is unusual), and the dense ratio map for the general path.
    """
    dims = x.dim() - 2
    kernel = tuple(kernel_size)
    ratio = torch.ones((), dtype=torch.float64)
    all_counts, pad_left = [], []
    for dim in range(dims):
        pad = _pad_amounts(padding, kernel[dim], dilation[dim], dim)
        counts = _window_counts(x.shape[2 + dim], kernel[dim], stride[dim], dilation[dim], pad)
        all_counts.append(counts)
        pad_left.append(pad[0] if pad[0] == pad[1] else None)
        factor = torch.tensor([kernel[dim] / c if c else 0.0 for c in counts],
                              dtype=torch.float64)
        shape = [1] * dims
        shape[dim] = -1
        ratio = ratio * factor.view(shape)
    boxes = None
    if None not in pad_left:  # the fast path needs symmetric integer padding
        boxes = plan_border_boxes(all_counts, kernel, tuple(stride), tuple(dilation),
                                  tuple(pad_left), x.device, x.dtype)
    valid = ratio > 0
    return PaddingPlan(
        ratio=ratio.to(device=x.device, dtype=x.dtype)[None, None],
        valid=None if bool(valid.all()) else valid.to(x.device, torch.float32)[None, None],
        boxes=boxes,
        padding=tuple(pad_left) if boxes is not None else None,
    )
