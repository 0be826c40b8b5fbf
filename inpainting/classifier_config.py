"""The ``classifier`` section of the training configuration (``task: classification``, the
padding report's ImageNet experiment); the rest of the config is in ``inpainting.config``."""

from __future__ import annotations

from dataclasses import dataclass

from inpainting.config_parsing import ConfigError, check, check_choice
from inpainting.data.classification import CLASSIFICATION_DATASETS
from inpainting.models import CLASSIFIER_NAMES, PADDINGS

__all__ = ["ClassifierConfig"]


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
        check(self.crop_size >= 8, "classifier.crop_size", ">= 8", self.crop_size)
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
