"""Allocation-lean autograd pieces behind :mod:`inpainting.layers.partial_conv`.

On the CPU a new output-sized tensor costs as much as the arithmetic on it (fresh pages), so the
renormalisation is done in place wherever autograd allows:

* :class:`BorderRenormConv` is partial-convolution padding (Liu et al. 2018, "Partial
  Convolution based Padding", Eq. 3-4). With an all-ones mask the ratio differs from 1 only on
  thin border boxes, so the forward pass rescales those boxes in place; the backward pass is one
  convolution backward of the gradient rescaled on the boxes (small maps, GPUs), or the ordinary
  convolution backward plus small corrections computed on the border boxes alone (large maps on
  the CPU, where copying the gradient costs more).
* :class:`RenormBias` applies the ratio and adds the bias only where the window saw a known
  pixel, in place: one fused pass when every window saw one. The bias gradient of the general
  case is a batched matrix product instead of an output-sized temporary.

Both backward passes are made of differentiable ops (``aten.convolution_backward`` has its own
derivative), so a gradient taken with ``create_graph=True`` (gradient penalties) can itself be
differentiated. Without ``create_graph`` autograd runs them with gradient recording off, so the
first-order cost is that of the bare ops.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["BorderBox", "BorderRenormConv", "RenormBias", "plan_border_boxes", "renorm_bias_"]


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


def _sum_except_channels(grad: Tensor) -> Tensor:
    """(B, C, *S) -> (C,): the bias gradient of a per-channel bias."""
    return grad.sum([d for d in range(grad.dim()) if d != 1])


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
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conv_args
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        # d out / d b is 1 everywhere: (conv - b) * r + b
        grad_b = _sum_except_channels(grad_out) if need_b else None
        if not (need_x or need_w):
            return None, None, grad_b, None, None, None, None, None
        if grad_out.is_cuda or grad_out.numel() <= _COPY_GRAD_MAX_ELEMENTS:
            grad_x, grad_w = _backward_scaled_copy(ctx, grad_out, x, weight, need_x, need_w)
        else:
            grad_x, grad_w = _backward_box_corrections(ctx, grad_out, x, weight, need_x, need_w)
        return grad_x, grad_w, grad_b, None, None, None, None, None


# A gradient up to this size is copied and rescaled on the border boxes, then one convolution
# backward runs: cheapest on GPUs and for small maps on CPUs. A larger gradient on the CPU costs
# more to copy (an allocation of fresh pages plus a full pass) than the few small convolution
# backwards on the border boxes alone (benchmarks/partial_conv.py, RESULTS.md).
_COPY_GRAD_MAX_ELEMENTS = 1 << 22


def _backward_scaled_copy(ctx, grad_out, x, weight, need_x, need_w):
    """d conv = grad_out * ratio: a copy scaled on the border boxes, then one conv backward."""
    stride, padding, dilation, groups = ctx.conv_args
    scaled = grad_out.clone()
    for box in ctx.boxes:
        scaled[(slice(None), slice(None), *box.out_slices)].mul_(box.ratio)
    grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
        scaled, x, weight, None, stride, padding, dilation, False, [0] * len(stride), groups,
        [need_x, need_w, False])
    return grad_x, grad_w


def _backward_box_corrections(ctx, grad_out, x, weight, need_x, need_w):
    """The plain conv backward of grad_out, plus (ratio - 1) corrections on each border box."""
    stride, padding, dilation, groups = ctx.conv_args
    zeros = [0] * len(stride)
    grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
        grad_out, x, weight, None, stride, padding, dilation, False, zeros, groups,
        [need_x, need_w, False])
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
            crop = tuple(slice(lo, gx.shape[2 + d] - hi) for d, (lo, hi) in enumerate(pads))
            grad_x[(slice(None), slice(None), *slices)] += gx[(slice(None), slice(None), *crop)]
    return grad_x, grad_w


def renorm_bias_(raw: Tensor, ratio: Tensor, bias: Tensor, valid: Tensor | None) -> Tensor:
    """The forward pass of :class:`RenormBias` as plain in-place ops, returning ``raw``.

    For graphs that cannot hold an ``autograd.Function``: a TorchScript trace records one as a
    Python call it cannot save. With ``valid`` given (the only case a trace takes) autograd
    differentiates these ops as they stand; ``valid=None`` writes through ``out=``, which it
    cannot.
    """
    bias_view = bias.view((1, -1) + (1,) * (raw.dim() - 2))
    if valid is None:
        return torch.addcmul(bias_view, raw, ratio, out=raw)
    return raw.mul_(ratio).addcmul_(bias_view, valid)


class RenormBias(torch.autograd.Function):
    """In place on a fresh conv output: ``out = raw * ratio + bias * valid``.

    ``raw`` (B, C, *S) without bias; ``ratio`` (B or 1, 1, *S), 0 where the window saw no known
    pixel; ``bias`` (C,); ``valid`` (B or 1, 1, *S) in {0, 1}, or None when every window saw a
    known pixel, in which case one fused ``addcmul`` does it all in a single pass.
    """

    @staticmethod
    def forward(ctx, raw, ratio, bias, valid):
        renorm_bias_(raw, ratio, bias, valid)
        ctx.mark_dirty(raw)
        ctx.save_for_backward(ratio, valid)
        return raw

    @staticmethod
    def backward(ctx, grad_out):
        ratio, valid = ctx.saved_tensors
        grad_raw = grad_out * ratio if ctx.needs_input_grad[0] else None
        grad_bias = None
        if ctx.needs_input_grad[2]:
            if valid is None:
                grad_bias = _sum_except_channels(grad_out)
            else:
                # sum over batch and positions of grad * valid, as (B, C, N) @ (B, N, 1)
                flat = grad_out.flatten(2)
                weights = valid.expand((grad_out.shape[0], 1) + valid.shape[2:]).flatten(2)
                grad_bias = torch.bmm(flat, weights.transpose(1, 2)).sum(dim=(0, 2))
        return grad_raw, None, grad_bias, None
