"""torchvision ResNets and VGGs with the padding schemes of the partial-padding report.

Liu et al., "Partial Convolution based Padding" (2018) compare four ways to pad the convs of
the same network: zero (torchvision's), partial (:func:`convert_to_partial_conv`), reflection
and replication (:func:`set_padding_mode`). :func:`build_classifier` builds any torchvision
ResNet or VGG with any of them; NVIDIA's ``pd*`` names (``pdresnet50``, ``pdvgg16_bn``) are
aliases of the torchvision name with ``padding='partial'``, so ``-a pdresnet50`` and
``-a resnet50 --padding partial`` build the same model.

The padding scheme adds no weights: every scheme's state dict has the same names and shapes,
so weights trained with one padding load into a model with another. Fine-tuning zero-padding
weights with partial padding (what the report recommends for pretrained models) is
``build_classifier(arch, padding="partial", pretrained=True)`` for torchvision's weights, or
``init_weights=<checkpoint of a zero-padding run>``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import torch
import torchvision.models as tv_models
from torch import nn

from inpainting.engine.errors import EnvironmentProblem, UserInputError
from inpainting.layers.padding import convert_to_partial_conv, set_padding_mode
from inpainting.tasks.classification.input_size import check_input_size
from inpainting.tasks.classification.nvidia import load_nvidia_checkpoint
from inpainting.tasks.classification.small_vgg import small_vgg

__all__ = [
    "CLASSIFIER_ARCHS",
    "PADDING_MODELS",
    "CLASSIFIER_NAMES",
    "PADDINGS",
    "PRETRAINED_WEIGHTS",
    "build_classifier",
    "nvidia_arch_name",
    "resolve_arch",
]

logger = logging.getLogger(__name__)

_RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
_VGGS = tuple(f"vgg{depth}{bn}" for depth in (11, 13, 16, 19) for bn in ("", "_bn"))

# architecture name -> its builder; the pd* aliases are derived from these names. torchvision's
# ResNets and VGGs, and small_vgg for 28-32 px images (the padding demo; no pretrained weights).
CLASSIFIER_ARCHS: dict[str, Callable[..., nn.Module]] = {
    **{name: getattr(tv_models, name) for name in _RESNETS + _VGGS}, "small_vgg": small_vgg,
}
PADDINGS = ("zero", "partial", "reflect", "replicate")
_PARTIAL_PREFIX = "pd"  # NVIDIA's prefix for partial-padding architectures
# Every name build_classifier accepts: the torchvision names, then their pd* aliases.
CLASSIFIER_NAMES = tuple(CLASSIFIER_ARCHS) + tuple(_PARTIAL_PREFIX + n for n in CLASSIFIER_ARCHS)
# ``pretrained=True`` means what it meant in torchvision's old API, which NVIDIA's script used.
PRETRAINED_WEIGHTS = "IMAGENET1K_V1"


def resolve_arch(arch: str, padding: str | None = None) -> tuple[str, str]:
    """Split an architecture name and a padding into (torchvision name, padding).

    Args:
        arch: a torchvision name (``resnet50``, ``vgg16_bn``) or its ``pd*`` alias.
        padding: one of :data:`PADDINGS`, or None for the arch's own (``partial`` for ``pd*``
            names, else ``zero``).

    Returns:
        ``(torchvision_name, padding)``, e.g. ``("resnet50", "partial")`` for ``pdresnet50``.

    Raises:
        UserInputError: unknown arch or padding (the message lists the valid names), or a
            ``pd*`` alias with a padding other than partial.
    """
    if padding is not None and padding not in PADDINGS:
        raise UserInputError(f"unknown padding {padding!r} (valid: {', '.join(PADDINGS)})")
    if arch in CLASSIFIER_ARCHS:
        return arch, padding or "zero"
    base = arch[len(_PARTIAL_PREFIX):] if arch.startswith(_PARTIAL_PREFIX) else None
    if base not in CLASSIFIER_ARCHS:
        valid = ", ".join(CLASSIFIER_NAMES)
        raise UserInputError(f"unknown architecture {arch!r} (valid: {valid})")
    if padding not in (None, "partial"):
        raise UserInputError(f"{arch!r} is {base!r} with partial padding; use -a {base} "
                             f"--padding {padding} for {padding} padding")
    return base, "partial"


def nvidia_arch_name(arch: str, padding: str | None = None) -> str:
    """The name NVIDIA's script gives the model: ``pd`` + torchvision name for partial padding.

    Reflect and replicate have no name of their own there; they keep the torchvision name (a
    checkpoint records the padding beside it).

    Raises:
        UserInputError: as :func:`resolve_arch`.
    """
    base, padding = resolve_arch(arch, padding)
    return _PARTIAL_PREFIX + base if padding == "partial" else base


def _apply_padding(model: nn.Module, padding: str) -> nn.Module:
    if padding == "partial":
        return convert_to_partial_conv(model)
    if padding in ("reflect", "replicate"):
        return set_padding_mode(model, padding)
    return model


def _replace_head(model: nn.Module, num_classes: int) -> None:
    """A new, randomly initialised last Linear layer with ``num_classes`` outputs."""
    if isinstance(getattr(model, "fc", None), nn.Linear):  # ResNet
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    else:  # VGG: classifier = Sequential(..., Linear(4096, 1000))
        last = model.classifier[-1]
        model.classifier[-1] = nn.Linear(last.in_features, num_classes)


def _pretrained_model(base: str, weights_name: str, num_classes: int) -> nn.Module:
    """torchvision's model with its published ImageNet weights (downloaded once to the hub)."""
    try:
        weights = tv_models.get_model_weights(base)[weights_name]
    except KeyError:
        valid = ", ".join(w.name for w in tv_models.get_model_weights(base))
        raise UserInputError(f"no weights {weights_name!r} for {base} "
                             f"(valid: {valid})") from None
    try:
        model = CLASSIFIER_ARCHS[base](weights=weights)
    except OSError as error:  # URLError, socket errors, a read-only hub folder
        cache = os.path.join(torch.hub.get_dir(), "checkpoints")
        reason = " ".join(str(getattr(error, "reason", error)).split())
        raise EnvironmentProblem(
            f"cannot download torchvision's {base} {weights.name} weights from {weights.url} "
            f"({reason}); connect to the internet or put the file in {cache}"
        ) from error
    classes = len(weights.meta["categories"])
    if num_classes != classes:
        logger.info("%s: new %d-class head on the pretrained %d-class network",
                    base, num_classes, classes)
        _replace_head(model, num_classes)
    return model


