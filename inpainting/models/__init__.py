"""Inpainting networks, looked up by name with :func:`build_model`, and the losses they train
with (:mod:`.losses`: Liu et al., ECCV 2018, Eq. 1-7)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from inpainting.engine.errors import UserInputError
from inpainting.models.pconv_unet import (
    NORMS,
    PREFILLS,
    UPSAMPLING_MODES,
    VALUE_RANGES,
    PConvUNet,
)

__all__ = ["MODELS", "NORMS", "PREFILLS", "UPSAMPLING_MODES", "VALUE_RANGES", "PConvUNet",
           "build_model"]

# Inpainting networks: name -> constructor; ``model.name`` in a config is checked against these
# keys.
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
