"""Checks of the training options against the device, made before any work starts."""

from __future__ import annotations

import torch

from inpainting.engine.config import Config, ConfigError

__all__ = ["check_device_options", "check_precision"]


def check_device_options(config: Config, device: torch.device) -> None:
    """Refuse settings the device cannot train with, before any work starts.

    Raises:
        ConfigError: fp16 on a CPU (no GradScaler there), bf16 on a GPU without bf16, or
            SyncBatchNorm off CUDA (PyTorch implements it for GPUs only).
    """
    check_precision(config.train.precision, device)
    if config.train.sync_bn and device.type != "cuda":
        raise ConfigError("train.sync_bn needs CUDA devices (PyTorch's SyncBatchNorm is GPU-only); "
                          "use --set train.sync_bn=false on CPU")


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse precisions the device cannot train in.

    Raises:
        ConfigError: fp16 on a CPU (no GradScaler there), or bf16 on a GPU without bf16.
    """
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("train.precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("train.precision bf16 is not supported by this GPU; use fp16 or fp32")
