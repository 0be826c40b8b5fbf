"""Training losses: the composite inpainting loss of Liu et al. (ECCV 2018) and its VGG-16,
and :func:`build_loss`, which picks the loss a config's ``loss`` section asks for."""

from __future__ import annotations

from torch import nn

from inpainting.models.losses.inpainting_loss import (
    DEFAULT_WEIGHTS,
    InpaintingLoss,
    gram_matrix,
    hole_loss,
    perceptual_loss,
    style_loss,
    total_variation_loss,
    valid_loss,
)
from inpainting.models.losses.pixel import PIXEL_TERMS, PixelLoss
from inpainting.models.losses.vgg import (
    VGG16Features,
    imagenet_cache_file,
    load_vgg16_features_state,
)

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


def build_loss(weights: dict[str, float], vgg_weights: str = "imagenet") -> nn.Module:
    """The paper's loss (Liu et al., ECCV 2018, Eq. 7) with these term weights.

    Args:
        weights: the weight of each term (``DEFAULT_WEIGHTS``' keys), e.g. the ``loss.weights``
            config section as a dict.
        vgg_weights: ``imagenet``, ``none`` (a random VGG-16, no download) or a ``.pth`` path.

    Returns:
        ``PixelLoss`` when every VGG term (perceptual, style_out, style_comp) has weight 0, so
        that no VGG-16 is built or run; ``InpaintingLoss`` otherwise. Either maps ``(output,
        target, mask)`` (mask 1 = known, 0 = hole) to a dict of scalar terms with "total".

    Raises:
        RuntimeError: the ImageNet VGG-16 weights cannot be had (see ``VGG16Features``).
    """
    if all(weights[key] == 0 for key in weights if key not in PIXEL_TERMS):
        return PixelLoss(weights)
    return InpaintingLoss(weights=weights, vgg_weights=vgg_weights)
