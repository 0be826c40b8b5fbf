"""Plain-ops references for the partial convolution layers, written from their definitions.

Both are compositions of ordinary differentiable torch ops (no custom autograd), so tests compare
values, gradients and second-order gradients of the layers against them.
Masks: 1 = known, 0 = hole.
"""

import torch
import torch.nn.functional as F


def dense_reference(layer, x, mask=None):
    """The definition written out densely: S, ratio = W / S, out = conv(x*M) * ratio + b [S>0].

    Args:
        layer: a PartialConv2d / PartialConv3d (its hyper-parameters, weight and bias are used).
        x: (B, C_in, *spatial) input.
        mask: (B or 1, 1 or C_in, *spatial), None for all ones.

    Returns:
        out (B, C_out, *spatial_out) and clamp(S, 0, 1): (B, 1, *spatial_out), or
        (B, C_out, *spatial_out) in multi-channel mode.
    """
    dims = x.dim() - 2
    conv = F.conv2d if dims == 2 else F.conv3d
    channels = x.shape[1] if layer.multi_channel else 1
    if mask is None:
        mask = torch.ones((x.shape[0], channels) + x.shape[2:], dtype=x.dtype)
    kernel = tuple(layer.kernel_size)
    args = (layer.stride, layer.padding, layer.dilation)
    if layer.multi_channel:
        slide = layer.in_channels // layer.groups * torch.tensor(kernel).prod().item()
        per_group = mask.unflatten(1, (layer.groups, -1)).sum(2)
        ones = torch.ones((layer.groups, 1) + kernel, dtype=mask.dtype)
        window = conv(per_group, ones, None, *args, layer.groups)
        window = window.repeat_interleave(layer.out_channels // layer.groups, 1)
    else:
        slide = torch.tensor(kernel).prod().item()
        window = conv(mask, torch.ones((1, 1) + kernel, dtype=mask.dtype), None, *args)
    raw = conv(x * mask, layer.weight, None, *args, layer.groups)
    out = raw * torch.where(window > 0, slide / window.clamp_min(1e-8), 0.0)
    if layer.bias is not None:
        out = out + layer.bias.view((1, -1) + (1,) * dims) * (window > 0)
    return out, window.clamp(0, 1)


def nvidia_reference(layer, x, mask=None):
    """NVIDIA's reference PartialConv2d semantics in multi-channel mode (groups = 1).

    Their layer, as its README and the paper describe it: the mask is convolved with a ones
    kernel of shape (C_out, C_in, k_h, k_w), so every output channel gets the same window sum S;
    ``ratio = C_in * k_h * k_w / (S + 1e-8) * clamp(S, 0, 1)``;
    ``out = ((conv(x * M, w, b) - b) * ratio + b) * clamp(S, 0, 1)`` (just ``conv(x * M, w) *
    ratio`` without bias); the updated mask is clamp(S, 0, 1), shape (B, C_out, H', W'). A
    missing mask is all ones of shape (B, C_in, H, W).

    Args:
        layer: a PartialConv2d with ``multi_channel=True`` and ``groups=1``.
        x: (B, C_in, H, W) input.
        mask: (B, C_in, H, W), or None.

    Returns:
        out (B, C_out, H', W') and the updated mask (B, C_out, H', W') in {0, 1}.
    """
    if mask is None:
        mask = torch.ones_like(x)
    args = (layer.stride, layer.padding, layer.dilation)
    ones = torch.ones((layer.out_channels, layer.in_channels) + tuple(layer.kernel_size),
                      dtype=mask.dtype)
    with torch.no_grad():
        window = F.conv2d(mask, ones, None, *args)
        update = window.clamp(0, 1)
        ratio = ones[0].numel() / (window + 1e-8) * update
    raw = F.conv2d(x * mask, layer.weight, layer.bias, *args)
    if layer.bias is None:
        return raw * ratio, update
    bias = layer.bias.view(1, -1, 1, 1)
    return ((raw - bias) * ratio + bias) * update, update
