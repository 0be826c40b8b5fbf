"""LPIPS, the learned perceptual distance (Zhang et al., "The Unreasonable Effectiveness of Deep
Features as a Perceptual Metric", CVPR 2018), version 0.1 with the VGG-16 backbone.

Both images go through the ImageNet VGG-16 up to relu5_3; at relu1_2, relu2_2, relu3_3, relu4_3
and relu5_3 each feature vector is scaled to unit length over the channels, the squared
difference is weighted per channel by the published linear weights (a 1x1 convolution without
bias), averaged over the map, and the five terms are summed. Lower is closer; 0 for identical
images. It is the ``lpips`` package's ``LPIPS(net="vgg", version="0.1")`` with
``normalize=True`` (inputs in [0, 1]); ``tests/test_perceptual_metrics.py`` checks the two agree.

The network code is ours, so the backbone loads from the same torchvision VGG-16 file as the
paper's loss (``loss.vgg_weights``) and nothing is downloaded (``inpainting.metrics.weights``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from inpainting.metrics.weights import ResolvedWeights, check_keys, load_state_dict

__all__ = ["LPIPS", "MIN_SIDE", "build_lpips"]

# vgg16().features up to relu5_3: numbers are conv output channels, "M" a 2x2 max pool; the
# indices of the Sequential then match torchvision's, so its state dicts load unchanged.
_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
_TAP_CHANNELS = (64, 128, 256, 512, 512)
# LPIPS v0.1 scaling of inputs in [-1, 1] (its ScalingLayer): ImageNet statistics
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10  # in the unit-length scaling, as in the lpips package
MIN_SIDE = 16  # four 2x2 pools before relu5_3 leave a 1x1 map
_CHUNK_PIXELS = 2**20  # images per forward pass: relu1_2 of a chunk stays under 256 MiB


def _vgg_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for item in _LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1),
                       nn.ReLU(inplace=True)]
            channels = int(item)
    return nn.Sequential(*layers)


class LPIPS(nn.Module):
    """LPIPS v0.1 (VGG): per-image perceptual distance, frozen, always in eval mode.

    Args:
        backbone: state dict of torchvision's ``vgg16()`` (keys ``features.N.*``) or of
            ``vgg16().features`` (keys ``N.*``); layers past relu5_3 are ignored.
        linear: state dict of the lpips package's ``weights/v0.1/vgg.pth`` (keys
            ``lin{0..4}.model.1.weight``, shapes (1, C, 1, 1)).

    Raises:
        KeyError or RuntimeError: when a state dict does not fit (:func:`build_lpips` checks
            files first and says so in one line).
    """

    def __init__(self, backbone: dict[str, Tensor], linear: dict[str, Tensor]) -> None:
        super().__init__()
        self.features = _vgg_features()
        self.features.load_state_dict(_backbone_keys(backbone))
        self.linear = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in _TAP_CHANNELS)
        for index, conv in enumerate(self.linear):
            conv.weight.data.copy_(linear[f"lin{index}.model.1.weight"])
        self.requires_grad_(False)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPS:
        """Stay in eval mode whatever is asked (the metric is frozen)."""
        return super().train(False)

    def _taps(self, image: Tensor) -> list[Tensor]:
        x = ((image * 2 - 1) - self.shift) / self.scale
        x = x.contiguous(memory_format=torch.channels_last)  # faster oneDNN convolutions on CPU
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in _TAPS:
                # unit length over channels: (B, C, h, w) / (B, 1, h, w)
                taps.append(x / (x.square().sum(dim=1, keepdim=True).sqrt() + _EPS))
        return taps

    @torch.inference_mode()
    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Distance of each pair.

        Args:
            pred, target: (B, 3, H, W) or grey (B, 1, H, W) in [0, 1], H, W >= 16; grey is
                replicated to three channels.

        Returns:
            (B,) float32 on the input's device, >= 0.
        """
        if pred.shape != target.shape or pred.ndim != 4 or pred.shape[1] not in (1, 3):
            raise ValueError(f"pred and target must be (B, 1 or 3, H, W) of one shape, got "
                             f"{tuple(pred.shape)} and {tuple(target.shape)}")
        if min(pred.shape[-2:]) < MIN_SIDE:
            raise ValueError(f"LPIPS needs images of at least {MIN_SIDE}x{MIN_SIDE}, got "
                             f"{pred.shape[-2]}x{pred.shape[-1]}")
        chunk = max(1, _CHUNK_PIXELS // (pred.shape[-2] * pred.shape[-1]))
        pred, target = pred.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
        return torch.cat([self._distance(pred[start:start + chunk].float(),
                                         target[start:start + chunk].float())
                          for start in range(0, len(pred), chunk)])

    def _distance(self, pred: Tensor, target: Tensor) -> Tensor:
        total = pred.new_zeros(len(pred))
        for conv, a, b in zip(self.linear, self._taps(pred), self._taps(target)):
            total += conv((a - b).square()).mean(dim=(1, 2, 3))  # (B, 1, h, w) -> (B,)
        return total


def _backbone_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``features.N.x`` or ``N.x`` -> ``N.x`` for the layers up to relu5_3."""
    selected = {}
    for key, value in state.items():
        name = key.removeprefix("features.")
        index = name.split(".", 1)[0]
        if index.isdigit() and int(index) <= _TAPS[-1]:
            selected[name] = value
    return selected


def build_lpips(backbone: ResolvedWeights, linear: ResolvedWeights) -> LPIPS:
    """LPIPS from two weight files, each checked first (a wrong file is one line, exit 2).

    Raises:
        UserInputError: a file is not a state dict of the expected network.
    """
    backbone_state = load_state_dict(backbone)
    expected = _vgg_features().state_dict()
    check_keys(_backbone_keys(backbone_state), expected, backbone)
    linear_state = load_state_dict(linear)
    check_keys(linear_state, {f"lin{i}.model.1.weight": torch.empty(1, c, 1, 1)
                              for i, c in enumerate(_TAP_CHANNELS)}, linear)
    return LPIPS(backbone_state, linear_state)
