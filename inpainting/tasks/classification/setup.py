"""The classification task's part of the run set-up (``TaskDefinition.prepare``): class-folder
data (or Fashion-MNIST's idx files), a torchvision ResNet / VGG (or ``small_vgg``) with the
configured padding, cross-entropy and the task object; the loaders, and the end-of-run summary.
The run folder, lock, logging, resume and the ``Trainer`` are the engine's (``engine.run``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from inpainting.engine.batches import ShardSampler, check_batch_fits, make_train_loader
from inpainting.engine.config_parsing import ConfigError
from inpainting.engine.distributed import DistInfo
from inpainting.engine.task import FitResult, ValidationOptions
from inpainting.tasks.classification.config import ClassificationConfig
from inpainting.tasks.classification.data import (
    FashionMNISTDataset,
    ImageFolderDataset,
    build_classification_datasets,
)
from inpainting.tasks.classification.models import (
    build_classifier,
    nvidia_arch_name,
    resolve_arch,
)
from inpainting.tasks.classification.task import (
    ClassificationResult,
    ClassificationTask,
    CrossEntropyTerms,
    checkpoint_file,
)

__all__ = ["PreparedClassification", "evaluate_classifier", "prepare", "steps_per_epoch",
           "summary"]

logger = logging.getLogger(__name__)


@dataclass
class PreparedClassification:
    """The datasets, model, loss and task of a classification run, built and checked."""

    config: ClassificationConfig
    train_set: ImageFolderDataset | FashionMNISTDataset
    val_set: ImageFolderDataset | FashionMNISTDataset
    model: nn.Module
    loss: nn.Module
    task: ClassificationTask

    @property
    def description(self) -> str:
        return (f"{len(self.train_set)} training and {len(self.val_set)} validation images in "
                f"{len(self.train_set.classes)} classes")

    def record(self, run_dir: Path) -> None:
        """Nothing to record: the class folders are in ``config.yaml``."""

    def loaders(self, run_dir: Path, dist: DistInfo, device: torch.device
                ) -> tuple[DataLoader, DataLoader]:
        """The resumable training loader of this rank's shard, and its disjoint validation
        shard."""
        data, pin = self.config.data, device.type == "cuda"
        train = make_train_loader(self.train_set, data.batch_size, data.num_workers,
                                  self.config.train.seed, dist.rank, dist.world_size,
                                  pin_memory=pin)
        val = DataLoader(self.val_set, batch_size=data.batch_size,
                         sampler=ShardSampler(len(self.val_set), dist.rank, dist.world_size),
                         num_workers=data.num_workers, pin_memory=pin)
        return train, val


def prepare(config: ClassificationConfig, dist: DistInfo, init_from: str | None
            ) -> PreparedClassification:
    """Read the class folders and build the classifier, before anything is written.

    Raises:
        UserInputError: a folder is missing or not split into class folders, the train and
            val class lists differ, ``classifier.num_classes`` disagrees with the folders, too
            few images for a batch, weights that do not fit, or a crop size too small for the
            network and its padding (one line each).
    """
    if init_from:
        raise ConfigError("a classification run starts from weights with "
                          "classifier.init_from, not --init-from")
    classifier = config.classifier
    train_set, val_set = build_classification_datasets(
        config.data.train, config.data.val, classifier.crop_size, classifier.resize_size,
        config.train.seed, classifier.dataset, classifier.train_images, classifier.val_images,
        classifier.shift)
    train_set.strict = val_set.strict = config.data.strict
    check_batch_fits(len(train_set), config.data.batch_size, dist.world_size)
    classes = len(train_set.classes)
    if classifier.num_classes not in (0, classes):
        raise ConfigError(f"classifier.num_classes is {classifier.num_classes} but data.train "
                          f"has {classes} class folders; set it to {classes} or 0")
    padding = classifier.padding or None
    _, padding = resolve_arch(classifier.arch, padding)
    torch.manual_seed(config.train.seed)
    model = build_classifier(classifier.arch, padding, classes, classifier.pretrained,
                             classifier.init_from or None, input_size=classifier.crop_size)
    task = ClassificationTask(nvidia_arch_name(classifier.arch, padding), padding)
    return PreparedClassification(config, train_set, val_set, model, CrossEntropyTerms(), task)


def summary(config: ClassificationConfig, run_dir: Path, result: FitResult,
            tensorboard: bool) -> list[str]:
    """The end-of-run lines of a classification run: the last summary line, where things are."""
    lines = [result.last_eval.summary()] if result.last_eval is not None else []
    best = f" (top-1 {result.best_score:.3f})" if result.best_score is not None else ""
    lines += [f"Run folder:   {run_dir}",
              f"Checkpoints:  {run_dir / checkpoint_file('last.pt')}, "
              f"{run_dir / checkpoint_file('best.pt')}{best}"]
    if tensorboard:
        lines.append(f"TensorBoard:  tensorboard --logdir {run_dir / 'tensorboard'}")
    return lines


def steps_per_epoch(train_root: str, batch_size: int, world_size: int) -> int:
    """Optimizer steps in one epoch of class folder ``train_root``: full batches of
    ``batch_size`` per process over each process's share (as ``make_train_loader`` makes them).

    Raises:
        UserInputError: the folder is missing or not split into class folders, or a process's
            share holds no full batch.
    """
    images = len(ImageFolderDataset(train_root, train=True, role="train"))
    check_batch_fits(images, batch_size, world_size)
    return images // world_size // batch_size


@torch.no_grad()
def evaluate_classifier(model: nn.Module, val_set: ImageFolderDataset, batch_size: int,
                        num_workers: int, dist: DistInfo, device: torch.device,
                        autocast_dtype: torch.dtype | None = None) -> ClassificationResult:
    """Prec@1 / Prec@5 of ``model`` on the whole of ``val_set``, each rank scoring a disjoint
    shard (the counts are summed over ranks)."""
    loader = DataLoader(val_set, batch_size=batch_size, num_workers=num_workers,
                        sampler=ShardSampler(len(val_set), dist.rank, dist.world_size),
                        pin_memory=device.type == "cuda")
    options = ValidationOptions(device, autocast_dtype, distributed=dist.enabled)
    result = ClassificationTask.validate(model.to(device), loader, options)
    assert result is not None  # no should_stop: the pass cannot be aborted
    return result
