"""Random-weight files of the metric networks, shaped like the published ones (no download)."""

from pathlib import Path

import torch
import torchvision
from torch import nn


def random_inception_file(path: Path, seed: int = 0) -> Path:
    """torchvision's Inception-v3 with 1008 classes: the keys and shapes of the FID Inception.

    Convolutions get He-normal weights, so that with the untouched batch-norm statistics the
    activations neither vanish nor explode through the 94 layers (features of order 0.1-1).
    """
    torch.manual_seed(seed)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False,
                                          num_classes=1008)
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save(net.state_dict(), path)
    return path


def random_vgg16_file(path: Path, seed: int = 0) -> Path:
    """torchvision's VGG-16 features (keys ``features.N.*``), as the ImageNet file has them."""
    torch.manual_seed(seed)
    features = torchvision.models.vgg16(weights=None).features
    torch.save({f"features.{key}": value for key, value in features.state_dict().items()}, path)
    return path


def random_lpips_linear_file(path: Path, seed: int = 0) -> Path:
    """LPIPS v0.1's five non-negative 1x1 weights for VGG (keys ``lin{i}.model.1.weight``)."""
    generator = torch.Generator().manual_seed(seed)
    state = {f"lin{index}.model.1.weight": torch.rand(1, channels, 1, 1, generator=generator)
             for index, channels in enumerate((64, 128, 256, 512, 512))}
    torch.save(state, path)
    return path
