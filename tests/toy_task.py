"""A task defined only in the tests: linear regression on seeded random data.

It proves that the engine needs nothing of the project's own tasks: registered with
``inpainting.tasks.register("toy", "toy_task:DEFINITION")``, it trains, saves, resumes and prints
its summary through ``train.py``'s set-up (``inpainting.engine.run``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from inpainting.engine.batches import make_train_loader
from inpainting.engine.config import Config
from inpainting.engine.config_parsing import check
from inpainting.engine.distributed import DistInfo
from inpainting.engine.task import FitResult, ReportContext, ValidationOptions


@dataclass(frozen=True)
class ToySection:
    """``toy``: the data and the batch."""

    samples: int = 64
    features: int = 4
    batch_size: int = 8

    def __post_init__(self) -> None:
        check(self.samples >= self.batch_size, "toy.samples", ">= toy.batch_size", self.samples)


@dataclass(frozen=True)
class ToyConfig(Config):
    task: str = "toy"
    toy: ToySection = field(default_factory=ToySection)


class Points(Dataset):
    """``{"x": (F,), "y": ()}`` with y = x . w + noise, the same for every seed of the run."""

    def __init__(self, samples: int, features: int) -> None:
        generator = torch.Generator().manual_seed(1234)
        self.x = torch.randn(samples, features, generator=generator)
        weights = torch.arange(1.0, features + 1)
        self.y = self.x @ weights + 0.1 * torch.randn(samples, generator=generator)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {"x": self.x[index], "y": self.y[index]}


class ToyTask:
    validates_on_all_ranks = False
    best_name = "val -MSE"

    def loss_terms(self, model, loss_fn, batch, device, channels_last):
        return {"total": loss_fn(model(batch["x"]).squeeze(1), batch["y"])}

    def enter_phase(self, step: int, model: nn.Module) -> bool:
        return False

    def lr_scale(self, step: int) -> float:
        return 1.0

    @torch.no_grad()
    def validate(self, model, loader, options: ValidationOptions) -> float:
        errors = [nn.functional.mse_loss(model(b["x"]).squeeze(1), b["y"]) for b in loader]
        return float(torch.stack(errors).mean())

    def score(self, result: float) -> float:
        return -result

    def report(self, result: float, context: ReportContext) -> None:
        with open(context.run_dir / "toy.jsonl", "a", encoding="utf-8") as file:
            file.write(json.dumps({"step": context.step, "mse": result}) + "\n")

    def write_samples(self, model, loader, options, context) -> None:
        return None

    def checkpoint_file(self, name: str) -> str:
        return name.replace(".pt", ".toy")

    def pack_checkpoint(self, state: dict[str, Any], model: nn.Module) -> dict[str, Any]:
        return state


@dataclass
class PreparedToy:
    config: ToyConfig
    model: nn.Module
    loss: nn.Module
    task: ToyTask
    description: str = "toy regression data"

    def record(self, run_dir: Path) -> None:
        (run_dir / "toy.txt").write_text("toy\n", encoding="utf-8")

    def loaders(self, run_dir: Path, dist: DistInfo, device: torch.device):
        toy = self.config.toy
        points = Points(toy.samples, toy.features)
        train = make_train_loader(points, toy.batch_size, 0, self.config.train.seed, dist.rank,
                                  dist.world_size)
        return train, DataLoader(points, batch_size=toy.batch_size)


class ToyDefinition:
    name = "toy"
    config_class = ToyConfig
    renamed_keys = {"toy.rows": "toy.samples"}  # an old spelling, for the migration test

    def fixed_key(self, key: str) -> bool:
        return key == "toy.features"

    def neutral_key(self, key: str) -> bool:
        return False

    def lr_key(self, key: str) -> bool:
        return False

    def checkpoint_file(self, name: str) -> str:
        return ToyTask().checkpoint_file(name)

    def describe_checkpoint(self, state: Any) -> str | None:
        config = state.get("config") if isinstance(state, dict) else None
        return "a toy checkpoint" if isinstance(config, dict) and config.get("task") == "toy" \
            else None

    def unpack_checkpoint(self, state: dict[str, Any]) -> dict[str, Any]:
        return state

    def prepare(self, config: ToyConfig, dist: DistInfo, init_from: str | None) -> PreparedToy:
        model = nn.Linear(config.toy.features, 1)
        return PreparedToy(config, model, nn.MSELoss(), ToyTask())

    def resumed(self, run_dir: Path, step: int) -> None:
        path = run_dir / "toy.jsonl"
        kept = [line for line in path.read_text().splitlines()
                if json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in kept))

    def summary(self, config: ToyConfig, run_dir: Path, result: FitResult,
                tensorboard: bool) -> list[str]:
        return [f"Toy MSE {result.last_eval:.4f} (best score {result.best_score:.4f})"]


DEFINITION = ToyDefinition()
