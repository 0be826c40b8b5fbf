"""The inpainting task (Liu et al., ECCV 2018): a partial-convolution U-Net trained on one's own
images with irregular hole masks, validated per hole-ratio bin.

Its config sections are ``model``, ``data``, ``masks`` and ``loss`` (``.config``); its
checkpoints are ``last.pt`` and ``best.pt`` in the engine's layout (``.checkpoint``). The
registry (``inpainting.tasks``) finds it as ``DEFINITION``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inpainting.engine.config import Config
from inpainting.engine.distributed import DistInfo
from inpainting.engine.task import FitResult
from inpainting.tasks.inpainting import setup
from inpainting.tasks.inpainting.checkpoint import TASK_NAME, describe_checkpoint
from inpainting.tasks.inpainting.config import InpaintingConfig

__all__ = ["DEFINITION", "InpaintingDefinition"]

# Keys of the task's sections whose change on resume is bookkeeping (how data is loaded, a
# test list for evaluate.py, a baseline scored beside the model).
_NEUTRAL_KEYS = frozenset({"data.num_workers", "data.decode_cache_mb", "data.demo_root",
                           "data.test", "train.val_baseline", "train.val_metrics"})


class InpaintingDefinition:
    """The inpainting task as the registry holds it (``engine.task.TaskDefinition``)."""

    name = TASK_NAME
    config_class = InpaintingConfig
    # No key was renamed; the other task's sections that earlier versions saved in every run
    # are dropped by the migration, which keeps the sections of config_class.
    renamed_keys: dict[str, str | None] = {}

    @staticmethod
    def fixed_key(key: str) -> bool:
        """The ``model`` section: the checkpoint's weights have its shapes (freezing the
        encoder's BatchNorm only changes training)."""
        return key.startswith("model.") and key != "model.freeze_encoder_bn"

    @staticmethod
    def neutral_key(key: str) -> bool:
        return key in _NEUTRAL_KEYS

    @staticmethod
    def lr_key(key: str) -> bool:
        return key in ("train.finetune_step", "train.finetune_lr")

    @staticmethod
    def checkpoint_file(name: str) -> str:
        return name

    describe_checkpoint = staticmethod(describe_checkpoint)

    @staticmethod
    def unpack_checkpoint(state: dict[str, Any]) -> dict[str, Any]:
        return state  # written in the engine's layout

    @staticmethod
    def prepare(config: Config, dist: DistInfo, init_from: str | None) -> setup.PreparedInpainting:
        assert isinstance(config, InpaintingConfig)  # the registry built it from config_class
        return setup.prepare(config, dist, init_from)

    @staticmethod
    def resumed(run_dir: Path, step: int) -> None:
        """Nothing to drop: validation tables live in the log and TensorBoard, which purges
        events after the checkpoint's step itself."""

    @staticmethod
    def summary(config: Config, run_dir: Path, result: FitResult, tensorboard: bool
                ) -> list[str]:
        assert isinstance(config, InpaintingConfig)
        return setup.summary(config, run_dir, result, tensorboard)


DEFINITION = InpaintingDefinition()
