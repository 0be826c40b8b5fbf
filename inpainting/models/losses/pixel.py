"""The pixel terms of Liu et al. (ECCV 2018) Eq. 7 alone: valid, hole and total variation.

Used when the perceptual and style weights are all 0, so that no VGG-16 runs at all (it would
cost most of a small model's step for nothing).
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from inpainting.models.losses.inpainting_loss import hole_loss, total_variation_loss, valid_loss

__all__ = ["PIXEL_TERMS", "PixelLoss"]

PIXEL_TERMS = ("valid", "hole", "tv")


class PixelLoss(nn.Module):
    """Eq. 7 of Liu et al. (ECCV 2018) without its VGG terms: valid, hole and TV only.

    Args:
        weights: at least the keys ``valid``, ``hole`` and ``tv`` (others are ignored, so the
            full ``loss.weights`` of a config can be passed).
    """

    def __init__(self, weights: Mapping[str, float]) -> None:
        super().__init__()
        self.weights = {key: float(weights[key]) for key in PIXEL_TERMS}

    def forward(self, output: Tensor, target: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """Compute the terms.

        Args:
            output: (B, C, H, W) network prediction, nominally in [0, 1].
            target: (B, C, H, W) ground truth in [0, 1].
            mask: (B, 1, H, W), 1 = known pixel, 0 = hole.

        Returns:
            Scalar float32 tensors "valid", "hole", "tv" (unweighted) and their weighted sum
            "total".
        """
        output, target, mask = output.float(), target.float(), mask.float()
        comp = mask * target + (1 - mask) * output
        terms = {"valid": valid_loss(output, target, mask), "hole": hole_loss(output, target, mask),
                 "tv": total_variation_loss(comp, mask)}
        terms["total"] = sum(self.weights[key] * terms[key] for key in PIXEL_TERMS)
        return terms
