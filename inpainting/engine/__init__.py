"""Training engine: the ``Trainer`` loop, checkpoints, validation and DDP helpers."""

from inpainting.engine.batches import BatchStream, ResumableSampler, make_train_loader
from inpainting.engine.checkpoint import (
    CHECKPOINT_VERSION,
    find_checkpoint,
    load_checkpoint,
    load_model_from_checkpoint,
    save_checkpoint,
)
from inpainting.engine.distributed import DistInfo, init_distributed
from inpainting.engine.ema import ModelEma
from inpainting.engine.trainer import FitResult, NonFiniteLossError, Trainer
from inpainting.engine.validation import ValidationResult, evaluate, sample_grid

__all__ = [
    "CHECKPOINT_VERSION",
    "BatchStream",
    "DistInfo",
    "FitResult",
    "ModelEma",
    "NonFiniteLossError",
    "ResumableSampler",
    "Trainer",
    "ValidationResult",
    "evaluate",
    "find_checkpoint",
    "init_distributed",
    "load_checkpoint",
    "load_model_from_checkpoint",
    "make_train_loader",
    "sample_grid",
    "save_checkpoint",
]
