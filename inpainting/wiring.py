"""Builders that turn a ``Config`` into the objects the ``Trainer`` receives.

Each builder does one thing and can be called on its own (tests, notebooks). Components are
named in the config and looked up in the plain dicts below; an unknown name lists the valid
ones. ``inpainting.session.setup_training`` calls them in order for ``train.py``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from inpainting.config import Config, ConfigError, DataConfig, OptimConfig
from inpainting.data import (
    FixedMaskSet,
    InpaintingDataset,
    list_images,
    prepare_demo_data,
    read_file_list,
    split_holdout,
)
from inpainting.engine.batches import make_train_loader
from inpainting.engine.distributed import DistInfo, barrier
from inpainting.losses import InpaintingLoss, hole_loss, total_variation_loss, valid_loss
from inpainting.models import MODELS
from inpainting.models import build_model as _build_registered_model
from masks import FolderMaskSource, MaskGenerator, parse_bins

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "VAL_MASK_SEED",
    "build_datasets",
    "build_loss",
    "build_mask_source",
    "build_model",
    "build_optimizer",
    "build_scheduler",
    "build_val_loader",
    "build_val_masks",
    "check_device_options",
    "check_precision",
    "lr_factor",
    "resolve_image_paths",
]

logger = logging.getLogger(__name__)

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}


def _constant(step: int, optim: OptimConfig, max_steps: int) -> float:
    return 1.0


def _cosine(step: int, optim: OptimConfig, max_steps: int) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(step, max_steps) / max_steps))


def _step_decay(step: int, optim: OptimConfig, max_steps: int) -> float:
    return optim.gamma ** sum(step >= milestone for milestone in optim.milestones)


# name -> factor(step, optim config, max_steps) multiplying the learning rate.
SCHEDULES: dict[str, Callable[[int, OptimConfig, int], float]] = {
    "constant": _constant,
    "cosine": _cosine,
    "step": _step_decay,
}

# Validation masks depend only on size, count, bins and border, never on train.seed, so that
# runs with different seeds are compared on the same masks.
VAL_MASK_SEED = 0


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


def build_model(config: Config) -> nn.Module:
    """The network named by ``model.name`` with the ``model`` section as its arguments.

    Raises:
        ConfigError: unknown ``model.name`` (the message lists the valid ones).
    """
    kwargs = dict(vars(config.model))
    name = kwargs.pop("name")
    if name not in MODELS:
        raise ConfigError(f"unknown model.name '{name}' (valid: {', '.join(sorted(MODELS))})")
    return _build_registered_model(name, **kwargs)


class PixelLoss(nn.Module):
    """Eq. 7 of Liu et al. (ECCV 2018) without its VGG terms: valid, hole and TV only.

    Used when the perceptual and style weights are all 0, so that no VGG-16 runs at all (it
    would cost most of a small model's step for nothing).
    """

    def __init__(self, weights: dict[str, float]) -> None:
        super().__init__()
        self.weights = {key: float(weights[key]) for key in ("valid", "hole", "tv")}

    def forward(self, output: Tensor, target: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """output, target (B, C, H, W); mask (B, 1, H, W), 1 = known -> dict of scalar terms."""
        output, target, mask = output.float(), target.float(), mask.float()
        comp = mask * target + (1 - mask) * output
        terms = {"valid": valid_loss(output, target, mask), "hole": hole_loss(output, target, mask),
                 "tv": total_variation_loss(comp, mask)}
        terms["total"] = sum(self.weights[key] * terms[key] for key in self.weights)
        return terms


_VGG_TERMS = ("perceptual", "style_out", "style_comp")


def build_loss(config: Config) -> nn.Module:
    """The paper's loss with ``loss.weights`` and ``loss.vgg_weights``.

    With all VGG term weights at 0 (perceptual, style_out, style_comp) it is ``PixelLoss``.
    """
    weights = vars(config.loss.weights)
    if all(weights[key] == 0 for key in _VGG_TERMS):
        return PixelLoss(weights)
    return InpaintingLoss(weights=weights, vgg_weights=config.loss.vgg_weights)


def build_optimizer(config: Config, model: nn.Module) -> torch.optim.Optimizer:
    """``optim.name`` over all of ``model``'s parameters.

    Parameters frozen later (encoder BatchNorm in the fine-tuning phase) stay in the groups but
    get no gradient, so the optimizer leaves them unchanged.
    """
    optim = config.optim
    if optim.name not in OPTIMIZERS:
        raise ConfigError(f"unknown optim.name '{optim.name}' (valid: {', '.join(OPTIMIZERS)})")
    return OPTIMIZERS[optim.name](model.parameters(), lr=optim.lr, betas=optim.betas,
                                  weight_decay=optim.weight_decay)


def lr_factor(step: int, config: Config) -> float:
    """Learning rate at 0-based step ``step`` divided by ``optim.lr``.

    The schedule's factor, times ``finetune_lr / lr`` from ``train.finetune_step`` on.
    """
    factor = SCHEDULES[config.optim.schedule](step, config.optim, config.train.max_steps)
    start = config.train.finetune_step
    if start and step >= start:
        factor *= config.train.finetune_lr / config.optim.lr
    return factor


def build_scheduler(config: Config, optimizer: torch.optim.Optimizer
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` following ``lr_factor`` (stepped once per optimizer step)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))


def _paths_of(spec: str, file_list_root: str) -> list[Path]:
    """A folder (recursive) or a ``.txt`` file list -> image paths."""
    path = Path(spec).expanduser()
    if path.is_file():
        root = Path(file_list_root).expanduser() if file_list_root else path.parent
        return read_file_list(path, root)
    return list_images(path)


def resolve_image_paths(data: DataConfig, seed: int, dist: DistInfo | None = None
                        ) -> tuple[list[Path], list[Path], list[Path]]:
    """Train, validation and test image paths from ``data.train`` / ``val`` / ``test``.

    ``demo`` builds (once per node) and uses the embedded demo data. An empty ``data.val``
    holds out ``data.val_fraction`` of ``data.train`` and ``data.test_fraction`` > 0 holds out
    test images too, with one permutation seeded by ``seed`` (``split_holdout``). The trainer
    never reads the test images; they are recorded for ``evaluate.py``.

    Raises:
        ConfigError: ``data.train`` is empty.
        UserInputError: a folder or list is missing or empty (from ``inpainting.data``).
    """
    dist = dist or DistInfo()
    spec = data.train.strip()
    if not spec:
        raise ConfigError("data.train is empty; set it to an image folder, a file list (.txt) "
                          "or 'demo'")
    if spec.lower() == "demo":
        root = Path(data.demo_root).expanduser()
        if dist.local_rank == 0:  # one builder per node: nodes need not share a file system
            prepare_demo_data(root, progress=True)
        barrier()
        train_dir, val_dir = prepare_demo_data(root)
        return list_images(train_dir), list_images(val_dir), []
    paths = _paths_of(spec, data.file_list_root)
    val_spec, test_spec = data.val.strip(), data.test.strip()
    val_fraction = 0.0 if val_spec else data.val_fraction
    if val_fraction or data.test_fraction:
        train, val, test = split_holdout(paths, seed, val_fraction, data.test_fraction)
    else:  # nothing held out: keep the list's order, no sort of (possibly millions of) paths
        train, val, test = paths, [], []
    if val_spec:
        val = _paths_of(val_spec, data.file_list_root)
    if test_spec:
        test = _paths_of(test_spec, data.file_list_root)
    return train, val, test


def build_mask_source(config: Config) -> Callable:
    """Training masks: ``MaskGenerator`` or ``FolderMaskSource`` (``masks.source``)."""
    masks, size = config.masks, config.data.image_size
    border = masks.border or None
    if masks.source == "folder":
        return FolderMaskSource(os.path.expanduser(masks.folder), size, size,
                                polarity=masks.polarity, augment=masks.augment)
    return MaskGenerator(size, size, hole_range=tuple(masks.hole_range), border=border)


def build_val_masks(config: Config, run_dir: Path | None = None) -> FixedMaskSet:
    """The fixed validation masks, read from ``run_dir/val_masks`` when a run already has them.

    A new set is generated (and saved there when ``run_dir`` is given); a resumed run reuses
    its saved masks, so its numbers stay comparable even if the generator changes.
    """
    folder = run_dir / "val_masks" if run_dir is not None else None
    if folder is not None and folder.is_dir():
        fixed = FixedMaskSet.load(folder)
        if fixed.size == config.data.image_size and len(fixed) == config.masks.val_count:
            return fixed
        logger.warning("val masks in %s do not match the config; making new ones", folder)
    fixed = FixedMaskSet(config.masks.val_count, config.data.image_size,
                         bins=parse_bins(config.masks.val_bins),
                         border=config.masks.border or None, seed=VAL_MASK_SEED)
    if folder is not None:
        fixed.save(folder)
    return fixed


def build_datasets(
    config: Config, train_paths: list[Path], val_paths: list[Path],
    val_masks: FixedMaskSet | None, mask_source: Callable | None = None,
) -> tuple[InpaintingDataset, InpaintingDataset | None]:
    """Training set (random crops, generated/folder masks) and validation set (fixed masks).

    The validation set has ``masks.val_count`` pairs: image ``i % len(val_paths)`` with fixed
    mask ``i``, so its size (and cost) does not grow with the validation folder.
    ``mask_source`` defaults to ``build_mask_source(config)``.
    """
    data = config.data
    train = InpaintingDataset(
        train_paths, data.image_size, train=True,
        mask_source=mask_source if mask_source is not None else build_mask_source(config),
        seed=config.train.seed, random_resized_crop=data.random_resized_crop, hflip=data.hflip,
        strict=data.strict)
    if val_masks is None:
        return train, None
    pairs = [val_paths[i % len(val_paths)] for i in range(len(val_masks))]
    val = InpaintingDataset(pairs, data.image_size, train=False, mask_source=val_masks,
                            seed=config.train.seed, eval_mode=data.eval_mode, strict=data.strict)
    return train, val


def build_train_loader(config: Config, dataset: InpaintingDataset, dist: DistInfo,
                       device: torch.device) -> DataLoader:
    """The resumable training loader (see ``engine.batches``)."""
    return make_train_loader(dataset, config.data.batch_size, config.data.num_workers,
                             config.train.seed, dist.rank, dist.world_size,
                             pin_memory=device.type == "cuda")


def build_val_loader(config: Config, dataset: InpaintingDataset, device: torch.device
                     ) -> DataLoader:
    """Validation batches in a fixed order."""
    return DataLoader(dataset, batch_size=config.data.batch_size, shuffle=False,
                      num_workers=config.data.num_workers, pin_memory=device.type == "cuda")
