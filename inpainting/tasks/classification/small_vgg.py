"""A small VGG-style classifier for small images (Fashion-MNIST's 28 px), for the padding demo.

torchvision's VGGs and ResNets are built for 224 px: at 28 px a VGG's five max-pools leave no
pixel, a ResNet's last stage works on 1x1 maps (where reflection padding is undefined), and
either costs far too much for a CPU demo. This network keeps VGG's pattern (Simonyan &
Zisserman, 2015: stacks of 3x3 convs with padding 1, BatchNorm, ReLU, 2x2 max-pool) in three
stages, so the padding scheme acts at every conv while the smallest map stays 3x3 at 28 px,
and ends in global average pooling and one Linear layer. Its convs are plain ``nn.Conv2d`` with
zero padding, so :func:`.models.build_classifier` switches their padding like a torchvision model's;
its ``features`` / ``classifier`` attributes follow torchvision's
VGG, so NVIDIA's checkpoint layout (``features.module.``) and a new head work as for VGG.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from inpainting.engine.errors import UserInputError

__all__ = ["SMALL_VGG_CHANNELS", "SmallVGG", "small_vgg"]

SMALL_VGG_CHANNELS = (16, 32, 64)  # output channels of the three stages


class SmallVGG(nn.Module):
    """``[conv3x3-BN-ReLU] x convs_per_stage`` + 2x2 max-pool per stage, then global average
    pooling and ``Linear(channels[-1], num_classes)``.

    Args:
        num_classes: outputs of the head.
        channels: output channels of each stage.
        convs_per_stage: 3x3 convs in each stage.

    Input ``(B, 3, H, W)`` normalised with the ImageNet mean/std, ``H, W >= 2 ** len(channels)``
    (8 px with three stages); output ``(B, num_classes)`` logits.
    """

    def __init__(self, num_classes: int = 1000, channels: Sequence[int] = SMALL_VGG_CHANNELS,
                 convs_per_stage: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 3
        for out_channels in channels:
            for _ in range(convs_per_stage):
                layers += [nn.Conv2d(width, out_channels, 3, padding=1, bias=False),
                           nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
                width = out_channels
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(width, num_classes))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):  # as torchvision's VGG initialises its convs
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (B, 3, H, W) -> (B, C, H / 8, W / 8) with three stages
        return self.classifier(self.avgpool(x).flatten(1))  # (B, C, 1, 1) -> (B, num_classes)


def small_vgg(*, weights: Any = None, progress: bool = True, num_classes: int = 1000,
              **kwargs: Any) -> SmallVGG:
    """:class:`SmallVGG` with a torchvision-style builder signature (random init only).

    Raises:
        UserInputError: ``weights`` given (there are no published weights for this network).
    """
    if weights is not None:
        raise UserInputError("small_vgg has no pretrained weights; train it from scratch "
                             "(drop pretrained)")
    return SmallVGG(num_classes=num_classes, **kwargs)
