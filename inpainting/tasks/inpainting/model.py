"""The ``model`` and ``loss`` config sections and what is built from them: the network
(``inpainting.models.build_model``), the loss (``inpainting.models.losses.build_loss``) and
the weights of ``--init-from``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

from torch import nn

from inpainting.engine.checkpoint import load_checkpoint
from inpainting.engine.config_parsing import ConfigError, check, check_choice
from inpainting.models import (
    MODELS,
    NORMS,
    PREFILLS,
    UPSAMPLING_MODES,
    VALUE_RANGES,
    build_model,
)
from inpainting.models.losses import DEFAULT_WEIGHTS, build_loss

__all__ = ["LossConfig", "LossWeights", "ModelConfig", "build_network", "load_init_weights"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelConfig:
    """``model``: the keyword arguments of ``inpainting.models.build_model``."""

    name: str = "pconv_unet"  # a key of inpainting.models.MODELS
    depth: int = 8  # encoder levels; image_size must be divisible by 2**depth
    base_channels: int = 64  # channels of the first level (the paper: 64, capped at 8x)
    upsampling: str = "nearest"  # a key of inpainting.models.UPSAMPLING_MODES
    freeze_encoder_bn: bool = False  # the paper's fine-tuning phase
    # Beyond the paper (models/masked_norm.py, models/prefill.py; the defaults are the paper's):
    norm: str = "batch"  # batch | masked_batch (BatchNorm statistics over known positions)
    prefill: str = "none"  # none | diffusion (classical fill as extra input, residual output)
    value_range: str = "unit"  # unit | symmetric (computes in [-1, 1]: mmagic's PConv models)

    def __post_init__(self) -> None:
        check_choice("model.name", self.name, MODELS)
        check_choice("model.norm", self.norm, NORMS)
        check_choice("model.prefill", self.prefill, PREFILLS)
        check_choice("model.value_range", self.value_range, VALUE_RANGES)
        check(1 <= self.depth <= 10, "model.depth", "in [1, 10]", self.depth)
        check(self.base_channels >= 1, "model.base_channels", ">= 1", self.base_channels)
        check_choice("model.upsampling", self.upsampling, UPSAMPLING_MODES)


@dataclass(frozen=True)
class LossWeights:
    """``loss.weights``: Liu et al., ECCV 2018, Eq. 7; the defaults are the paper's, from
    ``inpainting.models.losses.DEFAULT_WEIGHTS`` (one table for the config and the loss)."""

    valid: float = DEFAULT_WEIGHTS["valid"]
    hole: float = DEFAULT_WEIGHTS["hole"]
    perceptual: float = DEFAULT_WEIGHTS["perceptual"]
    style_out: float = DEFAULT_WEIGHTS["style_out"]
    style_comp: float = DEFAULT_WEIGHTS["style_comp"]
    tv: float = DEFAULT_WEIGHTS["tv"]

    def __post_init__(self) -> None:
        for name, value in dataclasses.asdict(self).items():
            check(value >= 0.0, f"loss.weights.{name}", ">= 0", value)


@dataclass(frozen=True)
class LossConfig:
    """``loss``: the inpainting loss."""

    vgg_weights: str = "imagenet"  # imagenet | none (random VGG, no download) | a .pth path
    weights: LossWeights = field(default_factory=LossWeights)


def build_network(model: ModelConfig, loss: LossConfig) -> tuple[nn.Module, nn.Module]:
    """The network of the ``model`` section and the loss of the ``loss`` section.

    Raises:
        UserInputError: the ImageNet VGG-16 weights the loss needs cannot be had.
    """
    weights = dataclasses.asdict(loss.weights)
    return (build_model(**dataclasses.asdict(model)),
            build_loss(weights, loss.vgg_weights))


def load_init_weights(network: nn.Module, model: ModelConfig, path: str) -> None:
    """Start a new run from the weights of checkpoint ``path`` (``--init-from``): its weight
    average when the run kept one, the weights it validated with.

    Raises:
        ConfigError: the checkpoint's model section differs from ``model`` (naming the keys and
            the ``--set`` that fits).
    """
    state = load_checkpoint(path)
    theirs = dict(state["config"].get("model", {}))
    ours = dataclasses.asdict(model)
    differing = [k for k in ours if k != "freeze_encoder_bn" and theirs.get(k) != ours[k]]
    if differing:
        fixes = " ".join(f"--set model.{k}={theirs.get(k)}" for k in differing)
        raise ConfigError(f"--init-from checkpoint has a different model ({', '.join(differing)}"
                          f"); use the same model settings, e.g. {fixes}")
    ema = state.get("ema")
    network.load_state_dict(ema["model"] if ema else state["model"])
    logger.info("initialised the %sweights from %s (step %s)", "EMA " if ema else "", path,
                state.get("step"))
