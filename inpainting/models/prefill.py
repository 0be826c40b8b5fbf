"""A classical fill of the holes, computed inside the network (an option beyond the paper).

:func:`diffusion_fill` solves Laplace's equation in the holes with the known pixels as boundary
values (the smooth fill that classical diffusion inpainting, e.g. OpenCV's Navier-Stokes method,
approximates), by a multigrid scheme: a pyramid of masked averages down to one pixel, then from
the coarsest level up, each level's holes start from the upsampled coarser solution and take
a few Jacobi steps (the mean of the 4 neighbours). Pure tensor code: it runs on any device,
batches, and traces for export. ``PConvUNet(prefill="diffusion")`` feeds it to the network
beside the masked image and predicts a residual on top of it.

Conventions: image (B, C, H, W) in [0, 1]; mask (B, 1, H, W), 1 = known, 0 = hole.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["PREFILLS", "diffusion_fill"]

# ``model.prefill`` choices of PConvUNet: "none" is the paper's network.
PREFILLS: tuple[str, ...] = ("none", "diffusion")

_JACOBI_STEPS = 8  # per pyramid level; the coarser level already gives the low frequencies
_EPS = 1e-6


def _masked_downsample(values: Tensor, known: Tensor) -> tuple[Tensor, Tensor]:
    """Halve (B, C, H, W) values and their (B, 1, H, W) mask: means over known pixels only."""
    total = F.avg_pool2d(values * known, 2, ceil_mode=True)
    weight = F.avg_pool2d(known, 2, ceil_mode=True)
    return total / weight.clamp(min=_EPS), (weight > 0).to(values.dtype)


def _jacobi(values: Tensor, known: Tensor, steps: int) -> Tensor:
    """``steps`` Jacobi iterations of the discrete Laplace equation in the holes."""
    kernel = values.new_tensor([[0.0, 0.25, 0.0], [0.25, 0.0, 0.25], [0.0, 0.25, 0.0]])
    kernel = kernel.expand(values.shape[1], 1, 3, 3)  # one depthwise kernel per channel
    fixed = values * known
    for _ in range(steps):
        neighbours = F.conv2d(F.pad(values, (1, 1, 1, 1), mode="replicate"), kernel,
                              groups=values.shape[1])
        values = fixed + (1 - known) * neighbours
    return values


@torch.no_grad()
def diffusion_fill(image: Tensor, mask: Tensor) -> Tensor:
    """Fill the holes of ``image`` smoothly from the known pixels around them.

    Args:
        image: (B, C, H, W) float; values in holes are ignored.
        mask: (B, 1, H, W) (or (1, 1, H, W)), 1 = known, 0 = hole.

    Returns:
        (B, C, H, W): the known pixels of ``image`` and a harmonic (smooth) fill of the holes;
        an image without any known pixel comes back as 0.5 everywhere.
    """
    known = mask.to(image.dtype).expand(image.shape[0], 1, *image.shape[2:])
    values = image * known
    pyramid = [(values, known)]
    for _ in range(math.ceil(math.log2(max(image.shape[2:])))):
        pyramid.append(_masked_downsample(*pyramid[-1]))
    coarse, coarse_known = pyramid[-1]  # (B, C, 1, 1)
    filled = coarse_known * coarse + (1 - coarse_known) * 0.5
    for values, known in reversed(pyramid[:-1]):
        start = F.interpolate(filled, size=values.shape[2:], mode="bilinear", align_corners=False)
        filled = _jacobi(known * values + (1 - known) * start, known, _JACOBI_STEPS)
    return filled
