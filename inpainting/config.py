"""Training configuration: YAML -> frozen, typed dataclasses.

Defaults live in the dataclasses below; a YAML file overrides only what differs, and
``--set section.key=value`` overrides the file (values parsed with ``yaml.safe_load``, never
``eval``). Unknown keys, wrong types and out-of-range values raise ``ConfigError`` with one line
naming the dotted key::

    unknown key 'optim.lrr' (valid: name, lr, betas, ...)
    config key 'optim.lr' expects float, got str 'fast'
    optim.lr must be > 0, got -0.1

Type rules: an ``int`` is accepted where a ``float`` is expected; so is a string that reads as a
number, because YAML 1.1 loads ``1e-4`` (no dot) as a string. ``true``/``false`` are never
numbers. Lists are accepted for tuples.

``data.train: demo`` selects the embedded demo data (see ``inpainting.data.prepare_demo_data``),
cached under ``data.demo_root``. ``train.run_dir`` may contain ``{time}``, replaced by the start
time (``YYYYmmdd-HHMMSS``) so that repeated runs of one config get separate folders.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
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

PRECISIONS = ("fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "cosine", "step")
MASK_SOURCES = ("generator", "folder")
POLARITIES = ("known_white", "hole_white")
EVAL_MODES = ("center_crop", "resize")
UPSAMPLING = ("nearest", "bilinear")


class ConfigError(ValueError):
    """A configuration problem the user can fix; the message is one line naming the key."""


def _check(ok: bool, key: str, rule: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key} must be {rule}, got {value!r}")


def _choice(key: str, value: str, valid: typing.Iterable[str]) -> None:
    valid = tuple(valid)
    if value not in valid:
        raise ConfigError(f"unknown {key} {value!r} (valid: {', '.join(valid)})")


@dataclass(frozen=True)
class ModelConfig:
    """``model``: the keyword arguments of ``inpainting.models.build_model``."""

    name: str = "pconv_unet"  # a key of inpainting.models.MODELS
    depth: int = 8  # encoder levels; image_size must be divisible by 2**depth
    base_channels: int = 64  # channels of the first level (the paper: 64, capped at 8x)
    upsampling: str = "nearest"
    freeze_encoder_bn: bool = False  # the paper's fine-tuning phase

    def __post_init__(self) -> None:
        _check(1 <= self.depth <= 10, "model.depth", "in [1, 10]", self.depth)
        _check(self.base_channels >= 1, "model.base_channels", ">= 1", self.base_channels)
        _choice("model.upsampling", self.upsampling, UPSAMPLING)


@dataclass(frozen=True)
class DataConfig:
    """``data``: where images come from and how they are cropped."""

    train: str = ""  # image folder, file list (.txt), or "demo"
    val: str = ""  # folder or file list; empty: a seeded split of train (val_fraction)
    file_list_root: str = ""  # folder the paths in .txt lists are relative to (default: its folder)
    val_fraction: float = 0.05
    image_size: int = 256
    batch_size: int = 6  # per process (per GPU under torchrun)
    num_workers: int = 4
    eval_mode: str = "center_crop"  # validation crop: center_crop | resize
    random_resized_crop: bool = False
    hflip: bool = True
    strict: bool = False  # an undecodable image stops the run instead of being skipped
    demo_root: str = "~/.cache/pconv-inpainting/demo"  # cache of the demo data

    def __post_init__(self) -> None:
        _check(0.0 < self.val_fraction < 1.0, "data.val_fraction", "in (0, 1)", self.val_fraction)
        _check(self.image_size >= 8, "data.image_size", ">= 8", self.image_size)
        _check(self.batch_size >= 1, "data.batch_size", ">= 1", self.batch_size)
        _check(self.num_workers >= 0, "data.num_workers", ">= 0", self.num_workers)
        _choice("data.eval_mode", self.eval_mode, EVAL_MODES)
        if self.train.strip().lower() == "demo" and self.val not in ("", "demo"):
            raise ConfigError("data.val must be empty when data.train is 'demo' (it has its own)")


@dataclass(frozen=True)
class MasksConfig:
    """``masks``: training masks (generated or from a folder) and the fixed validation set."""

    source: str = "generator"  # generator | folder
    folder: str = ""  # mask images, for source: folder
    polarity: str = "known_white"  # of the folder's files: known_white | hole_white
    augment: bool = True  # random rotation/crop/translation/dilation of folder masks
    hole_range: tuple[float, float] = (0.01, 0.6)  # training hole ratios (generator)
    border: int = 0  # keep holes this many pixels from the edge (0: anywhere)
    val_count: int = 60  # validation pairs: image i % len(val images) with fixed mask i
    val_bins: str = "paper"  # hole-ratio bins of the validation masks: paper | "lo-hi,..."

    def __post_init__(self) -> None:
        _choice("masks.source", self.source, MASK_SOURCES)
        _choice("masks.polarity", self.polarity, POLARITIES)
        if self.source == "folder" and not self.folder:
            raise ConfigError("masks.folder must be set when masks.source is 'folder'")
        lo, hi = self.hole_range
        _check(0.0 <= lo < hi <= 1.0, "masks.hole_range", "[lo, hi] with 0 <= lo < hi <= 1",
               list(self.hole_range))
        _check(self.border >= 0, "masks.border", ">= 0", self.border)
        _check(self.val_count >= 1, "masks.val_count", ">= 1", self.val_count)
        from masks import parse_bins  # the bin syntax belongs to the masks package

        try:
            parse_bins(self.val_bins)
        except ValueError as error:
            raise ConfigError(f"masks.val_bins: {error}") from None


@dataclass(frozen=True)
class LossWeights:
    """``loss.weights``: Liu et al., ECCV 2018, Eq. 7 (defaults are the paper's)."""

    valid: float = 1.0
    hole: float = 6.0
    perceptual: float = 0.05
    style_out: float = 120.0
    style_comp: float = 120.0
    tv: float = 0.1

    def __post_init__(self) -> None:
        for name, value in dataclasses.asdict(self).items():
            _check(value >= 0.0, f"loss.weights.{name}", ">= 0", value)


@dataclass(frozen=True)
class LossConfig:
    """``loss``: the inpainting loss."""

    vgg_weights: str = "imagenet"  # imagenet | none (random VGG, no download) | a .pth path
    weights: LossWeights = field(default_factory=LossWeights)


@dataclass(frozen=True)
class OptimConfig:
    """``optim``: optimizer, learning-rate schedule and gradient clipping."""

    name: str = "adam"  # adam | adamw
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # max gradient norm; 0: off
    schedule: str = "constant"  # constant (the paper) | cosine (to 0 at max_steps) | step
    milestones: tuple[int, ...] = ()  # schedule: step multiplies the lr by gamma at these steps
    gamma: float = 0.1

    def __post_init__(self) -> None:
        _choice("optim.name", self.name, OPTIMIZERS)
        _check(self.lr > 0.0, "optim.lr", "> 0", self.lr)
        _check(all(0.0 <= b < 1.0 for b in self.betas), "optim.betas", "in [0, 1)",
               list(self.betas))
        _check(self.weight_decay >= 0.0, "optim.weight_decay", ">= 0", self.weight_decay)
        _check(self.grad_clip >= 0.0, "optim.grad_clip", ">= 0", self.grad_clip)
        _choice("optim.schedule", self.schedule, SCHEDULES)
        _check(all(m > 0 for m in self.milestones), "optim.milestones", "> 0",
               list(self.milestones))
        _check(0.0 < self.gamma <= 1.0, "optim.gamma", "in (0, 1]", self.gamma)


@dataclass(frozen=True)
class TrainConfig:
    """``train``: the loop, devices, precision and checkpoints (counted in optimizer steps)."""

    run_dir: str = "runs/run-{time}"
    max_steps: int = 100_000
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

    def __post_init__(self) -> None:
        _check(bool(self.run_dir.strip()), "train.run_dir", "a folder path", self.run_dir)
        for key in ("max_steps", "log_every", "val_every", "ckpt_every", "grad_accum"):
            _check(getattr(self, key) >= 1, f"train.{key}", ">= 1", getattr(self, key))
        _check(self.seed >= 0, "train.seed", ">= 0", self.seed)
        _choice("train.precision", self.precision, PRECISIONS)
        _choice("train.device", self.device, DEVICES)
        _check(self.finetune_step >= 0, "train.finetune_step", ">= 0 (0: off)", self.finetune_step)
        _check(self.finetune_lr > 0.0, "train.finetune_lr", "> 0", self.finetune_lr)
        _check(0.0 <= self.ema < 1.0, "train.ema", "in [0, 1) (0: off)", self.ema)


@dataclass(frozen=True)
class LogConfig:
    """``log``: console, TensorBoard and sample images."""

    progress: bool = True  # tqdm bar (also off when stderr is not a terminal)
    tensorboard: bool = True
    image_every: int = 0  # write a sample grid every N steps; 0: at every validation
    grid_size: int = 4  # validation samples in the grid

    def __post_init__(self) -> None:
        _check(self.image_every >= 0, "log.image_every", ">= 0", self.image_every)
        _check(self.grid_size >= 1, "log.grid_size", ">= 1", self.grid_size)


@dataclass(frozen=True)
class Config:
    """The whole training configuration."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    masks: MasksConfig = field(default_factory=MasksConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)

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
        if self.masks.border and 2 * self.masks.border >= self.data.image_size:
            raise ConfigError(
                f"masks.border {self.masks.border} leaves no room for holes in "
                f"{self.data.image_size}x{self.data.image_size} images"
            )


# ---------------------------------------------------------------------------------------------
# Dict -> dataclass conversion with type checks


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {_type_name(args[0])}"
        return f"list of {len(args)} {_type_name(args[0])}"
    return getattr(annotation, "__name__", str(annotation))


def _scalar(value: Any, kind: type, key: str) -> Any:
    def wrong() -> ConfigError:
        shown = f" {value!r}" if isinstance(value, (str, int, float, bool)) else ""
        return ConfigError(
            f"config key '{key}' expects {kind.__name__}, got {type(value).__name__}{shown}"
        )

    if isinstance(value, bool) or value is None:
        if kind is bool and value is not None:
            return value
        raise wrong()
    if kind is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise wrong() from None
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
        raise wrong()
    if isinstance(value, kind):
        return value
    raise wrong()


def _convert(value: Any, annotation: Any, key: str) -> Any:
    if dataclasses.is_dataclass(annotation):
        return _build(annotation, value, key)
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        variadic = len(args) == 2 and args[1] is Ellipsis
        if not isinstance(value, (list, tuple)) or (not variadic and len(value) != len(args)):
            raise ConfigError(
                f"config key '{key}' expects {_type_name(annotation)}, got {value!r}"
            )
        kinds = [args[0]] * len(value) if variadic else list(args)
        return tuple(_scalar(v, kind, key) for v, kind in zip(value, kinds))
    return _scalar(value, annotation, key)


def _build(cls: type, values: Any, prefix: str) -> Any:
    where = f"config key '{prefix}'" if prefix else "the config"
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where} expects a mapping of keys, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            dotted = f"{prefix}.{key}" if prefix else str(key)
            raise ConfigError(f"unknown key '{dotted}' (valid: {', '.join(names)})")
    kwargs = {
        name: _convert(values[name], hints[name], f"{prefix}.{name}" if prefix else name)
        for name in names
        if name in values
    }
    return cls(**kwargs)


def config_from_dict(values: dict[str, Any]) -> Config:
    """Build a checked ``Config`` from a nested dict (e.g. ``checkpoint["config"]``).

    Args:
        values: ``{"optim": {"lr": 1e-4}, ...}``; missing keys keep their defaults.

    Returns:
        The frozen config.

    Raises:
        ConfigError: unknown key, wrong type or out-of-range value (one line, dotted key).
    """
    return _build(Config, values, "")


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain nested dict (dicts, lists, str, int, float, bool) of a config, for YAML/checkpoints."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(config))


def _parse_override(text: str) -> tuple[list[str], Any]:
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"bad override {text!r}: use --set section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        raise ConfigError(f"bad override {text!r}: the value is not valid YAML") from None
    return key.split("."), value


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings to a nested dict (a new dict; the input is kept).

    Args:
        values: nested config dict.
        overrides: e.g. ``["optim.lr=1e-4", "masks.hole_range=[0.1, 0.3]"]``; each value is
            parsed with ``yaml.safe_load``.

    Returns:
        The updated nested dict (not yet checked; see ``config_from_dict``).

    Raises:
        ConfigError: malformed override, or one that descends into a non-mapping value.
    """
    result = _deep_copy(values)
    for text in overrides:
        path, value = _parse_override(text)
        node = result
        for depth, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                dotted = ".".join(path[: depth + 1])
                raise ConfigError(f"bad override {text!r}: '{dotted}' is not a section")
            node = child
        node[path[-1]] = value
    return result


def _deep_copy(values: Any) -> Any:
    if isinstance(values, dict):
        return {k: _deep_copy(v) for k, v in values.items()}
    if isinstance(values, list):
        return [_deep_copy(v) for v in values]
    return values


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict (an empty file gives ``{}``).

    Raises:
        ConfigError: missing file, invalid YAML or a top level that is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark, problem = getattr(error, "problem_mark", None), getattr(error, "problem", None)
        where = f" (line {mark.line + 1}: {problem})" if mark is not None and problem else ""
        raise ConfigError(f"config file '{path}' is not valid YAML{where}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping of sections at the top")
    return values


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
