"""Training configuration: YAML -> frozen, typed dataclasses.

Defaults live in the dataclasses below; a YAML file overrides only what differs, and
``--set section.key=value`` overrides the file (values parsed with ``yaml.safe_load``, never
``eval``). Unknown keys, wrong types and out-of-range values raise ``ConfigError`` with one line
naming the dotted key::

    unknown key 'optim.lrr' (valid: name, lr, betas, ...)
    config key 'optim.lr' expects float, got str 'fast'
    optim.lr must be > 0, got -0.1

Type rules and the parsing itself live in ``inpainting.config_parsing``.

``data.train: demo`` selects the embedded demo data (see ``inpainting.data.prepare_demo_data``),
cached under ``data.demo_root``. ``train.run_dir`` may contain ``{time}``, replaced by the start
time (``YYYYmmdd-HHMMSS``) so that repeated runs of one config get separate folders.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inpainting.baselines import BASELINES
from inpainting.classifier_config import ClassifierConfig
from inpainting.config_parsing import (
    ConfigError,
    apply_overrides,
    build_dataclass,
    check,
    check_choice,
    read_yaml,
)
from inpainting.data import EVAL_MODES, MASK_SOURCES, TRAIN_RESIZE_MODES
from inpainting.losses import DEFAULT_WEIGHTS
from inpainting.models import MODELS, NORMS, PREFILLS, UPSAMPLING_MODES
from inpainting.optim import OPTIMIZERS, SCHEDULES
from masks import POLARITIES, parse_bins

__all__ = [
    "TASKS",
    "ClassifierConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "LogConfig",
    "LossConfig",
    "LossWeights",
    "MasksConfig",
    "ModelConfig",
    "OptimConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "read_yaml",
    "save_config",
]

# A name field is checked against the table of the code that uses it (MODELS, OPTIMIZERS,
# SCHEDULES, ...), so the config accepts exactly what can be built. Precision and device are
# the config's own: the engine (AUTOCAST_DTYPES, resolve_device) sits above this module.
PRECISIONS = ("fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
# What a run trains: the engine's tasks (engine.tasks; the engine sits above this module).
TASKS = ("inpainting", "classification")


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

    def __post_init__(self) -> None:
        check_choice("model.name", self.name, MODELS)
        check_choice("model.norm", self.norm, NORMS)
        check_choice("model.prefill", self.prefill, PREFILLS)
        check(1 <= self.depth <= 10, "model.depth", "in [1, 10]", self.depth)
        check(self.base_channels >= 1, "model.base_channels", ">= 1", self.base_channels)
        check_choice("model.upsampling", self.upsampling, UPSAMPLING_MODES)


@dataclass(frozen=True)
class DataConfig:
    """``data``: where images come from and how they are cropped."""

    train: str = ""  # image folder, file list (.txt), or "demo"
    val: str = ""  # folder or file list; empty: a seeded split of train (val_fraction)
    test: str = ""  # folder or file list for evaluate.py; recorded in RUN/splits/test.txt
    file_list_root: str = ""  # folder the paths in .txt lists are relative to (default: its folder)
    val_fraction: float = 0.05
    test_fraction: float = 0.0  # > 0: also hold out this share of train for testing (seeded)
    image_size: int = 256
    batch_size: int = 6  # per process (per GPU under torchrun)
    num_workers: int = 4
    eval_mode: str = "center_crop"  # validation crop, a key of inpainting.data.EVAL_MODES
    train_resize: str = "crop"  # training framing: crop | resize | random_resized_crop
    rrc_scale: tuple[float, float] = (0.5, 1.0)  # area fractions [lo, hi] of random_resized_crop
    random_resized_crop: bool = False  # older switch: true is train_resize: random_resized_crop
    hflip: bool = True
    decode_cache_mb: int = 256  # decoded training images kept per loader process; 0: off
    strict: bool = False  # an undecodable image stops the run instead of being skipped
    demo_root: str = "~/.cache/pconv-inpainting/demo"  # cache of the demo data

    def __post_init__(self) -> None:
        check(0.0 < self.val_fraction < 1.0, "data.val_fraction", "in (0, 1)", self.val_fraction)
        check(0.0 <= self.test_fraction < 1.0, "data.test_fraction", "in [0, 1) (0: off)",
              self.test_fraction)
        held_out = self.test_fraction + (0.0 if self.val.strip() else self.val_fraction)
        check(held_out < 1.0, "data.val_fraction + data.test_fraction", "< 1 (some images must "
              "stay for training)", round(held_out, 6))
        if self.test.strip() and self.test_fraction > 0:
            raise ConfigError("set either data.test (a test folder or list) or "
                              "data.test_fraction (hold out part of data.train), not both")
        check(self.image_size >= 8, "data.image_size", ">= 8", self.image_size)
        check(self.batch_size >= 1, "data.batch_size", ">= 1", self.batch_size)
        check(self.num_workers >= 0, "data.num_workers", ">= 0", self.num_workers)
        check_choice("data.eval_mode", self.eval_mode, EVAL_MODES)
        self._check_train_resize()
        check(self.decode_cache_mb >= 0, "data.decode_cache_mb", ">= 0 (0: off)",
              self.decode_cache_mb)
        if self.train.strip().lower() == "demo" and self.val not in ("", "demo"):
            raise ConfigError("data.val must be empty when data.train is 'demo' (it has its own)")
        if self.train.strip().lower() == "demo" and (self.test.strip() or self.test_fraction):
            raise ConfigError("data.test and data.test_fraction do not apply to the demo data "
                              "(it has no test images); leave them unset")


    def _check_train_resize(self) -> None:
        check_choice("data.train_resize", self.train_resize, TRAIN_RESIZE_MODES)
        lo, hi = self.rrc_scale
        check(0.0 < lo <= hi <= 1.0, "data.rrc_scale", "[lo, hi] with 0 < lo <= hi <= 1",
              list(self.rrc_scale))
        if self.random_resized_crop and self.train_resize == "resize":
            raise ConfigError("data.random_resized_crop: true contradicts data.train_resize: "
                              "resize; set only data.train_resize")
        # One meaning, two spellings (configs and checkpoints of older runs use the switch):
        # resolve both so that a saved config compares equal on resume.
        rrc = self.random_resized_crop or self.train_resize == "random_resized_crop"
        object.__setattr__(self, "random_resized_crop", rrc)
        if rrc:
            object.__setattr__(self, "train_resize", "random_resized_crop")


@dataclass(frozen=True)
class MasksConfig:
    """``masks``: training masks (generated, from a folder or from videos' object masks) and the
    fixed validation set."""

    # generator | folder (mask images) | video (a folder per video of frames' object masks)
    source: str = "generator"
    folder: str = ""  # for source: folder or video
    polarity: str = "known_white"  # of source: folder files: known_white | hole_white
    augment: bool = True  # random rotation/crop/translation/dilation of folder and video masks
    hole_range: tuple[float, float] = (0.01, 0.6)  # training hole ratios (generator)
    border: int = 0  # keep holes this many pixels from the edge (0: anywhere)
    val_count: int = 60  # validation pairs: image i % len(val images) with fixed mask i
    val_bins: str = "paper"  # hole-ratio bins of the validation masks: paper | "lo-hi,..."

    def __post_init__(self) -> None:
        check_choice("masks.source", self.source, MASK_SOURCES)
        check_choice("masks.polarity", self.polarity, POLARITIES)
        if self.source in ("folder", "video") and not self.folder.strip():
            raise ConfigError(f"masks.folder must be set when masks.source is '{self.source}'")
        lo, hi = self.hole_range
        check(0.0 <= lo < hi <= 1.0, "masks.hole_range", "[lo, hi] with 0 <= lo < hi <= 1",
               list(self.hole_range))
        check(self.border >= 0, "masks.border", ">= 0", self.border)
        check(self.val_count >= 1, "masks.val_count", ">= 1", self.val_count)
        try:
            parse_bins(self.val_bins)
        except ValueError as error:
            raise ConfigError(f"masks.val_bins: {error}") from None


@dataclass(frozen=True)
class LossWeights:
    """``loss.weights``: Liu et al., ECCV 2018, Eq. 7; the defaults are the paper's, from
    ``inpainting.losses.DEFAULT_WEIGHTS`` (one table for the config and the loss)."""

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


@dataclass(frozen=True)
class OptimConfig:
    """``optim``: optimizer, learning-rate schedule and gradient clipping."""

    name: str = "adam"  # a key of inpainting.optim.OPTIMIZERS: adam | adamw | sgd
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)  # adam, adamw
    momentum: float = 0.9  # sgd
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # max gradient norm; 0: off
    schedule: str = "constant"  # constant (the paper) | cosine (to 0 at max_steps) | step
    milestones: tuple[int, ...] = ()  # schedule: step multiplies the lr by gamma at these steps
    gamma: float = 0.1

    def __post_init__(self) -> None:
        check_choice("optim.name", self.name, OPTIMIZERS)
        check(self.lr > 0.0, "optim.lr", "> 0", self.lr)
        check(all(0.0 <= b < 1.0 for b in self.betas), "optim.betas", "in [0, 1)",
               list(self.betas))
        check(self.weight_decay >= 0.0, "optim.weight_decay", ">= 0", self.weight_decay)
        check(0.0 <= self.momentum < 1.0, "optim.momentum", "in [0, 1)", self.momentum)
        check(self.grad_clip >= 0.0, "optim.grad_clip", ">= 0", self.grad_clip)
        check_choice("optim.schedule", self.schedule, SCHEDULES)
        check(all(m > 0 for m in self.milestones), "optim.milestones", "> 0",
               list(self.milestones))
        check(0.0 < self.gamma <= 1.0, "optim.gamma", "in (0, 1]", self.gamma)


@dataclass(frozen=True)
class TrainConfig:
    """``train``: the loop, devices, precision and checkpoints (counted in optimizer steps)."""

    run_dir: str = "runs/run-{time}"
    max_steps: int = 100_000
    max_minutes: float = 0.0  # also stop (checkpoint + validation) after this training time; 0: off
    val_baseline: str = ""  # a classical method scored beside the model (opencv-ns); "": none
    seed: int = 0
    log_every: int = 100
    val_every: int = 5_000
    ckpt_every: int = 5_000
    keep_numbered: bool = False  # also keep step_XXXXXXX.pt at every checkpoint
    precision: str = "fp32"  # fp32 | bf16 | fp16 (fp16 needs CUDA)
    device: str = "auto"  # auto (CUDA if available) | cpu | cuda
    finetune_step: int = 0  # from this step: lr finetune_lr, encoder BN frozen; 0: off
    finetune_lr: float = 5e-5
    ema: float = 0.0  # decay of an exponential moving average of the weights; 0: off
    grad_accum: int = 1  # batches per optimizer step
    sync_bn: bool = False  # SyncBatchNorm under torchrun
    channels_last: bool = False
    compile: bool = False  # torch.compile the model
    cpu_keep_freed_memory: bool = True  # CPU runs: glibc reuses freed memory (engine/memory.py)

    def __post_init__(self) -> None:
        check(bool(self.run_dir.strip()), "train.run_dir", "a folder path", self.run_dir)
        for key in ("max_steps", "log_every", "val_every", "ckpt_every", "grad_accum"):
            check(getattr(self, key) >= 1, f"train.{key}", ">= 1", getattr(self, key))
        check(self.seed >= 0, "train.seed", ">= 0", self.seed)
        check(self.max_minutes >= 0.0, "train.max_minutes", ">= 0 (0: off)", self.max_minutes)
        if self.val_baseline:
            check_choice("train.val_baseline", self.val_baseline, BASELINES)
        check_choice("train.precision", self.precision, PRECISIONS)
        check_choice("train.device", self.device, DEVICES)
        check(self.finetune_step >= 0, "train.finetune_step", ">= 0 (0: off)", self.finetune_step)
        check(self.finetune_lr > 0.0, "train.finetune_lr", "> 0", self.finetune_lr)
        check(0.0 <= self.ema < 1.0, "train.ema", "in [0, 1) (0: off)", self.ema)


@dataclass(frozen=True)
class LogConfig:
    """``log``: console, TensorBoard and sample images."""

    progress: bool = True  # tqdm bar (also off when stderr is not a terminal)
    tensorboard: bool = True
    image_every: int = 0  # write a sample grid every N steps; 0: at every validation
    grid_size: int = 4  # validation samples in the grid

    def __post_init__(self) -> None:
        check(self.image_every >= 0, "log.image_every", ">= 0", self.image_every)
        check(self.grid_size >= 1, "log.grid_size", ">= 1", self.grid_size)


@dataclass(frozen=True)
class Config:
    """The whole training configuration."""

    task: str = "inpainting"  # inpainting | classification (the classifier section)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    masks: MasksConfig = field(default_factory=MasksConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)

    def __post_init__(self) -> None:
        check_choice("task", self.task, TASKS)
        if self.task == "classification":
            if not (self.data.train.strip() and self.data.val.strip()):
                raise ConfigError("task classification needs data.train and data.val, each a "
                                  "folder with one sub-folder of images per class")
            return
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


def config_from_dict(values: dict[str, Any]) -> Config:
    """Build a checked ``Config`` from a nested dict (e.g. ``checkpoint["config"]``).

    Args:
        values: ``{"optim": {"lr": 1e-4}, ...}``; missing keys keep their defaults.

    Returns:
        The frozen config.

    Raises:
        ConfigError: unknown key, wrong type or out-of-range value (one line, dotted key).
    """
    return build_dataclass(Config, values)


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain nested dict (dicts, lists, str, int, float, bool) of a config, for YAML/checkpoints."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(config))


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config, apply ``--set`` overrides and check everything.

    Args:
        path: YAML file, or ``None`` for the defaults.
        overrides: ``section.key=value`` strings applied after the file.

    Returns:
        The frozen, checked config.

    Raises:
        ConfigError: with one line naming the file or dotted key and what is valid.

    Example:
        >>> cfg = load_config("configs/demo.yaml", ["optim.lr=1e-4"])
        >>> cfg.optim.lr
        0.0001
    """
    values = read_yaml(path) if path is not None else {}
    return config_from_dict(apply_overrides(values, list(overrides or [])))


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (every key, defaults included)."""
    text = yaml.safe_dump(config_to_dict(config), sort_keys=False, default_flow_style=None)
    Path(path).write_text(text, encoding="utf-8")
