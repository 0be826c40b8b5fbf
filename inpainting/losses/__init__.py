"""Training losses: the composite inpainting loss of Liu et al. (ECCV 2018) and its VGG-16."""

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
from inpainting.losses.vgg import VGG16Features, imagenet_cache_file, load_vgg16_features_state

__all__ = [
    "DEFAULT_WEIGHTS",
    "InpaintingLoss",
    "VGG16Features",
    "gram_matrix",
    "hole_loss",
    "imagenet_cache_file",
    "load_vgg16_features_state",
    "perceptual_loss",
    "style_loss",
    "total_variation_loss",
    "valid_loss",
]
