"""Frozen VGG-16 feature extractor for the perceptual and style losses.

Liu et al., "Image Inpainting for Irregular Holes Using Partial Convolutions" (ECCV 2018),
Sec. 3.4: the perceptual and style terms compare VGG-16 (ImageNet-pretrained) feature maps
after pool1, pool2 and pool3. The layers here have the same indices as torchvision's
``vgg16().features[:17]``, so torchvision state dicts load unchanged.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor, nn
from torchvision.models import VGG16_Weights

from inpainting.engine.errors import EnvironmentProblem, UserInputError

__all__ = ["VGG16Features", "load_vgg16_features_state", "imagenet_cache_file"]

logger = logging.getLogger(__name__)

# (in, out) channels of the convolutions up to pool3; "M" is a 2x2 max pool.
_LAYOUT = [(3, 64), (64, 64), "M", (64, 128), (128, 128), "M",
           (128, 256), (256, 256), (256, 256), "M"]
_NUM_LAYERS = 17  # torchvision's vgg16().features[:17]: 7 conv + 7 ReLU + 3 pool
_TAPS = (4, 9, 16)  # indices of pool1, pool2, pool3 in that Sequential
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _make_layers() -> nn.Sequential:
    layers: list[nn.Module] = []
    for item in _LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(item[0], item[1], kernel_size=3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def imagenet_cache_file() -> Path:
    """Where torchvision caches the IMAGENET1K_V1 VGG-16 weights (torch hub checkpoints dir)."""
    url = VGG16_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def _fetch_imagenet_state() -> dict[str, Tensor]:
    """IMAGENET1K_V1 weights through torchvision (downloaded to the hub cache on first use)."""
    weights = VGG16_Weights.IMAGENET1K_V1
    fixes = (f"on an offline machine download {weights.url} elsewhere and place it at "
             f"{imagenet_cache_file()}; or set vgg_weights to a local VGG-16 state-dict file "
             "(e.g. --set loss.vgg_weights=/path/vgg16.pth), or to 'none' (random weights, for "
             "tests and smoke runs only)")
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except OSError as err:  # offline, proxy, unwritable cache: the machine, not the config
        raise EnvironmentProblem(f"could not get the ImageNet VGG-16 weights for the "
                                 f"perceptual/style loss ({err}); {fixes}") from err
    except Exception as err:  # a hash mismatch or a torn cached file: no common type
        raise UserInputError(f"the cached ImageNet VGG-16 weights {imagenet_cache_file()} are "
                             f"corrupt ({err}); delete the file to download it again, or "
                             f"{fixes}") from err


_EXPECTED_CONTENT = (
    "a VGG-16 state dict saved with torch.save: torchvision's vgg16().state_dict() (keys "
    "'features.0.weight', ...) or vgg16().features.state_dict() (keys '0.weight', ...)"
)
_ALTERNATIVES = ("or set vgg_weights to 'imagenet' (torchvision's IMAGENET1K_V1, downloaded to "
                 "the torch hub cache) or 'none' (random weights, for tests and smoke runs only)")


def _select_feature_keys(state: dict[str, Tensor], source: str) -> dict[str, Tensor]:
    """Keep the first 17 feature layers; accept full vgg16 or features-only state dicts.

    Raises:
        UserInputError: a layer is missing, unexpected (e.g. VGG-19, VGG-16-BN) or has another
            shape.
    """
    selected = {}
    for key, value in state.items():
        name = key[len("features."):] if key.startswith("features.") else key
        index = name.split(".", 1)[0]
        if index.isdigit() and int(index) < _NUM_LAYERS:
            selected[name] = value
    expected = _make_layers().state_dict()

    def layer_order(key: str) -> tuple[int, str]:  # "2.weight" after "1.weight"; sets are unordered
        index, _, name = key.partition(".")
        return int(index), name

    problems = []
    missing = sorted(set(expected) - set(selected), key=layer_order)
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    unexpected = sorted(set(selected) - set(expected), key=layer_order)
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected)}")
    wrong = [f"{k} {tuple(getattr(selected[k], 'shape', ()))} instead of "
             f"{tuple(expected[k].shape)}"
             for k in sorted(set(selected) & set(expected), key=layer_order)
             if not isinstance(selected[k], Tensor) or selected[k].shape != expected[k].shape]
    if wrong:
        problems.append(f"wrong shapes {', '.join(wrong)}")
    if problems:
        raise UserInputError(f"{source} is not a VGG-16 state dict: {'; '.join(problems)} "
                             f"(expected {_EXPECTED_CONTENT}); {_ALTERNATIVES}")
    return selected


def _read_local_state(path: Path) -> dict[str, Tensor]:
    """``torch.load`` a local weights file, turning every way its content can be wrong into one
    ``UserInputError``; an ``OSError`` (permissions) stays one, for exit code 3."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as err:  # not a torch file, truncated zip, pickled module, ...: no common type
        first_line = (str(err).strip().splitlines() or [""])[0]
        raise UserInputError(
            f"vgg_weights file {path} cannot be read as a VGG-16 state dict "
            f"({type(err).__name__}: {first_line}); it must hold {_EXPECTED_CONTENT}, readable "
            f"with torch.load(weights_only=True) (save the state dict, not the module); "
            f"{_ALTERNATIVES}"
        ) from err
    if not isinstance(state, dict):
        raise UserInputError(f"vgg_weights file {path} does not hold a state dict (got "
                             f"{type(state).__name__}); it must hold {_EXPECTED_CONTENT}; "
                             f"{_ALTERNATIVES}")
    return state


