"""Partial-convolution padding for any network built from ``nn.Conv2d``.

Liu et al., "Partial Convolution based Padding" (2018) replace zero padding by a partial
convolution with an all-ones mask: windows that overlap the zero-padded border are rescaled by
(window size) / (number of real pixels in the window), Eq. 2-4, so the border no longer looks like
a dark frame to the network. The layer needs no new weights, so any network built from
``nn.Conv2d`` can switch padding scheme and keep its trained weights.

This module offers:

* :func:`convert_to_partial_conv`: swaps every zero-padded ``nn.Conv2d`` of a model for a
  :class:`~inpainting.layers.PartialConv2d` holding the very same ``Parameter`` objects.
* :func:`set_padding_mode`: reflection or replication padding on every padded conv, the other
  two schemes the report compares.

The classifiers of the report (``pdresnet50``, ...) are built by name in the classification
task (``inpainting.tasks.classification.models``).

Example:
    >>> import torchvision
    >>> model = convert_to_partial_conv(torchvision.models.resnet18())
"""

from __future__ import annotations

import logging

from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.utils import parametrize

from inpainting.layers.partial_conv import PartialConv2d

__all__ = ["CONV_PADDING_MODES", "convert_to_partial_conv", "set_padding_mode"]

logger = logging.getLogger(__name__)

# padding_mode values of nn.Conv2d that set_padding_mode switches between
CONV_PADDING_MODES = ("zeros", "reflect", "replicate")


# ------------------------------------------------------------------------------------------------
# conversion
def _has_padding(conv: nn.Conv2d) -> bool:
    """True when the conv reads outside its input, i.e. it pads with something."""
    if conv.padding == "valid":
        return False
    if conv.padding == "same":
        # 'same' pads dilation * (kernel - 1) in total per dimension; a 1x1 kernel pads nothing.
        return any(d * (k - 1) > 0 for d, k in zip(conv.dilation, conv.kernel_size))
    return any(p > 0 for p in conv.padding)


def _skip_reason(conv: nn.Conv2d) -> str | None:
    """Why a padded conv cannot be converted without changing what it computes, or None."""
    if conv.padding_mode != "zeros":
        return (f"padding_mode={conv.padding_mode!r}; partial-convolution padding only "
                "replaces zero padding")
    if isinstance(conv, LazyModuleMixin) and conv.has_uninitialized_params():
        return "its parameters are not initialised yet (run one forward pass first)"
    if parametrize.is_parametrized(conv):
        return "its weight is parametrized (e.g. weight/spectral norm)"
    names = {name for name, _ in conv.named_parameters(recurse=False)}
    if "weight" not in names or not names <= {"weight", "bias"}:
        return f"it holds parameters {sorted(names)} instead of weight/bias"
    if len(conv._buffers) > 0:
        return f"it holds buffers {sorted(conv._buffers)}"
    return None


def _to_partial_conv(conv: nn.Conv2d, name: str) -> PartialConv2d:
    """A PartialConv2d with ``conv``'s hyper-parameters that shares its Parameter objects."""
    # Built on the meta device so no weights are allocated or initialised just to be replaced.
    layer = PartialConv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
        padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
        bias=conv.bias is not None, padding_mode="zeros", device="meta", dtype=conv.weight.dtype,
    )
    layer.weight = conv.weight  # same Parameter: optimizers and tied weights keep working
    if conv.bias is not None:
        layer.bias = conv.bias
    layer.train(conv.training)
    if type(conv) is not nn.Conv2d and (
        type(conv).forward is not nn.Conv2d.forward
        or type(conv)._conv_forward is not nn.Conv2d._conv_forward
    ):
        logger.warning("%s: %s overrides forward(); its custom computation is replaced by "
                       "partial convolution", name or "<root>", type(conv).__name__)
    if conv._forward_hooks or conv._forward_pre_hooks or conv._backward_hooks:
        logger.warning("%s: hooks registered on the conv are not carried over to the "
                       "PartialConv2d that replaces it", name or "<root>")
    return layer


