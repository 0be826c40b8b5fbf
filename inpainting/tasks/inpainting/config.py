"""The configuration of an inpainting run: the engine's base sections (``task``, ``optim``,
``train``, ``log``; ``inpainting.engine.config``), the task's own, each defined beside the code
that builds from it (``model`` and ``loss`` in ``.model``, ``data`` and ``masks`` in ``.data``),
the ``train`` keys of its fine-tuning phase and validation baseline, and the checks across
sections.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inpainting.engine.config import Config, TrainConfig
from inpainting.engine.config_parsing import ConfigError, check, check_choice
from inpainting.metrics.baselines import BASELINES
from inpainting.tasks.inpainting.data import DataConfig, MasksConfig
from inpainting.tasks.inpainting.model import LossConfig, ModelConfig

# the per-image metrics validation can compute without downloaded weights
VAL_METRICS = ("l1", "psnr", "ssim", "grad-ratio")

__all__ = ["VAL_METRICS", "DataConfig", "InpaintingConfig", "InpaintingTrainConfig", "LossConfig",
           "MasksConfig", "ModelConfig"]


@dataclass(frozen=True)
class InpaintingTrainConfig(TrainConfig):
    """``train``: the engine's keys, and the inpainting task's fine-tuning phase (Liu et al.,
    ECCV 2018, Sec. 4: encoder BatchNorm frozen at a lower lr) and validation baseline."""

    finetune_step: int = 0  # from this step: lr finetune_lr, encoder BN frozen; 0: off
    finetune_lr: float = 5e-5
    # classical methods scored beside the model, comma-separated (opencv-ns,patchmatch); "": none
    val_baseline: str = ""
    # per-image metrics of the validation table (no downloaded weights: lpips, fid, ... are
    # evaluate.py's); PSNR, SSIM and L1 are always logged
    val_metrics: tuple[str, ...] = ("l1", "psnr", "ssim", "grad-ratio")

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.finetune_step >= 0, "train.finetune_step", ">= 0 (0: off)", self.finetune_step)
        check(self.finetune_lr > 0.0, "train.finetune_lr", "> 0", self.finetune_lr)
        for name in self.baselines():
            check_choice("train.val_baseline", name, BASELINES)
        for name in self.val_metrics:
            if name in ("lpips", "fid", "kid", "is", "p-ids", "u-ids"):
                raise ConfigError(f"train.val_metrics: {name} needs downloaded weights and is "
                                  "not scored during training; use evaluate.py --metrics")
            check_choice("train.val_metrics", name, VAL_METRICS)

    def baselines(self) -> tuple[str, ...]:
        """The names of ``val_baseline``."""
        return tuple(dict.fromkeys(n.strip() for n in self.val_baseline.split(",") if n.strip()))


@dataclass(frozen=True)
class InpaintingConfig(Config):
    """The whole configuration of an inpainting run."""

    task: str = "inpainting"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    masks: MasksConfig = field(default_factory=MasksConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: InpaintingTrainConfig = field(default_factory=InpaintingTrainConfig)

    def __post_init__(self) -> None:
        factor = 2**self.model.depth
        if self.data.image_size % factor:
            raise ConfigError(
                f"data.image_size {self.data.image_size} must be divisible by 2**model.depth "
                f"= {factor}"
            )
        if self.train.finetune_step >= self.train.max_steps:
            raise ConfigError(
                f"train.finetune_step {self.train.finetune_step} must be below train.max_steps "
                f"{self.train.max_steps} (0: off)"
            )
        if self.train.sync_bn and self.model.norm == "masked_batch":
            raise ConfigError("train.sync_bn does not support model.norm masked_batch (use "
                              "model.norm batch, or train without sync_bn)")
        if self.masks.border and 2 * self.masks.border >= self.data.image_size:
            raise ConfigError(
                f"masks.border {self.masks.border} leaves no room for holes in "
                f"{self.data.image_size}x{self.data.image_size} images"
            )
