"""Allocation-lean autograd pieces behind :mod:`inpainting.layers.partial_conv`.

On the CPU a new output-sized tensor costs as much as the arithmetic on it (fresh pages), so the
renormalisation is done in place wherever autograd allows:

* :class:`BorderRenormConv` is partial-convolution padding (Liu et al. 2018, "Partial
  Convolution based Padding", Eq. 3-4). With an all-ones mask the ratio differs from 1 only on
  thin border boxes, so the forward pass rescales those boxes in place, and the backward pass is
  the ordinary convolution backward plus small corrections computed on the border boxes alone.
* :class:`MaskedBiasAdd` adds the bias only where the window saw a known pixel, in place, and
  reduces the bias gradient with a batched matrix product instead of an output-sized temporary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["BorderBox", "BorderRenormConv", "MaskedBiasAdd", "plan_border_boxes"]


@dataclass(frozen=True)
class BorderBox:
    """One output box whose ratio is not 1, with the input range its windows read."""

    out_slices: tuple[slice, ...]      # per spatial dim, into the output
    in_ranges: tuple[tuple[int, int], ...]  # per spatial dim, [start, stop) in input coordinates
    ratio: Tensor                      # (1, 1, *box) float


def _leading_partial(counts: list[int], full: int) -> int:
    n = 0
    while n < len(counts) and counts[n] < full:
        n += 1
    return n


def plan_border_boxes(
    counts: list[list[int]], kernel: tuple[int, ...], stride: tuple[int, ...],
    dilation: tuple[int, ...], pad_left: tuple[int, ...], device: torch.device,
    dtype: torch.dtype,
) -> list[BorderBox] | None:
    """Split the output positions whose windows overlap the zero border into disjoint boxes.

    Args:
        counts: per spatial dim, the number of kernel taps inside the input at each output
            position (the separable factors of the window sum S of an all-ones mask).
        kernel, stride, dilation, pad_left: per spatial dim.

    Returns:
        The boxes, or None when the layout is unusual (a window with no real pixel, or partial
        windows that are not a prefix/suffix); the caller then uses the dense ratio map.
    """
    dims = len(counts)
    inner: list[tuple[int, int]] = []
    for dim in range(dims):
        row, full = counts[dim], kernel[dim]
        if not row or min(row) == 0:
            return None
        head = _leading_partial(row, full)
        tail = _leading_partial(row[::-1], full) if head < len(row) else 0
        if any(c < full for c in row[head:len(row) - tail]):
            return None
        inner.append((head, len(row) - tail))
    boxes = []
    for dim in range(dims):
        size = len(counts[dim])
        for lo, hi in ((0, inner[dim][0]), (inner[dim][1], size)):
            if lo >= hi:
                continue
            # earlier dims restricted to their interior so that boxes do not overlap
            ranges = [inner[j] if j < dim else (0, len(counts[j])) for j in range(dims)]
            ranges[dim] = (lo, hi)
            if any(a >= b for a, b in ranges):
                continue
            ratio = torch.ones((), dtype=torch.float64)
            in_ranges = []
            for j, (a, b) in enumerate(ranges):
                factor = torch.tensor([kernel[j] / c for c in counts[j][a:b]], dtype=torch.float64)
                shape = [1] * dims
                shape[j] = -1
                ratio = ratio * factor.view(shape)
                start = a * stride[j] - pad_left[j]
                in_ranges.append((start, (b - 1) * stride[j] - pad_left[j]
                                  + (kernel[j] - 1) * dilation[j] + 1))
            boxes.append(BorderBox(
                out_slices=tuple(slice(a, b) for a, b in ranges),
                in_ranges=tuple(in_ranges),
                ratio=ratio.to(device=device, dtype=dtype)[None, None],
            ))
    return boxes


def _input_slab(x: Tensor, in_ranges: tuple[tuple[int, int], ...]) -> tuple[Tensor, tuple]:
    """The input region a box reads, zero-padded where it leaves the input; and its slices."""
    slices, pads = [], []
    for dim, (start, stop) in enumerate(in_ranges):
        size = x.shape[2 + dim]
        slices.append(slice(max(start, 0), min(stop, size)))
        pads.append((max(-start, 0), max(stop - size, 0)))
    slab = x[(slice(None), slice(None), *slices)]
    flat_pads = [p for pair in reversed(pads) for p in pair]  # F.pad wants the last dim first
    if any(flat_pads):
        slab = F.pad(slab, flat_pads)
    return slab, (tuple(slices), tuple(pads))


class BorderRenormConv(torch.autograd.Function):
    """conv(x, w, b) renormalised on border boxes: out = (conv - b) * ratio + b there."""

    @staticmethod
    def forward(ctx, x, weight, bias, boxes, stride, padding, dilation, groups):
        conv = {4: F.conv2d, 5: F.conv3d}[x.dim()]
        out = conv(x, weight, bias, stride, padding, dilation, groups)
        dims = x.dim() - 2
        bias_view = None if bias is None else bias.view((1, -1) + (1,) * dims)
        for box in boxes:
            view = out[(slice(None), slice(None), *box.out_slices)]
            if bias_view is None:
                view.mul_(box.ratio)
            else:  # (v - b) * r + b == v * r + b * (1 - r)
                view.mul_(box.ratio).add_(bias_view * (1 - box.ratio))
        ctx.save_for_backward(x, weight)
        ctx.boxes, ctx.has_bias = boxes, bias is not None
        ctx.conv_args = (list(stride), list(padding), list(dilation), groups)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conv_args
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        zeros = [0] * len(stride)
        grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
            grad_out, x, weight, None, stride, padding, dilation, False, zeros, groups,
            [need_x, need_w, False])
        grad_b = grad_out.sum([d for d in range(grad_out.dim()) if d != 1]) if need_b else None
        if need_x or need_w:
            for box in ctx.boxes:
                # d out / d conv = ratio on the box and 1 elsewhere: add the (ratio - 1) part
                delta = grad_out[(slice(None), slice(None), *box.out_slices)] * (box.ratio - 1)
                slab, (slices, pads) = _input_slab(x, box.in_ranges)
                gx, gw, _ = torch.ops.aten.convolution_backward(
                    delta, slab, weight, None, stride, zeros, dilation, False, zeros, groups,
                    [need_x, need_w, False])
                if need_w:
                    grad_w += gw
                if need_x:
                    crop = tuple(slice(lo, gx.shape[2 + d] - hi) for d, (lo, hi) in
                                 enumerate(pads))
                    grad_x[(slice(None), slice(None), *slices)] += gx[(slice(None), slice(None),
                                                                       *crop)]
        return grad_x, grad_w, grad_b, None, None, None, None, None


class MaskedBiasAdd(torch.autograd.Function):
    """In place: out += bias * valid; valid (B or 1, 1, *S) in {0, 1} in out's dtype, bias (C,)."""

    @staticmethod
    def forward(ctx, out, bias, valid):
        dims = out.dim() - 2
        out.addcmul_(bias.view((1, -1) + (1,) * dims), valid)
        ctx.mark_dirty(out)
        ctx.save_for_backward(valid)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        (valid,) = ctx.saved_tensors
        grad_bias = None
        if ctx.needs_input_grad[1]:
            # sum over batch and positions of grad * valid, as (B, C, N) @ (B, N, 1)
            flat = grad_out.flatten(2)
            weights = valid.expand((grad_out.shape[0], 1) + valid.shape[2:]).flatten(2)
            grad_bias = torch.bmm(flat, weights.transpose(1, 2))
            grad_bias = grad_bias.sum(dim=(0, 2))
        return grad_out, grad_bias, None
