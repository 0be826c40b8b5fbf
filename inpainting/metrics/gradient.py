"""The hole's gradient ratio: how sharp a fill is next to the ground truth (``grad-ratio``).

PSNR, SSIM and L1 reward a blurry fill: when the content of a hole is uncertain, the mean of the
plausible fills is the closest image, so a smooth diffusion fill (OpenCV's Telea or
Navier-Stokes) beats a sharp but slightly misplaced texture. ``grad_ratio`` measures what those
metrics miss: the mean gradient magnitude of the fill inside the hole over that of the ground
truth in the same pixels,

    grad_ratio = (mean_hole |grad Y(pred)| + c) / (mean_hole |grad Y(target)| + c),

with ``Y`` the BT.601 luma, ``grad`` the Prewitt operator (3x3, scaled by 1/3, as in GMSD, Xue
et al., "Gradient Magnitude Similarity Deviation", IEEE TIP 2014) and ``c`` two grey levels,
which keeps the ratio finite on a flat hole (a clear sky). 1 is as sharp as the ground truth,
below 1 blurrier, above 1 noisier. It ignores where the edges are, so it is read beside a
fidelity metric, never alone: a fill of noise of the right strength scores 1.

It needs no weights and works on any image of 3x3 pixels or more (``evaluate.py`` accepts 11).
Why this one and not GMSD: ``benchmarks/blur_metrics.py`` (figures in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["GRAD_RATIO_FLOOR", "grad_ratio", "gradient_magnitude"]

# Added to both means: two 8-bit grey levels of gradient per pixel. The flattest hole among the
# demo photos' 128-px crops has a mean ground-truth gradient of 0.8 grey levels, the median 13.
GRAD_RATIO_FLOOR = 2.0 / 255.0
_LUMA = (0.299, 0.587, 0.114)


def gradient_magnitude(image: Tensor) -> Tensor:
    """Prewitt gradient magnitude of the luma of each image.

    Args:
        image: (B, C, H, W) in [0, 1], C = 3 (RGB) or 1 (grey), H, W >= 3.

    Returns:
        (B, 1, H - 2, W - 2): the magnitude at every pixel whose 3x3 window lies inside the
        image (one grey level of step gives 1/255).
    """
    if image.shape[1] == 3:
        weights = image.new_tensor(_LUMA).view(1, 3, 1, 1)
        image = (image * weights).sum(dim=1, keepdim=True)  # (B, 3, H, W) -> (B, 1, H, W)
    kernel = image.new_tensor([[1.0, 0.0, -1.0]] * 3) / 3  # (3, 3), d/dx
    kernels = torch.stack([kernel, kernel.T])[:, None]  # (2, 1, 3, 3): d/dx, d/dy
    grads = F.conv2d(image, kernels)  # (B, 2, H - 2, W - 2)
    return grads.square().sum(dim=1, keepdim=True).sqrt()


def grad_ratio(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean gradient magnitude in the hole, prediction over ground truth (see the module).

    Args:
        pred: (B, C, H, W) in [0, 1] (C = 1 or 3, H, W >= 3), the image to score, usually the
            composite.
        target: (B, C, H, W) in [0, 1], the ground truth.
        mask: (B, 1, H, W), 1 = known, 0 = hole. The means run over the hole pixels not on the
            image's outer one-pixel frame (whose 3x3 window would leave the image).

    Returns:
        (B,) float tensor: 1 = as sharp as the ground truth, < 1 blurrier, > 1 noisier;
        NaN for an image without holes. float64 for float64 inputs, else float32.

    Raises:
        ValueError: if the shapes do not match or the images are smaller than 3x3.
    """
    if pred.ndim != 4 or pred.shape != target.shape or pred.shape[1] not in (1, 3):
        raise ValueError(f"pred and target must be (B, 1 or 3, H, W) of one shape, got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    batch, _, height, width = pred.shape
    if mask.shape != (batch, 1, height, width):
        raise ValueError(f"mask must be (B, 1, H, W) = {(batch, 1, height, width)}, got "
                         f"{tuple(mask.shape)}")
    if height < 3 or width < 3:
        raise ValueError(f"grad_ratio needs images of at least 3x3, got {height}x{width}")
    dtype = torch.promote_types(pred.dtype, torch.float32)
    hole = (mask[:, :, 1:-1, 1:-1] <= 0.5).to(dtype)  # (B, 1, H - 2, W - 2)
    count = hole.sum(dim=(1, 2, 3))
    means = [
        (gradient_magnitude(x.to(dtype)) * hole).sum(dim=(1, 2, 3)) / count  # 0 / 0 = NaN
        for x in (pred, target)
    ]
    return (means[0] + GRAD_RATIO_FLOOR) / (means[1] + GRAD_RATIO_FLOOR)