def load_vgg16_features_state(vgg_weights: str) -> dict[str, Tensor] | None:
    """Resolve ``vgg_weights`` to a state dict for :class:`VGG16Features`.

    Args:
        vgg_weights: "imagenet" (torchvision's IMAGENET1K_V1, downloaded to the torch hub cache
            on first use), "none" (random init: returns None and logs a warning), or a path to
            a local state dict of ``vgg16()`` or of ``vgg16().features``.

    Returns:
        The state dict of the first 17 feature layers (keys "0.weight" ...), or None.

    Raises:
        EnvironmentProblem: "imagenet" and the weights can be neither downloaded nor found in
            the cache (the message names the file to place in the cache and the alternatives).
        UserInputError: the path does not exist, or the file cannot be read (corrupt,
            truncated, not a torch file, a pickled module) or is not a VGG-16 state dict; the
            message names the file, what it must hold and the alternatives.
    """
    if vgg_weights == "none":
        logger.warning(
            "!!! vgg_weights='none': the perceptual and style losses use a RANDOMLY initialised "
            "VGG-16. Use this only for tests and smoke runs; train with vgg_weights='imagenet' "
            "or a local weights file. !!!"
        )
        return None
    if vgg_weights == "imagenet":
        return _select_feature_keys(_fetch_imagenet_state(), "the ImageNet VGG-16 weights")
    path = Path(vgg_weights).expanduser()
    if not path.is_file():
        raise UserInputError(
            f"vgg_weights {vgg_weights!r} is neither 'imagenet', 'none' nor an existing file; "
            "give the path of a VGG-16 state dict (.pth) or one of those two names"
        )
    return _select_feature_keys(_read_local_state(path), f"vgg_weights file {path}")


class VGG16Features(nn.Module):
    """VGG-16 up to pool3, frozen and always in eval mode; returns pool1, pool2, pool3.

    ImageNet mean/std normalisation happens inside; gradients flow to the input image but never
    to the VGG weights (``requires_grad=False``).

    Args:
        vgg_weights: "imagenet", "none" or a path; see :func:`load_vgg16_features_state`.
        channels_last: run in NHWC layout (the returned maps are channels_last tensors). On the
            CPU oneDNN convolutions and max pooling are faster in that layout.
    """

    def __init__(self, vgg_weights: str = "imagenet", channels_last: bool = True) -> None:
        super().__init__()
        self.features = _make_layers()
        state = load_vgg16_features_state(vgg_weights)
        if state is not None:
            self.features.load_state_dict(state)
        self.features.requires_grad_(False)
        self.channels_last = channels_last
        if channels_last:
            self.features.to(memory_format=torch.channels_last)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)
        self.eval()

    def train(self, mode: bool = True) -> VGG16Features:
        """Stay in eval mode whatever is asked (the extractor is frozen)."""
        return super().train(False)

    def forward(self, image: Tensor) -> list[Tensor]:
        """Feature maps of ``image``.

        Args:
            image: (B, 3, H, W) or grayscale (B, 1, H, W) in [0, 1]; grayscale is replicated to
                three channels.

        Returns:
            [pool1 (B, 64, H/2, W/2), pool2 (B, 128, H/4, W/4), pool3 (B, 256, H/8, W/8)].
        """
        if image.dim() != 4 or image.shape[1] not in (1, 3):
            raise ValueError(f"VGG16Features: image must be (B, 3, H, W) or (B, 1, H, W), got "
                             f"shape {tuple(image.shape)}")
        if image.shape[1] == 1:
            image = image.expand(-1, 3, -1, -1)
        x = (image - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in _TAPS:
                taps.append(x)
        return taps
