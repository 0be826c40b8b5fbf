"""The configuration of a classification run (the padding report's ImageNet experiment): the
engine's base sections (``task``, ``optim``, ``train``, ``log``), ``data`` (class folders, batch,
loader processes) and ``classifier`` (network, padding, data pipeline).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inpainting.engine.config import Config
from inpainting.engine.config_parsing import ConfigError, check, check_choice
from inpainting.tasks.classification.data import CLASSIFICATION_DATASETS
from inpainting.tasks.classification.models import CLASSIFIER_NAMES, PADDINGS

__all__ = ["ClassificationConfig", "ClassificationDataConfig", "ClassifierConfig",
           "RETIRED_KEYS"]

# Keys that runs before the task packages saved in every run's config, unused by this task.
RETIRED_KEYS = (
    "data.test", "data.file_list_root", "data.val_fraction", "data.test_fraction",
    "data.image_size", "data.eval_mode", "data.train_resize", "data.rrc_scale",
    "data.random_resized_crop", "data.hflip", "data.decode_cache_mb", "data.demo_root",
    "train.finetune_step", "train.finetune_lr", "train.val_baseline",
)


@dataclass(frozen=True)
class ClassificationDataConfig:
    """``data``: the class folders (or Fashion-MNIST's idx files' folder) and how they load."""

    train: str = ""  # one sub-folder of images per class
    val: str = ""  # the same class sub-folders
    batch_size: int = 6  # per process (per GPU under torchrun)
    num_workers: int = 4
    strict: bool = False  # an undecodable image stops the run instead of being skipped

    def __post_init__(self) -> None:
        check(1 <= self.batch_size <= 65_536, "data.batch_size", "in [1, 65536]",
              self.batch_size)
        check(0 <= self.num_workers <= 256, "data.num_workers", "in [0, 256]", self.num_workers)


@dataclass(frozen=True)
class ClassifierConfig:
    """``classifier``: the network of ``task: classification`` (the padding report's ImageNet
    experiment) and its data pipeline; ``data.train`` / ``data.val`` are class folders."""

    arch: str = "resnet50"  # a torchvision ResNet / VGG name or its pd* alias (partial padding)
    padding: str = ""  # zero | partial | reflect | replicate; empty: the arch's own (pd*: partial)
    num_classes: int = 0  # outputs of the head; 0: one per class folder of data.train
    pretrained: bool = False  # start from torchvision's ImageNet weights
    init_from: str = ""  # a checkpoint (NVIDIA's format, ours, a state dict) to start from
    crop_size: int = 224  # training RandomResizedCrop and validation CenterCrop side
    resize_size: int = 256  # validation: short side before the centre crop
    dataset: str = "folders"  # folders | fashion_mnist (data.train/val: the idx files' folder)
    # fashion_mnist only: the first N train / test images (0: all), and val images also scored
    # moved this many px toward a corner (top1_shifted in metrics.jsonl; 0: off)
    train_images: int = 0
    val_images: int = 0
    shift: int = 0

    def __post_init__(self) -> None:
        check_choice("classifier.arch", self.arch, CLASSIFIER_NAMES)
        if not self.padding:  # the saved config names the scheme (the padding table reads it)
            object.__setattr__(self, "padding", "partial" if self.arch.startswith("pd")
                               else "zero")
        check_choice("classifier.padding", self.padding, PADDINGS)
        if self.arch.startswith("pd") and self.padding != "partial":
            raise ConfigError(f"classifier.arch {self.arch!r} is partial padding; use arch "
                              f"{self.arch[2:]!r} for padding {self.padding!r}")
        check(self.num_classes >= 0, "classifier.num_classes", ">= 0 (0: from the class "
              "folders)", self.num_classes)
        check(8 <= self.crop_size <= 4096, "classifier.crop_size", "in [8, 4096]", self.crop_size)
        check(self.resize_size <= 4096, "classifier.resize_size", "<= 4096", self.resize_size)
        check(self.resize_size >= self.crop_size, "classifier.resize_size",
              f">= classifier.crop_size {self.crop_size}", self.resize_size)
        if self.pretrained and self.init_from:
            raise ConfigError("set classifier.pretrained or classifier.init_from, not both")
        check_choice("classifier.dataset", self.dataset, CLASSIFICATION_DATASETS)
        for key in ("train_images", "val_images", "shift"):
            check(getattr(self, key) >= 0, f"classifier.{key}", ">= 0 (0: off)",
                  getattr(self, key))
            if getattr(self, key) and self.dataset != "fashion_mnist":
                raise ConfigError(f"classifier.{key} needs classifier.dataset: fashion_mnist")


@dataclass(frozen=True)
class ClassificationConfig(Config):
    """The whole configuration of a classification run."""

    task: str = "classification"
    data: ClassificationDataConfig = field(default_factory=ClassificationDataConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)

    def __post_init__(self) -> None:
        if not (self.data.train.strip() and self.data.val.strip()):
            raise ConfigError("task classification needs data.train and data.val, each a "
                              "folder with one sub-folder of images per class")
