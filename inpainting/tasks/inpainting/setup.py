"""The inpainting task's part of the run set-up: read and check the images and masks, build
the network and its loss (``TaskDefinition.prepare``), then the loaders once the run folder
exists, and the end-of-run summary.
"""

from __future__ import annotations

import functools
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from inpainting.data import InpaintingDataset, MaskSource, prepare_demo_data, write_file_list
from inpainting.engine.batches import check_batch_fits, make_train_loader
from inpainting.engine.distributed import DistInfo, barrier
from inpainting.engine.task import FitResult
from inpainting.metrics.baselines import get_baseline
from inpainting.tasks.inpainting.config import InpaintingConfig
from inpainting.tasks.inpainting.data import (
    build_datasets,
    build_mask_source,
    build_val_loader,
    build_val_masks,
    check_images_decode,
    resolve_image_paths,
)
from inpainting.tasks.inpainting.model import build_network, load_init_weights
from inpainting.tasks.inpainting.task import InpaintingTask
from masks import parse_bins
from masks.paired import PairedMaskSource

__all__ = ["PreparedInpainting", "build_train_loader", "prepare", "summary"]


@dataclass
class PreparedInpainting:
    """An inpainting run's inputs, checked: image lists, mask source, model, loss and task."""

    config: InpaintingConfig
    train_paths: list[Path]
    val_paths: list[Path]
    test_paths: list[Path]
    mask_source: MaskSource | PairedMaskSource
    model: nn.Module
    loss: nn.Module
    task: InpaintingTask

    @property
    def description(self) -> str:
        return (f"{len(self.train_paths)} training, {len(self.val_paths)} validation and "
                f"{len(self.test_paths)} test images")

    def record(self, run_dir: Path) -> None:
        """Write the validation and test image lists to ``run_dir/splits`` (for evaluate.py)."""
        write_file_list(self.val_paths, run_dir / "splits" / "val.txt")
        if self.test_paths:
            write_file_list(self.test_paths, run_dir / "splits" / "test.txt")

    def loaders(self, run_dir: Path, dist: DistInfo, device: torch.device
                ) -> tuple[DataLoader, DataLoader | None]:
        """The resumable training loader of this process's shard and, on rank 0, the loader
        of the fixed validation pairs (masks kept in ``run_dir/val_masks``)."""
        config = self.config
        val_masks = (build_val_masks(config.masks, config.data.image_size, run_dir)
                     if dist.is_main else None)
        train_set, val_set = build_datasets(config.data, config.masks, config.train.seed,
                                            self.train_paths, self.val_paths, val_masks,
                                            self.mask_source)
        val = (build_val_loader(config.data, val_set, pin_memory=device.type == "cuda")
               if val_set is not None else None)
        return build_train_loader(config, train_set, dist, device), val


def prepare(config: InpaintingConfig, dist: DistInfo, init_from: str | None
            ) -> PreparedInpainting:
    """Find the images, open the mask source, build the model and loss (VGG weights), read
    ``--init-from``: everything that can fail on user input, before anything is written.

    Raises:
        UserInputError: no or undecodable images, too few for a batch, a missing mask folder,
            VGG weights that cannot be had, an ``--init-from`` of another model (one line each).
    """
    train_paths, val_paths, test_paths = resolve_image_paths(
        config.data, config.train.seed, functools.partial(_demo_data_once_per_node, dist))
    check_batch_fits(len(train_paths), config.data.batch_size, dist.world_size)
    check_images_decode(train_paths, "data.train", strict=config.data.strict)
    # the validation images come from data.val, or are held out of data.train
    check_images_decode(val_paths[:config.masks.val_count],
                        "data.val" if config.data.val.strip() else "data.train",
                        strict=config.data.strict, split="validation")
    mask_source = build_mask_source(config.masks, config.data.image_size)
    if isinstance(mask_source, PairedMaskSource):  # every training image needs its own mask
        mask_source.check_images(train_paths)
    model, loss = build_network(config.model, config.loss)
    if init_from:
        load_init_weights(model, config.model, init_from)
    train = config.train
    for name in train.baselines():  # a missing package stops here, not at the first validation
        get_baseline(name)
    task = InpaintingTask(
        parse_bins(config.masks.val_bins), border=config.masks.border > 0,
        grid_size=config.log.grid_size, baselines=train.baselines(),
        finetune_step=train.finetune_step, finetune_lr_scale=train.finetune_lr / config.optim.lr,
        metrics=train.val_metrics)
    return PreparedInpainting(config, train_paths, val_paths, test_paths, mask_source, model,
                              loss, task)


def _demo_data_once_per_node(dist: DistInfo, root: Path) -> tuple[Path, Path]:
    """``prepare_demo_data`` by one process per node while the others wait at a barrier."""
    if dist.local_rank == 0:  # one builder per node: nodes need not share a file system
        prepare_demo_data(root, progress=True)
    barrier()
    return prepare_demo_data(root)


def build_train_loader(config: InpaintingConfig, dataset: InpaintingDataset, dist: DistInfo,
                       device: torch.device) -> DataLoader:
    """The resumable training loader of this process's shard (see ``engine.batches``)."""
    return make_train_loader(dataset, config.data.batch_size, config.data.num_workers,
                             config.train.seed, dist.rank, dist.world_size,
                             pin_memory=device.type == "cuda")


def summary(config: InpaintingConfig, run_dir: Path, result: FitResult,
            tensorboard: bool) -> list[str]:
    """The validation table, where the checkpoints, TensorBoard and samples are, and the
    command that evaluates the run on its test split."""
    lines: list[Any] = []
    if result.last_eval is not None:
        lines += [f"Validation at step {result.step} on {config.masks.val_count} fixed masks "
                  "(8-bit composite; 'masked input' has its holes black):",
                  result.last_eval.table()]
    best = f" (val PSNR {result.best_score:.2f} dB)" if result.best_score is not None else ""
    lines += [f"Run folder:   {run_dir}",
              f"Checkpoints:  {run_dir / 'last.pt'}, {run_dir / 'best.pt'}{best}"]
    if tensorboard:
        lines.append(f"TensorBoard:  tensorboard --logdir {run_dir / 'tensorboard'}")
    if result.sample_path is not None:
        lines.append(f"Sample grid:  {result.sample_path}")
    test_list = run_dir / "splits" / "test.txt"
    if test_list.is_file():  # a command that runs as printed: quoted, naming a file there is
        best = run_dir / "best.pt"
        checkpoint = best if best.is_file() else run_dir / "last.pt"
        lines.append(f"Evaluate:     python evaluate.py --checkpoint "
                     f"{shlex.quote(str(checkpoint))} --images {shlex.quote(str(test_list))}")
    return lines
