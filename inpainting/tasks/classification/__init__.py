"""The classification task: ImageNet-style classifiers with a padding scheme (zero, partial,
reflect, replicate), the experiment of Liu et al., "Partial Convolution based Padding" (2018),
with the command line and checkpoint format of NVIDIA's ImageNet script (``classify.py``).

Its config sections are ``data`` and ``classifier`` (``.config``); its checkpoints are NVIDIA's
``checkpoint.pth.tar`` / ``model_best.pth.tar`` (``.task``, ``.nvidia``), and it reads the
files NVIDIA's ``main.py`` writes. Also here: the pd* models (``.models``), ``classify.py``'s
command line (``.cli``), the padding demo (``.padding_demo``) and report
(``.padding_report``). The registry (``inpainting.tasks``) finds it as ``DEFINITION``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inpainting.engine.config import Config
from inpainting.engine.distributed import DistInfo
from inpainting.engine.task import FitResult
from inpainting.tasks.classification import setup
from inpainting.tasks.classification.checkpoint import TASK_NAME, describe_checkpoint
from inpainting.tasks.classification.config import RETIRED_KEYS, ClassificationConfig
from inpainting.tasks.classification.nvidia import without_data_parallel_names
from inpainting.tasks.classification.task import checkpoint_file, drop_metrics_after

__all__ = ["DEFINITION", "ClassificationDefinition"]

# Keys whose change decides the network's layers and shapes.
_NETWORK_KEYS = frozenset({"classifier.arch", "classifier.padding", "classifier.num_classes"})


class ClassificationDefinition:
    """The classification task as the registry holds it (``engine.task.TaskDefinition``)."""

    name = TASK_NAME
    config_class = ClassificationConfig
    renamed_keys: dict[str, str | None] = dict.fromkeys(RETIRED_KEYS)

    @staticmethod
    def fixed_key(key: str) -> bool:
        return key in _NETWORK_KEYS

    @staticmethod
    def neutral_key(key: str) -> bool:
        return key == "data.num_workers"

    @staticmethod
    def lr_key(key: str) -> bool:
        return False

    checkpoint_file = staticmethod(checkpoint_file)
    describe_checkpoint = staticmethod(describe_checkpoint)

    @staticmethod
    def unpack_checkpoint(state: dict[str, Any]) -> dict[str, Any]:
        """NVIDIA's layout (``state_dict`` under DataParallel names) -> the engine's ``model``.
        """
        if "model" not in state and "state_dict" in state:
            state["model"] = without_data_parallel_names(state["state_dict"])
        return state

    @staticmethod
    def prepare(config: Config, dist: DistInfo, init_from: str | None
                ) -> setup.PreparedClassification:
        assert isinstance(config, ClassificationConfig)  # built from config_class
        return setup.prepare(config, dist, init_from)

    @staticmethod
    def resumed(run_dir: Path, step: int) -> None:
        """Drop the ``metrics.jsonl`` records after ``step``: they are validated again."""
        drop_metrics_after(run_dir, step)

    @staticmethod
    def summary(config: Config, run_dir: Path, result: FitResult, tensorboard: bool
                ) -> list[str]:
        assert isinstance(config, ClassificationConfig)
        return setup.summary(config, run_dir, result, tensorboard)


DEFINITION = ClassificationDefinition()