def build_classifier(
    arch: str,
    padding: str | None = None,
    num_classes: int = 1000,
    pretrained: bool | str = False,
    init_weights: str | os.PathLike | None = None,
    input_size: int | None = None,
) -> nn.Module:
    """A torchvision ResNet or VGG (or ``small_vgg``) with the given padding scheme.

    Weights come from torchvision (``pretrained``) or from a checkpoint (``init_weights``),
    loaded into the network before its padding changes; neither depends on the padding the
    weights were trained with, so zero-padding weights fine-tune into any other scheme.

    Args:
        arch: a key of :data:`CLASSIFIER_ARCHS` or its ``pd*`` alias (see :func:`resolve_arch`).
        padding: one of :data:`PADDINGS`, or None for the arch's own.
        num_classes: outputs of the head (one per class folder). With ``pretrained`` and a
            number other than ImageNet's 1000, the last Linear layer is new and random.
        pretrained: torchvision's ImageNet weights: True for :data:`PRETRAINED_WEIGHTS` (what
            ``pretrained=True`` loaded), or the name of another weights entry (``"DEFAULT"``,
            ``"IMAGENET1K_V2"``). Downloaded to the torch hub cache the first time.
        init_weights: a checkpoint (NVIDIA's format, ours, or a plain state dict, ``module.``
            names or not) whose weights the model starts from; its classes must match.
        input_size: the side of the inputs the model will get; when given, an input too small
            for its convs and pools (reflection padding on 1x1 maps, a pool window larger
            than its map) is refused here instead of failing inside ``forward``.

    Returns:
        The model in training mode, input (B, 3, H, W) normalised with the ImageNet mean/std,
        output (B, num_classes) logits.

    Raises:
        UserInputError: unknown arch/padding/weights name, num_classes < 1, both weight
            sources given, ``init_weights`` does not fit the model, pretrained weights asked
            for ``small_vgg``, or ``input_size`` too small (naming the smallest that works).
        EnvironmentProblem: torchvision's weights cannot be downloaded (one line with the URL
            and the cache folder).
        FileNotFoundError: ``init_weights`` does not exist.

    Example:
        >>> model = build_classifier("pdresnet50", num_classes=10)
        >>> model = build_classifier("vgg16_bn", padding="reflect")
    """
    base, padding = resolve_arch(arch, padding)
    if num_classes < 1:
        raise UserInputError(f"num_classes must be >= 1, got {num_classes}")
    if pretrained and init_weights is not None:
        raise UserInputError("give pretrained or init_weights, not both")
    if pretrained and base not in _RESNETS + _VGGS:
        raise UserInputError(f"{base} has no pretrained weights; train it from scratch")
    if pretrained:
        weights_name = PRETRAINED_WEIGHTS if pretrained is True else str(pretrained)
        model = _pretrained_model(base, weights_name, num_classes)
    else:
        model = CLASSIFIER_ARCHS[base](weights=None, num_classes=num_classes)
    if init_weights is not None:
        load_nvidia_checkpoint(model, init_weights)
    logger.info("built %s with %s padding, %d classes", base, padding, num_classes)
    model = _apply_padding(model, padding)
    if input_size is not None:
        check_input_size(model, input_size, "classifier.crop_size (classify.py --crop-size)")
    return model


