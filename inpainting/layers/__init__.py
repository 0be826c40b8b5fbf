"""Partial convolution layers (Liu et al., ECCV 2018) and partial-convolution padding for any
network built from ``nn.Conv2d`` (Liu et al., "Partial Convolution based Padding", 2018)."""

from inpainting.layers.padding import convert_to_partial_conv, set_padding_mode
from inpainting.layers.partial_conv import PartialConv2d, PartialConv3d

__all__ = ["PartialConv2d", "PartialConv3d", "convert_to_partial_conv", "set_padding_mode"]
