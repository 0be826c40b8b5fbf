"""Helpers shared by the app and export tests: a tiny checkpoint and test photos."""

from pathlib import Path

import numpy as np
import torch

from inpainting.models import PConvUNet

DEPTH = 3  # sizes are padded to multiples of 8


def tiny_checkpoint(path: Path) -> Path:
    """A checkpoint of a random-weight PConvUNet(depth=3, base_channels=8), as train.py saves."""
    model = PConvUNet(depth=DEPTH, base_channels=8)
    config = {"model": {"name": "pconv_unet", "depth": DEPTH, "base_channels": 8},
              "data": {"image_size": 32}}
    torch.save({"model": model.state_dict(), "config": config, "step": 0, "version": 1}, path)
    return path


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random colour image (H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 5, 3)).astype(np.float32)
    rows = np.linspace(0, 3, height)[:, None]
    cols = np.linspace(0, 4, width)[None, :]
    row0, col0 = np.floor(rows).astype(int).clip(0, 2), np.floor(cols).astype(int).clip(0, 3)
    fy, fx = (rows - row0)[..., None], (cols - col0)[..., None]
    top = small[row0, col0] * (1 - fx) + small[row0, col0 + 1] * fx
    bottom = small[row0 + 1, col0] * (1 - fx) + small[row0 + 1, col0 + 1] * fx
    return np.rint(top * (1 - fy) + bottom * fy).astype(np.uint8)
