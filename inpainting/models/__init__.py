"""Inpainting networks, looked up by name with :func:`build_model`; classifiers with the padding
schemes of the partial-padding report, looked up by name with :func:`build_classifier`
(:mod:`inpainting.models.classifiers`, :mod:`inpainting.models.padding`), and checkpoints of
NVIDIA's ImageNet script (:mod:`inpainting.models.nvidia_checkpoint`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from inpainting.errors import UserInputError
from inpainting.models.classifiers import (
    CLASSIFIER_ARCHS,
    CLASSIFIER_NAMES,
    PADDINGS,
    build_classifier,
    nvidia_arch_name,
    resolve_arch,
)
from inpainting.models.nvidia_checkpoint import (
    NvidiaCheckpoint,
    make_nvidia_checkpoint,
    read_nvidia_checkpoint,
    save_nvidia_checkpoint,
)
from inpainting.models.padding import (
    PADDING_MODELS,
    convert_to_partial_conv,
    load_nvidia_checkpoint,
    pdresnet18,
    pdresnet34,
    pdresnet50,
    pdresnet101,
    pdresnet152,
    pdvgg11,
    pdvgg11_bn,
    pdvgg13,
    pdvgg13_bn,
    pdvgg16,
    pdvgg16_bn,
    pdvgg19,
    pdvgg19_bn,
    set_padding_mode,
)
from inpainting.models.pconv_unet import NORMS, PREFILLS, UPSAMPLING_MODES, PConvUNet

__all__ = [
    "CLASSIFIER_ARCHS",
    "CLASSIFIER_NAMES",
    "MODELS",
    "NORMS",
    "PADDINGS",
    "PADDING_MODELS",
    "NvidiaCheckpoint",
    "PConvUNet",
    "PREFILLS",
    "UPSAMPLING_MODES",
    "build_classifier",
    "build_model",
    "convert_to_partial_conv",
    "load_nvidia_checkpoint",
    "make_nvidia_checkpoint",
    "nvidia_arch_name",
    "pdresnet18",
    "pdresnet34",
    "pdresnet50",
    "pdresnet101",
    "pdresnet152",
    "pdvgg11",
    "pdvgg11_bn",
    "pdvgg13",
    "pdvgg13_bn",
    "pdvgg16",
    "pdvgg16_bn",
    "pdvgg19",
    "pdvgg19_bn",
    "read_nvidia_checkpoint",
    "resolve_arch",
    "save_nvidia_checkpoint",
    "set_padding_mode",
]

# Inpainting networks: name -> constructor; ``model.name`` in a config is checked against these
# keys. (Classifiers: CLASSIFIER_NAMES and build_classifier.)
MODELS: dict[str, Callable[..., nn.Module]] = {
    "pconv_unet": PConvUNet,
}


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered inpainting network by name.

    The ``model`` section of a config (or of a checkpoint's saved config) is exactly these
    arguments: ``build_model(**dataclasses.asdict(config.model))``.

    Args:
        name: a key of :data:`MODELS`, e.g. ``"pconv_unet"``.
        **kwargs: the model's constructor arguments (e.g. ``depth=7, base_channels=64``).

    Returns:
        The model, in training mode. It maps ``(image * mask, mask)`` with image (B, 3, H, W)
        in [0, 1] and mask (B, 1, H, W), 1 = known, 0 = hole, to ``(output, final_mask)``.

    Raises:
        UserInputError: (a ``ValueError``) ``name`` is unknown (the message lists the valid
            names), or the keyword arguments do not fit the model's constructor.

    Example:
        >>> model = build_model("pconv_unet", depth=7)
    """
    if name not in MODELS:
        raise UserInputError(f"unknown model.name {name!r} (valid: {', '.join(MODELS)})")
    constructor = MODELS[name]
    signature = inspect.signature(constructor)
    unknown = sorted(set(kwargs) - set(signature.parameters))
    if unknown:
        raise UserInputError(f"unknown argument(s) {', '.join(unknown)} for model {name!r} "
                             f"(valid: {', '.join(signature.parameters)})")
    return constructor(**kwargs)
