"""Building blocks with no dependency on models, engine or config."""

from inpainting.layers.partial_conv import PartialConv2d, PartialConv3d

__all__ = ["PartialConv2d", "PartialConv3d"]
