"""The composite loss of Liu et al., "Image Inpainting for Irregular Holes Using Partial
Convolutions" (ECCV 2018), Sec. 3.4.

Equation numbers count the loss equations of that section in order: Eq. 1 L_hole, Eq. 2 L_valid,
Eq. 3 L_perceptual, Eq. 4 L_style_out, Eq. 5 L_style_comp, Eq. 6 L_tv, Eq. 7 L_total.

Conventions: images in [0, 1], mask M (B, 1, H, W) with 1 = known pixel, 0 = hole, and the
composite I_comp = M * I_gt + (1 - M) * I_out. Every term is size-averaged: pixel terms divide
by N = B * C * H * W, feature terms by the number of feature (or Gram) elements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpainting.models.losses.vgg import VGG16Features

__all__ = [
    "DEFAULT_WEIGHTS",
    "InpaintingLoss",
    "gram_matrix",
    "hole_loss",
    "perceptual_loss",
    "style_loss",
    "total_variation_loss",
    "valid_loss",
]

# Eq. 7 weights (the paper's hyperparameter search on 100 validation images); the defaults of
# the config's ``loss.weights`` are read from this table.
DEFAULT_WEIGHTS: dict[str, float] = {
    "valid": 1.0, "hole": 6.0, "perceptual": 0.05, "style_out": 120.0, "style_comp": 120.0,
    "tv": 0.1,
}


def hole_loss(output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Eq. 1: L_hole = ||(1 - M) * (I_out - I_gt)||_1 / N, N = number of image elements.

    Args:
        output, target: (B, C, H, W). mask: (B, 1, H, W), 1 = known, 0 = hole.
    """
    return ((1 - mask) * (output - target)).abs().mean()


