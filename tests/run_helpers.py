"""Helpers shared by the engine tests: run a tiny training, read its checkpoints and events."""

import importlib.util
from pathlib import Path
from types import ModuleType

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from inpainting.engine.run import setup_training


def run(config_path, overrides=(), resume=None, init_from=None):
    """Set up and fit a run as train.py does; returns (session, FitResult), session closed."""
    session = setup_training(str(config_path) if config_path else None, list(overrides),
                             resume=resume, init_from=init_from)
    try:
        return session, session.trainer.fit()
    finally:
        session.close()


def load(path: Path) -> dict:
    """A checkpoint, read the way the project always reads them (weights_only=True)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def scalars(run_dir: Path, tag: str) -> dict[int, float]:
    """step -> value of one TensorBoard scalar of a run."""
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return {event.step: event.value for event in events.Scalars(tag)}


def load_benchmark(name: str) -> ModuleType:
    """The module of ``benchmarks/<name>.py`` (the benchmarks folder is not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