# NVIDIA's pd* builders: torchvision's, then the conversion to partial padding
def _partial_padding_builder(
    tv_builder: Callable[..., nn.Module], name: str
) -> Callable[..., nn.Module]:
    """Wrap a torchvision builder so that the model it returns uses partial padding."""

    def builder(*, weights: Any = None, progress: bool = True, **kwargs: Any) -> nn.Module:
        return convert_to_partial_conv(tv_builder(weights=weights, progress=progress, **kwargs))

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"""torchvision ``{tv_builder.__name__}`` with partial-convolution padding.

    Builds ``torchvision.models.{tv_builder.__name__}(weights=weights, progress=progress,
    **kwargs)`` and converts it with :func:`convert_to_partial_conv`, so the arguments mean
    exactly what they mean for torchvision: ``weights`` is ``None`` (random init), a weights
    enum member or its name (e.g. ``"IMAGENET1K_V1"``, ``"DEFAULT"``; downloaded to the torch
    hub cache), and ``num_classes`` (in ``kwargs``) must match the weights' classes if given.

    Args:
        weights: torchvision weights for ``{tv_builder.__name__}``, their name, or None.
        progress: show a download progress bar.
        **kwargs: forwarded to torchvision (``num_classes``, ...).

    Returns:
        The converted model, input (B, 3, H, W) normalised with the ImageNet mean/std.
    """
    return builder


pdresnet18 = _partial_padding_builder(tv_models.resnet18, "pdresnet18")
pdresnet34 = _partial_padding_builder(tv_models.resnet34, "pdresnet34")
pdresnet50 = _partial_padding_builder(tv_models.resnet50, "pdresnet50")
pdresnet101 = _partial_padding_builder(tv_models.resnet101, "pdresnet101")
pdresnet152 = _partial_padding_builder(tv_models.resnet152, "pdresnet152")
pdvgg11 = _partial_padding_builder(tv_models.vgg11, "pdvgg11")
pdvgg11_bn = _partial_padding_builder(tv_models.vgg11_bn, "pdvgg11_bn")
pdvgg13 = _partial_padding_builder(tv_models.vgg13, "pdvgg13")
pdvgg13_bn = _partial_padding_builder(tv_models.vgg13_bn, "pdvgg13_bn")
pdvgg16 = _partial_padding_builder(tv_models.vgg16, "pdvgg16")
pdvgg16_bn = _partial_padding_builder(tv_models.vgg16_bn, "pdvgg16_bn")
pdvgg19 = _partial_padding_builder(tv_models.vgg19, "pdvgg19")
pdvgg19_bn = _partial_padding_builder(tv_models.vgg19_bn, "pdvgg19_bn")

PADDING_MODELS: dict[str, Callable[..., nn.Module]] = {
    builder.__name__: builder
    for builder in (
        pdresnet18, pdresnet34, pdresnet50, pdresnet101, pdresnet152,
        pdvgg11, pdvgg11_bn, pdvgg13, pdvgg13_bn, pdvgg16, pdvgg16_bn, pdvgg19, pdvgg19_bn,
    )
}