def valid_loss(output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Eq. 2: L_valid = ||M * (I_out - I_gt)||_1 / N (shapes as :func:`hole_loss`)."""
    return (mask * (output - target)).abs().mean()


def perceptual_loss(out_features: Sequence[Tensor], comp_features: Sequence[Tensor],
                    gt_features: Sequence[Tensor]) -> Tensor:
    """Eq. 3: sum over layers p of mean|psi_p(I_out) - psi_p(I_gt)| + mean|psi_p(I_comp) - ...|.

    Args:
        out_features, comp_features, gt_features: one (B, C_p, H_p, W_p) map per layer p.
    """
    total = out_features[0].new_zeros((), dtype=torch.float32)
    for out, comp, gt in zip(out_features, comp_features, gt_features):
        total = total + F.l1_loss(out, gt) + F.l1_loss(comp, gt)
    return total


def gram_matrix(features: Tensor) -> Tensor:
    """K_p (psi^T psi) of Eq. 4-5, with K_p = 1 / (C_p H_p W_p), always in float32.

    Args:
        features: (B, C, H, W) feature maps (any float dtype; autocast is switched off here
            because the sums overflow in float16).

    Returns:
        (B, C, C) float32 Gram matrices.
    """
    batch, channels, height, width = features.shape
    with torch.autocast(features.device.type, enabled=False):
        features = features.float()
        if features.is_contiguous() or channels == 1:
            flat = features.reshape(batch, channels, height * width)  # (B, C, H*W)
            gram = torch.bmm(flat, flat.transpose(1, 2))
        else:  # channels_last: (B, C, H, W) -> (B, H, W, C) -> (B, H*W, C) without a copy
            flat = features.permute(0, 2, 3, 1).reshape(batch, height * width, channels)
            gram = torch.bmm(flat.transpose(1, 2), flat)
        return gram / (channels * height * width)


def style_loss(features: Sequence[Tensor], gt_features: Sequence[Tensor]) -> Tensor:
    """Eq. 4 (I_x = I_out) or Eq. 5 (I_x = I_comp): sum over layers p of
    mean over the C_p x C_p entries of |K_p psi^T psi (I_x) - K_p psi^T psi (I_gt)|.

    Args:
        features: one (B, C_p, H_p, W_p) map of I_x per layer. gt_features: the same for I_gt.
    """
    total = features[0].new_zeros((), dtype=torch.float32)
    for feat, gt in zip(features, gt_features):
        total = total + (gram_matrix(feat) - gram_matrix(gt)).abs().mean()
    return total


def total_variation_loss(comp: Tensor, mask: Tensor) -> Tensor:
    """Eq. 6: smoothness of I_comp over P, the hole region dilated by one pixel (3x3).

    Sums |I_comp(i, j+1) - I_comp(i, j)| over horizontal pairs and |I_comp(i+1, j) -
    I_comp(i, j)| over vertical pairs whose two pixels both lie in P (each image's own P), over
    all channels, divided by N = C*H*W per image and averaged over the batch (one division of
    the batch sum by B*C*H*W).

    Args:
        comp: (B, C, H, W) composite image. mask: (B or 1, 1, H, W), 1 = known, 0 = hole.
    """
    region = F.max_pool2d(1 - mask, kernel_size=3, stride=1, padding=1)  # P, (B, 1, H, W)
    horizontal = region[..., :, 1:] * region[..., :, :-1]  # both ends in P, (B, 1, H, W-1)
    vertical = region[..., 1:, :] * region[..., :-1, :]    # (B, 1, H-1, W)
    dx = (comp[..., :, 1:] - comp[..., :, :-1]).abs() * horizontal
    dy = (comp[..., 1:, :] - comp[..., :-1, :]).abs() * vertical
    return (dx.sum() + dy.sum()) / comp.numel()


def _resolve_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    resolved = dict(DEFAULT_WEIGHTS)
    for key, value in (weights or {}).items():
        if key not in DEFAULT_WEIGHTS:
            raise ValueError(f"unknown loss weight {key!r} (valid: {', '.join(DEFAULT_WEIGHTS)})")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"loss weight {key!r} must be a number >= 0, got {value!r}")
        resolved[key] = float(value)
    return resolved


class InpaintingLoss(nn.Module):
    """Eq. 7: L_total = 1 L_valid + 6 L_hole + 0.05 L_perceptual + 120 (L_style_out +
    L_style_comp) + 0.1 L_tv (weights configurable).

    VGG-16 runs twice per call: once with autograd on the batch [I_out, I_comp] and once on I_gt
    under ``torch.no_grad()``.

    Args:
        weights: overrides of :data:`DEFAULT_WEIGHTS` (keys valid, hole, perceptual,
            style_out, style_comp, tv); missing keys keep their defaults.
        vgg_weights: "imagenet" (torchvision IMAGENET1K_V1 via the torch hub cache), "none"
            (random VGG with a loud warning; tests and smoke runs), or a local state-dict path.

    Raises:
        ValueError: unknown weight key or negative weight.
        EnvironmentProblem, UserInputError: the VGG weights cannot be had (offline) or read;
            see ``load_vgg16_features_state``.

    Example:
        >>> loss_fn = InpaintingLoss(vgg_weights="none")
        >>> terms = loss_fn(output, image, mask)
        >>> terms["total"].backward()
    """

    def __init__(self, weights: Mapping[str, float] | None = None,
                 vgg_weights: str = "imagenet") -> None:
        super().__init__()
        self.weights = _resolve_weights(weights)
        self.vgg = VGG16Features(vgg_weights)

    def extract_features(self, output: Tensor, comp: Tensor, target: Tensor
                         ) -> tuple[list[Tensor], list[Tensor]]:
        """VGG features of cat([I_out, I_comp]) (with autograd) and of I_gt (without).

        Returns:
            joint: per layer (2B, C_p, H_p, W_p), I_out first. gt: per layer (B, C_p, H_p, W_p).
        """
        joint = self.vgg(torch.cat([output, comp], dim=0))
        with torch.no_grad():
            gt = self.vgg(target)
        return joint, gt

    @staticmethod
    def _check(output: Tensor, target: Tensor, mask: Tensor) -> None:
        if output.dim() != 4 or output.shape != target.shape:
            raise ValueError(f"InpaintingLoss: output and target must be (B, C, H, W) of equal "
                             f"shape, got {tuple(output.shape)} and {tuple(target.shape)}")
        expected = (output.shape[0], 1) + tuple(output.shape[2:])
        if mask.dim() != 4 or mask.shape[0] not in (1, output.shape[0]) \
                or tuple(mask.shape[1:]) != expected[1:]:
            raise ValueError(f"InpaintingLoss: mask must have shape {expected} (1 = known, "
                             f"0 = hole; batch 1 broadcasts), got {tuple(mask.shape)}")

    def forward(self, output: Tensor, target: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """Compute all terms.

        Args:
            output: (B, C, H, W) network prediction I_out, C = 3 or 1, nominally in [0, 1].
            target: (B, C, H, W) ground truth I_gt in [0, 1].
            mask: (B, 1, H, W) or (1, 1, H, W) (broadcast over the batch, as in
                :class:`PConvUNet`), 1 = known pixel, 0 = hole (float or bool).

        Returns:
            Scalar float32 tensors: the unweighted terms "valid", "hole", "perceptual",
            "style_out", "style_comp", "tv", and the weighted sum "total".
        """
        self._check(output, target, mask)
        output, target = output.float(), target.float()
        mask = mask.float().expand(output.shape[0], -1, -1, -1)  # a batch-1 mask broadcasts
        comp = mask * target + (1 - mask) * output
        terms = {"valid": valid_loss(output, target, mask), "hole": hole_loss(output, target, mask)}
        joint, gt = self.extract_features(output, comp, target)
        batch = output.shape[0]
        out_features = [f[:batch] for f in joint]
        comp_features = [f[batch:] for f in joint]
        terms["perceptual"] = perceptual_loss(out_features, comp_features, gt)
        terms["style_out"] = style_loss(out_features, gt)
        terms["style_comp"] = style_loss(comp_features, gt)
        terms["tv"] = total_variation_loss(comp, mask)
        terms["total"] = sum(self.weights[key] * terms[key] for key in DEFAULT_WEIGHTS)
        return terms