def _convert_module(module: nn.Module, name: str, memo: dict[int, nn.Module]) -> nn.Module:
    """Return the replacement for ``module`` (itself when nothing changes), recursing."""
    if id(module) in memo:  # shared sub-modules are converted once and stay shared
        return memo[id(module)]
    result = module
    if isinstance(module, nn.Conv2d) and not isinstance(module, PartialConv2d):
        if _has_padding(module):
            reason = _skip_reason(module)
            if reason is None:
                result = _to_partial_conv(module, name)
            else:
                logger.warning("%s: kept as %s because %s", name or "<root>",
                               type(module).__name__, reason)
    else:
        # _modules, not named_children(): the latter skips the second slot of a shared module
        for child_name, child in list(module._modules.items()):
            if child is None:
                continue
            full_name = f"{name}.{child_name}" if name else child_name
            new_child = _convert_module(child, full_name, memo)
            if new_child is not child:
                setattr(module, child_name, new_child)
    memo[id(module)] = result
    return result


def convert_to_partial_conv(model: nn.Module) -> nn.Module:
    """Switch a model from zero padding to partial-convolution padding, keeping its weights.

    Every ``nn.Conv2d`` (or subclass) that pads with zeros (``padding > 0`` in any dimension,
    or ``'same'`` with a kernel larger than 1) is replaced, in place, by a
    :class:`~inpainting.layers.PartialConv2d` with the same hyper-parameters, device and dtype,
    holding the very same ``weight``/``bias`` Parameter objects. The state dict (keys and
    values) is therefore unchanged, pretrained weights are kept, and an optimizer built before
    the conversion still updates the converted model. Convs without padding stay as they are:
    partial convolution without a mask and without padding is the plain convolution.
    Existing PartialConv2d layers are left alone.

    Convs that cannot be converted faithfully are kept and a warning is logged: a
    ``padding_mode`` other than ``'zeros'`` (partial padding only replaces zero padding),
    uninitialised lazy convs, parametrized weights and convs holding extra parameters or
    buffers. Hooks registered on a replaced conv are not carried over (a warning says so).

    Args:
        model: any module, e.g. a torchvision classifier. Modified in place.

    Returns:
        The converted model. It is ``model`` itself unless ``model`` is a padded conv, in which
        case the new PartialConv2d is returned; always use the return value.

    Example:
        >>> import torchvision
        >>> net = torchvision.models.resnet18(weights="IMAGENET1K_V1")  # doctest: +SKIP
        >>> net = convert_to_partial_conv(net)  # doctest: +SKIP
    """
    memo: dict[int, nn.Module] = {}
    result = _convert_module(model, "", memo)
    converted = sum(1 for m in result.modules() if isinstance(m, PartialConv2d))
    logger.info("partial-convolution padding: %d PartialConv2d layers in %s", converted,
                type(result).__name__)
    return result


def set_padding_mode(model: nn.Module, mode: str) -> nn.Module:
    """Pad every padded ``nn.Conv2d`` of ``model`` with ``mode`` (in place), keeping weights.

    Only ``padding_mode`` changes: weights, state dict and optimizers are untouched. Convs
    without padding (ResNet's 1x1 downsample convs) and :class:`PartialConv2d` layers (which
    define their own border) are left alone. Pooling layers are not convs and stay as they
    are: ResNet's stem max-pool (3x3, stride 2, padding 1) pads with -inf, and in any 3x3
    window with padding 1 the reflected or replicated border value is a pixel the window
    already covers, so its maximum is the same under all three schemes.

    ``'reflect'`` needs every feature map larger than the padding (e.g. ResNets need inputs of
    at least 64 px, where layer4 works at 2x2); ``F.pad`` raises otherwise.

    Args:
        model: any module, e.g. a torchvision classifier.
        mode: one of :data:`CONV_PADDING_MODES`.

    Returns:
        ``model``.

    Raises:
        ValueError: unknown ``mode`` (the message lists the valid ones).
    """
    if mode not in CONV_PADDING_MODES:
        raise ValueError(f"unknown padding_mode {mode!r} (valid: {', '.join(CONV_PADDING_MODES)})")
    changed = 0
    for module in model.modules():
        if (isinstance(module, nn.Conv2d) and not isinstance(module, PartialConv2d)
                and _has_padding(module)):
            module.padding_mode = mode
            changed += 1
    logger.info("padding_mode=%r on %d convs of %s", mode, changed, type(model).__name__)
    return model
