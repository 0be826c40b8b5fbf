"""Training losses: the composite inpainting loss of Liu et al. (ECCV 2018) and its VGG-16,
and :func:`build_loss`, which picks the loss a config's ``loss`` section asks for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from inpainting.losses.inpainting_loss import (
    DEFAULT_WEIGHTS,
    InpaintingLoss,
    gram_matrix,
    hole_loss,
    perceptual_loss,
    style_loss,
    total_variation_loss,
    valid_loss,
)
from inpainting.losses.pixel import PIXEL_TERMS, PixelLoss
from inpainting.losses.vgg import VGG16Features, imagenet_cache_file, load_vgg16_features_state

if TYPE_CHECKING:  # config imports this package for DEFAULT_WEIGHTS
    from inpainting.config import LossConfig

__all__ = [
    "DEFAULT_WEIGHTS",
    "PIXEL_TERMS",
    "InpaintingLoss",
    "PixelLoss",
    "VGG16Features",
    "build_loss",
    "gram_matrix",
    "hole_loss",
    "imagenet_cache_file",
    "load_vgg16_features_state",
    "perceptual_loss",
    "style_loss",
    "total_variation_loss",
    "valid_loss",
]


def build_loss(loss: LossConfig) -> nn.Module:
    """The paper's loss with ``loss.weights`` and ``loss.vgg_weights``.

    Args:
        loss: the ``loss`` config section.

    Returns:
        ``PixelLoss`` when every VGG term (perceptual, style_out, style_comp) has weight 0, so
        that no VGG-16 is built or run; ``InpaintingLoss`` otherwise. Either maps ``(output,
        target, mask)`` (mask 1 = known, 0 = hole) to a dict of scalar terms with "total".

    Raises:
        RuntimeError: the ImageNet VGG-16 weights cannot be had (see ``VGG16Features``).
    """
    weights = vars(loss.weights)
    if all(weights[key] == 0 for key in weights if key not in PIXEL_TERMS):
        return PixelLoss(weights)
    return InpaintingLoss(weights=weights, vgg_weights=loss.vgg_weights)
