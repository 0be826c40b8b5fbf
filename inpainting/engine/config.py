"""The base training configuration: frozen, typed dataclasses.

Every run has the sections of this module, ``task``, ``optim`` (beside its builders in
``engine.optim``), ``train`` and ``log``; its task adds its own (``model``, ``data``, ...) by
subclassing :class:`Config` in its package, and may extend ``train`` the same way. YAML becomes
the config of the task it names in ``inpainting.tasks.load_config`` (the registry), so this
module names no task.

Defaults live in the dataclasses; a YAML file overrides only what differs, and ``--set
section.key=value`` overrides the file (values parsed with ``yaml.safe_load``, never ``eval``).
Unknown keys, wrong types and out-of-range values raise ``ConfigError`` with one line naming
the dotted key::

    unknown key 'optim.lrr' (valid: name, lr, betas, ...)
    config key 'optim.lr' expects float, got str 'fast'
    optim.lr must be > 0, got -0.1

``train.run_dir`` may contain ``{time}``, replaced by the start time (``YYYYmmdd-HHMMSS``) so that
repeated runs of one config get separate folders.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from inpainting.engine.config_parsing import ConfigError, check, check_choice
from inpainting.engine.optim import OptimConfig

__all__ = ["Config", "ConfigError", "LogConfig", "OptimConfig", "TrainConfig", "config_to_dict"]

PRECISIONS = ("fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    """``train``: the loop, devices, precision and checkpoints (counted in optimizer steps)."""

    run_dir: str = "runs/run-{time}"
    max_steps: int = 100_000
    max_minutes: float = 0.0  # also stop (checkpoint + validation) after this training time; 0: off
    seed: int = 0
    log_every: int = 100
    val_every: int = 5_000
    ckpt_every: int = 5_000
    keep_numbered: bool = False  # also keep step_XXXXXXX.pt at every checkpoint
    precision: str = "fp32"  # fp32 | bf16 | fp16 (fp16 needs CUDA)
    device: str = "auto"  # auto (CUDA if available) | cpu | cuda
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
        check_choice("train.precision", self.precision, PRECISIONS)
        check_choice("train.device", self.device, DEVICES)
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
        check(1 <= self.grid_size <= 64, "log.grid_size", "in [1, 64]", self.grid_size)


@dataclass(frozen=True)
class Config:
    """The sections every run has; a task's config subclasses it with its own sections."""

    task: str = ""  # a name in the registry (inpainting.tasks); each task's class sets its own
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain nested dict (dicts, lists, str, int, float, bool) of a config, for YAML/checkpoints."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(config))
