"""Shared test fixtures: every test runs seeded, on CPU, with two threads."""

import logging
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    yield


@pytest.fixture(autouse=True)
def _restore_root_logger():
    """Training runs install console/file handlers on the root logger; remove them afterwards,
    so that no test sees log lines (or open log files) left by another."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


def make_images(folder: Path, count: int = 10) -> Path:
    """Smooth random colour images of 40x48 (larger than the 32x32 crops)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        small = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
        image = cv2.resize(small, (48, 40), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"image_{index:02d}.png"), image)
    return folder


@pytest.fixture
def tiny_config(tmp_path):
    """A YAML config for 32x32 CPU runs on 8 train / 2 val images."""
    images = make_images(tmp_path / "images")
    path = tmp_path / "tiny.yaml"
    path.write_text(f"""
model: {{depth: 3, base_channels: 8}}
data: {{train: {images}, val_fraction: 0.2, image_size: 32, batch_size: 2, num_workers: 0}}
masks: {{val_count: 6}}
loss: {{vgg_weights: none}}
optim: {{lr: 1.0e-3}}
train: {{run_dir: {tmp_path / 'run'}, max_steps: 5, log_every: 1, val_every: 5, ckpt_every: 5,
         device: cpu}}
log: {{progress: false, grid_size: 2}}
""", encoding="utf-8")
    return path
