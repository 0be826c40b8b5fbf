"""Classification data: ImageNet-style class folders with the pipeline of NVIDIA's script, or
Fashion-MNIST's idx files (the offline padding demo).

The folder layout is torchvision's ``ImageFolder``: one sub-folder per class, its name the
class name, class indices in sorted name order (so the indices agree with ImageFolder's and a
checkpoint trained by NVIDIA's script predicts the same class numbers here). Images are found
recursively in each class folder; hidden folders (``.ipynb_checkpoints``) are no classes.

The pipeline is NVIDIA's (that of pytorch/examples ``imagenet/main.py``): training takes a
random resized crop (area 8-100 %, aspect 3/4-4/3) resized to 224 and a horizontal flip with
probability 0.5; validation resizes the short side to 256 and takes the centred 224 crop, one
crop per image; both normalise with the ImageNet mean and std. Sizes are arguments so tests
can run at 32 px. Randomness comes from ``sample_rngs(seed, epoch, index)``, as for
inpainting, so a sample is the same whatever the number of workers.

Undecodable files are skipped as in inpainting training (:func:`load_decodable`): the sample
falls back to the next decodable file (and its label) and counts the skip in
``sample["bad_files"]``.

:class:`FashionMNISTDataset` serves Fashion-MNIST (read by ``.fashion_mnist``) through the same
sample keys, and :func:`shift_toward_border` is the padding demo's evaluation
transform: it moves image content toward a corner, where the padding scheme decides what the
convs see. :data:`CLASSIFICATION_DATASETS` names the two sources
(:func:`build_classification_datasets` builds either).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
import torch

from inpainting.data.dataset import load_decodable, sample_rngs
from inpainting.data.io import IMAGE_EXTENSIONS, list_images
from inpainting.data.transforms import TrainTransform, center_crop, horizontal_flip
from inpainting.engine.errors import UserInputError
from inpainting.tasks.classification.fashion_mnist import CLASSES as FASHION_MNIST_CLASSES
from inpainting.tasks.classification.fashion_mnist import load_fashion_mnist

__all__ = [
    "CLASSIFICATION_DATASETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FashionMNISTDataset",
    "ImageFolderDataset",
    "build_classification_datasets",
    "check_same_classes",
    "find_classes",
    "normalize_image",
    "resize_short_side",
    "shift_toward_border",
]

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_RRC_SCALE = (0.08, 1.0)  # torchvision's RandomResizedCrop default, which NVIDIA's script uses
_MAX_LISTED = 5  # class names an error message lists
# What data.train / data.val of a classification run are: class folders, or the folder of
# Fashion-MNIST's idx files (train-* for data.train, t10k-* for data.val).
CLASSIFICATION_DATASETS = ("folders", "fashion_mnist")

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)


def find_classes(root: str | os.PathLike, role: str = "image") -> list[str]:
    """The class folder names under ``root``, sorted (ImageFolder's order).

    Args:
        root: a folder with one sub-folder per class.
        role: how messages name the folder (``"train"``, ``"val"``).

    Returns:
        Sorted names of the non-hidden sub-folders.

    Raises:
        UserInputError: ``root`` is missing or not a folder, or has fewer than 2 class
            folders (the message says so when it holds images directly: a val folder not yet
            split into class folders).
    """
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise UserInputError(f"{role} folder '{root}' {what}")
    entries = list(os.scandir(root))
    classes = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    loose = [e.name for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)]
    if not classes:
        if loose:
            raise UserInputError(
                f"{role} folder '{root}' holds {len(loose)} images but no class folders; put "
                "each class's images in a sub-folder named after the class (for ImageNet's val "
                "set, move them into the synset folders of its ground truth)")
        raise UserInputError(f"{role} folder '{root}' has no class folders (one sub-folder "
                             "of images per class)")
    if len(classes) == 1:  # cross-entropy over one class is 0: nothing would be learnt
        raise UserInputError(f"{role} folder '{root}' has one class folder ('{classes[0]}'); "
                             "a classifier needs at least 2 classes (one sub-folder each)")
    if loose:
        logger.warning("%s folder '%s': %d images outside the class folders are ignored",
                       role, root, len(loose))
    return classes


def _listed(names: Sequence[str]) -> str:
    more = len(names) - _MAX_LISTED
    return ", ".join(names[:_MAX_LISTED]) + (f" and {more} more" if more > 0 else "")


def check_same_classes(train_classes: Sequence[str], val_classes: Sequence[str]) -> None:
    """Refuse train and val class lists that differ (the label numbers would not agree).

    Raises:
        UserInputError: naming the classes found only in one of the two.
    """
    only_train = sorted(set(train_classes) - set(val_classes))
    only_val = sorted(set(val_classes) - set(train_classes))
    if only_train or only_val:
        parts = [f"only in train: {_listed(only_train)}" if only_train else "",
                 f"only in val: {_listed(only_val)}" if only_val else ""]
        raise UserInputError("train and val class folders differ ("
                             + "; ".join(p for p in parts if p) + ")")


def resize_short_side(image: np.ndarray, size: int) -> np.ndarray:
    """Resize so the short side is ``size``, keeping the aspect ratio (torchvision's
    ``Resize(size)``: the long side is truncated to an integer).

    Args:
        image: ``(H, W, C)`` uint8 array.
        size: short side in pixels.

    Returns:
        The resized array (area-averaged when shrinking, bicubic when enlarging).
    """
    height, width = image.shape[:2]
    if min(height, width) == size:
        return image
    if height <= width:
        new_height, new_width = size, int(size * width / height)
    else:
        new_height, new_width = int(size * height / width), size
    shrinking = new_height * new_width < height * width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(image, (new_width, new_height), interpolation=interpolation)


def normalize_image(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB -> ``(3, H, W)`` float32, ImageNet-normalised."""
    # (H, W, 3) uint8 -> (3, H, W) float in [0, 1]
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return tensor.sub_(mean).div_(std)


class ImageFolderDataset(torch.utils.data.Dataset):
    """Labelled images from class folders with NVIDIA's train or validation pipeline.

    Args:
        root: one sub-folder of images per class (see :func:`find_classes`).
        train: random resized crop + flip if true, else resize + centre crop.
        crop_size: output side ``S`` (224 in the report).
        resize_size: validation only: the short side before the centre crop (256).
        seed: base seed (>= 0) of the per-sample randomness.
        strict: raise on an undecodable file instead of skipping it.
        role: how messages name the folder.

    Samples are dicts:
        ``image``: FloatTensor ``(3, S, S)``, RGB normalised with ``IMAGENET_MEAN/STD``.
        ``label``: int, the class index in ``classes``.
        ``index``: int; ``path``: str, the file used; ``bad_files``: int, files skipped.

    Raises:
        UserInputError: see :func:`find_classes`; a class folder without images.
    """

    def __init__(self, root: str | os.PathLike, train: bool, crop_size: int = 224,
                 resize_size: int = 256, seed: int = 0, strict: bool = False,
                 role: str = "image") -> None:
        if crop_size < 1 or resize_size < crop_size:
            raise ValueError(f"need 1 <= crop_size <= resize_size, got {crop_size}, {resize_size}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.root = Path(root)
        self.classes = find_classes(self.root, role)
        self.paths: list[Path] = []
        self.labels: list[int] = []
        for label, name in enumerate(self.classes):
            files = list_images(self.root / name)
            self.paths += files
            self.labels += [label] * len(files)
        self.train, self.crop_size, self.resize_size = train, crop_size, resize_size
        self.seed, self.strict, self.epoch = seed, strict, 0
        self._augment = TrainTransform(crop_size, random_resized_crop=True,
                                       rrc_scale=_RRC_SCALE, hflip=True)

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose randomness training samples use (no effect on val)."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        image, used, skipped = load_decodable(self.paths, index, self.strict)
        if self.train:
            image_rng, _ = sample_rngs(self.seed, self.epoch, index)
            image = self._augment(image, image_rng)
        else:
            image = center_crop(resize_short_side(image, self.resize_size), self.crop_size)
        return {"image": normalize_image(image), "label": self.labels[used], "index": index,
                "path": str(self.paths[used]), "bad_files": skipped}


class FashionMNISTDataset(torch.utils.data.Dataset):
    """Fashion-MNIST from its idx files, as samples of the classification pipeline.

    The 28x28 grey images are resized to ``image_size`` (bilinear; 28 keeps them), copied to
    three channels and normalised with the ImageNet mean/std, as class-folder images are, so
    any classifier of ``inpainting.models`` takes them. Training flips each image left-right
    with probability 0.5 (``sample_rngs(seed, epoch, index)``); nothing moves the content,
    so the shifted copies below are positions training never showed.

    Args:
        root: the folder of the idx files (Debian: ``/usr/share/datasets/fashion-mnist``).
        train: the training split (60,000 images) with flips, else the test split (10,000).
        image_size: output side ``S``.
        limit: keep only the first ``limit`` images (the files are in random class order);
            0 keeps all.
        seed: base seed (>= 0) of the flips.
        shift: > 0 adds ``image_shifted``: the image moved ``shift`` pixels (of the 28 px
            original) toward corner ``index % 4`` by :func:`shift_toward_border`.

    Samples are dicts: ``image`` (and ``image_shifted``): FloatTensor ``(3, S, S)``,
    normalised; ``label``: int, an index into ``classes``; ``index``: int.

    Raises:
        UserInputError: unreadable files, ``limit`` above the split's size, a bad ``shift``.
        EnvironmentProblem: a file is missing (with how to install Debian's package).
    """

    def __init__(self, root: str | os.PathLike, train: bool, image_size: int = 28,
                 limit: int = 0, seed: int = 0, shift: int = 0) -> None:
        split = "train" if train else "test"
        images, labels = load_fashion_mnist(split, root)
        if limit > len(images):
            raise UserInputError(f"asked for the first {limit} Fashion-MNIST {split} images, "
                                 f"but '{root}' holds {len(images)}")
        if not 0 <= shift < images.shape[-1]:
            raise UserInputError(f"classifier.shift must be in [0, {images.shape[-1]}) pixels, "
                                 f"got {shift}")
        if limit:
            images, labels = images[:limit], labels[:limit]
        self.images, self.labels = images, labels.astype(np.int64)
        self.shifted = shift_toward_border(images, shift) if shift else None
        self.classes = list(FASHION_MNIST_CLASSES)
        self.train, self.image_size, self.seed = train, image_size, seed
        self.strict, self.epoch = False, 0  # strict: no file can fail to decode here

    def __len__(self) -> int:
        return len(self.labels)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose flips training samples use (no effect on the test split)."""
        self.epoch = int(epoch)

    def _input(self, grey: np.ndarray, flip: bool) -> torch.Tensor:
        """``(28, 28)`` uint8 -> ``(3, S, S)`` normalised."""
        if flip:
            grey = horizontal_flip(grey)
        if grey.shape[0] != self.image_size:
            grey = cv2.resize(grey, (self.image_size, self.image_size),
                              interpolation=cv2.INTER_LINEAR)
        return normalize_image(np.repeat(grey[:, :, None], 3, axis=2))

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        flip = self.train and sample_rngs(self.seed, self.epoch, index)[0].random() < 0.5
        sample = {"image": self._input(self.images[index], flip),
                  "label": int(self.labels[index]), "index": index}
        if self.shifted is not None:
            sample["image_shifted"] = self._input(self.shifted[index], flip)
        return sample


def build_classification_datasets(
    train_root: str | os.PathLike, val_root: str | os.PathLike, crop_size: int = 224,
    resize_size: int = 256, seed: int = 0, dataset: str = "folders", train_images: int = 0,
    val_images: int = 0, shift: int = 0,
) -> tuple[ImageFolderDataset | FashionMNISTDataset, ImageFolderDataset | FashionMNISTDataset]:
    """The train and val datasets of a run, with class lists that must agree.

    Args:
        dataset: one of :data:`CLASSIFICATION_DATASETS`. ``fashion_mnist`` reads the train
            split from ``train_root`` and the test split from ``val_root`` at ``crop_size``
            (``resize_size`` unused), keeping the first ``train_images`` / ``val_images``
            (0: all) and shifting val images by ``shift`` (see :class:`FashionMNISTDataset`).

    Returns:
        ``(train, val)``; ``len(train.classes)`` is the classifier's number of outputs.

    Raises:
        UserInputError: a folder is missing or not split into class folders, a class folder
            holds no image, or the two class lists differ (naming the difference); unknown
            ``dataset``; subsets or a shift asked of class folders.
    """
    if dataset not in CLASSIFICATION_DATASETS:
        raise UserInputError(f"unknown classification dataset {dataset!r} "
                             f"(valid: {', '.join(CLASSIFICATION_DATASETS)})")
    if dataset == "fashion_mnist":
        return (FashionMNISTDataset(train_root, True, crop_size, train_images, seed),
                FashionMNISTDataset(val_root, False, crop_size, val_images, seed, shift))
    if train_images or val_images or shift:
        raise UserInputError("classifier.train_images, val_images and shift apply to "
                             "classifier.dataset fashion_mnist only")
    train = ImageFolderDataset(train_root, True, crop_size, resize_size, seed, role="train")
    val = ImageFolderDataset(val_root, False, crop_size, resize_size, seed, role="val")
    check_same_classes(train.classes, val.classes)
    return train, val


_CORNERS = ((-1, -1), (-1, 1), (1, -1), (1, 1))  # (rows, cols) directions: TL, TR, BL, BR


def shift_toward_border(images: ArrayOrTensor, shift: int, fill: float = 0) -> ArrayOrTensor:
    """Translate each image toward a corner, so its content sits at the border.

    Image ``i`` moves ``shift`` pixels up or down and ``shift`` pixels left or right, toward
    corner ``i % 4`` (top-left, top-right, bottom-left, bottom-right): the four borders are
    used equally and the result depends only on the images. Content moved past the border is
    cut off; the uncovered strip takes ``fill`` (the background: 0 for Fashion-MNIST).

    Args:
        images: ``(N, H, W)`` or ``(N, C, H, W)`` array or tensor, any dtype, before
            normalisation.
        shift: pixels to move along each axis, ``0 <= shift < min(H, W)``.
        fill: value of the uncovered pixels.

    Returns:
        A new array/tensor of the same type, shape and dtype.

    Raises:
        ValueError: bad shape or shift.
    """
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be (N, H, W) or (N, C, H, W), got {tuple(images.shape)}")
    height, width = images.shape[-2:]
    if not 0 <= shift < min(height, width):
        raise ValueError(f"shift must be in [0, {min(height, width)}), got {shift}")
    if isinstance(images, torch.Tensor):
        shifted = torch.full_like(images, fill)
    else:
        shifted = np.full_like(images, fill)
    for index in range(images.shape[0]):
        down, right = (shift * d for d in _CORNERS[index % 4])
        rows_to, rows_from = _span(height, down), _span(height, -down)
        cols_to, cols_from = _span(width, right), _span(width, -right)
        shifted[index, ..., rows_to, cols_to] = images[index, ..., rows_from, cols_from]
    return shifted


def _span(length: int, offset: int) -> slice:
    """The index range ``[max(0, offset), length + min(0, offset))`` of a move by ``offset``."""
    return slice(max(0, offset), length + min(0, offset))
