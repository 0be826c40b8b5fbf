"""Process-group helpers for ``torchrun`` (DistributedDataParallel); no-ops in a single process.

``torchrun --nproc_per_node N train.py ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; ``init_distributed`` reads them, picks the backend (NCCL on
CUDA, gloo on CPU) and the device of this process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from inpainting.engine.errors import UserInputError

__all__ = [
    "DistInfo",
    "all_reduce_flag",
    "barrier",
    "broadcast_object",
    "cleanup_distributed",
    "init_distributed",
    "mean_over_ranks",
    "resolve_device",
    "sum_over_ranks",
]


@dataclass(frozen=True)
class DistInfo:
    """Rank and size of this process's group (``world_size`` 1: no process group)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, validates and writes checkpoints."""
        return self.rank == 0


def resolve_device(choice: str, local_rank: int = 0) -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` -> a device (``cuda:local_rank`` under torchrun).

    Raises:
        UserInputError: ``cuda`` was asked for but no CUDA device is available.
    """
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserInputError("train.device is 'cuda' but no CUDA device is available; "
                         "use --set train.device=cpu (or auto)")
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def init_distributed(device_choice: str) -> tuple[DistInfo, torch.device]:
    """Join the ``torchrun`` process group if there is one; pick this process's device.

    Args:
        device_choice: ``train.device`` (auto | cpu | cuda).

    Returns:
        ``(info, device)``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo(), resolve_device(device_choice)
    info = DistInfo(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    device = resolve_device(device_choice, info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                rank=info.rank, world_size=world_size)
    return info, device


def cleanup_distributed() -> None:
    """Leave the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast_object(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (``value`` itself without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_flag(flag: bool | torch.Tensor, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any rank (a sync point on every rank)."""
    tensor = torch.as_tensor(flag, device=device).to(torch.int32).reshape(1)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` over all ranks (``values`` itself without a process group).

    A collective: every rank must call it at the same point.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)  # gloo has no AVG
    return values / dist.get_world_size()


def sum_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """The sum of ``values`` over all ranks (``values`` itself without a process group).

    A collective: every rank must call it at the same point.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values
