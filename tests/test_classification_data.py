"""The classification task's data: class folders (``.data``) and Fashion-MNIST."""

import gzip
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpainting.engine.errors import EnvironmentProblem, UserInputError
from inpainting.tasks.classification.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageFolderDataset,
    build_classification_datasets,
    normalize_image,
    resize_short_side,
    shift_toward_border,
)
from inpainting.tasks.classification.fashion_mnist import (
    CLASSES,
    DEFAULT_ROOT,
    load_fashion_mnist,
    read_idx,
)


def _write_image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 48)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), colour, dtype=np.uint8)).save(path)


def _image_folder(root: Path, classes: dict[str, int]) -> Path:
    """``classes``: name -> image count; class k's images are flat grey 40 + 60 * k."""
    for k, (name, count) in enumerate(sorted(classes.items())):
        for i in range(count):
            _write_image(root / name / f"{i}.png", (40 + 60 * k,) * 3)
    return root


def _grey_level(image: torch.Tensor) -> float:
    """The 8-bit grey level of a flat normalised (3, S, S) image."""
    return float(image[0].mean() * IMAGENET_STD[0] + IMAGENET_MEAN[0]) * 255


# ------------------------------------------------------------------------------------------------
# class folders
def test_train_and_val_datasets_follow_nvidia_pipeline_and_imagefolder_order(tmp_path):
    _image_folder(tmp_path / "train", {"dog": 3, "cat": 2, "ant": 1})
    _image_folder(tmp_path / "val", {"dog": 1, "cat": 1, "ant": 1})
    (tmp_path / "train" / ".ipynb_checkpoints").mkdir()  # hidden: no class
    train, val = build_classification_datasets(tmp_path / "train", tmp_path / "val",
                                               crop_size=16, resize_size=20, seed=3)
    assert train.classes == val.classes == ["ant", "cat", "dog"]
    assert len(train) == 6 and train.labels == [0, 1, 1, 2, 2, 2]
    for dataset in (train, val):
        for index in range(len(dataset)):
            sample = dataset[index]
            assert sample["image"].shape == (3, 16, 16) and sample["image"].dtype == torch.float32
            assert abs(_grey_level(sample["image"]) - (40 + 60 * sample["label"])) < 1
            assert sample["bad_files"] == 0

    again = train[4]["image"]
    assert torch.equal(again, train[4]["image"])  # seeded per (seed, epoch, index)
    train.set_epoch(1)
    assert train[4]["label"] == 2


def test_training_crops_and_flips_vary_and_validation_is_one_centre_crop(tmp_path):
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    image[:, :30] = 200  # left half bright
    for split in ("train", "val"):
        for name in ("a", "b"):  # a classifier needs two classes; "a" holds image 0
            (tmp_path / split / name).mkdir(parents=True)
            Image.fromarray(image).save(tmp_path / split / name / "x.png")
    train, val = build_classification_datasets(tmp_path / "train", tmp_path / "val",
                                               crop_size=16, resize_size=20)
    crops = set()
    for epoch in range(8):
        train.set_epoch(epoch)
        crops.add(train[0]["image"].numpy().tobytes())
    assert len(crops) > 1
    # val: short side 40 -> 20 (long side 60 -> 30), then rows 2..17 and columns 7..22
    expected = resize_short_side(image, 20)[2:18, 7:23]
    assert torch.allclose(val[0]["image"], normalize_image(expected))


def test_undecodable_images_are_skipped_and_counted(tmp_path, caplog):
    _image_folder(tmp_path, {"a": 2, "b": 1})
    (tmp_path / "a" / "1.png").write_bytes(b"not a png")
    dataset = ImageFolderDataset(tmp_path, train=False, crop_size=16, resize_size=16)
    with caplog.at_level(logging.WARNING):
        sample = dataset[1]
    assert sample["bad_files"] == 1 and sample["path"].endswith("b/0.png")
    assert sample["label"] == 1  # the label of the file actually used
    assert any("undecodable" in r.getMessage() for r in caplog.records)


def test_bad_folders_are_one_line_user_errors(tmp_path):
    _image_folder(tmp_path / "train", {"cat": 1, "dog": 1, "eel": 1})
    _image_folder(tmp_path / "val", {"cat": 1, "dog": 1, "fox": 1})
    with pytest.raises(UserInputError, match=r"^train and val class folders differ \(only in "
                                             r"train: eel; only in val: fox\)$"):
        build_classification_datasets(tmp_path / "train", tmp_path / "val")

    flat = tmp_path / "flat_val"
    for i in range(3):
        _write_image(flat / f"ILSVRC2012_val_{i:08d}.JPEG", (0, 0, 0))
    with pytest.raises(UserInputError, match="val folder .* holds 3 images but no class folders"):
        build_classification_datasets(tmp_path / "train", flat)
    with pytest.raises(UserInputError, match="train folder .*missing' does not exist"):
        build_classification_datasets(tmp_path / "missing", tmp_path / "val")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="has no class folders"):
        ImageFolderDataset(tmp_path / "empty", train=True)
    (tmp_path / "train" / "gnu").mkdir()
    with pytest.raises(UserInputError, match="no images found under .*gnu"):
        ImageFolderDataset(tmp_path / "train", train=True)


# ------------------------------------------------------------------------------------------------
# shift toward the border
def test_shift_toward_border_moves_content_to_each_corner_in_turn():
    images = np.zeros((5, 6, 6), dtype=np.uint8)
    images[:, 2:4, 2:4] = 255  # a centred 2x2 square
    shifted = shift_toward_border(images, 2)
    corners = [(slice(0, 2), slice(0, 2)), (slice(0, 2), slice(4, 6)),
               (slice(4, 6), slice(0, 2)), (slice(4, 6), slice(4, 6))]
    for index, (rows, cols) in enumerate(corners + corners[:1]):
        assert shifted[index][rows, cols].min() == 255 and shifted[index].sum() == 4 * 255
    assert np.array_equal(shift_toward_border(images, 2), shifted)  # deterministic
    assert np.array_equal(shift_toward_border(images, 0), images)


def test_shift_toward_border_cuts_content_and_fills_for_tensors():
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    shifted = shift_toward_border(images, 1, fill=-1.0)
    assert shifted.shape == images.shape and shifted.dtype == images.dtype
    # image 0 moves up-left: pixel (r, c) comes from (r + 1, c + 1); last row/col are fill
    assert torch.equal(shifted[0, :, :3, :3], images[0, :, 1:, 1:])
    assert (shifted[0, :, 3, :] == -1).all() and (shifted[0, :, :, 3] == -1).all()
    # image 1 moves up-right: (r, c) comes from (r + 1, c - 1)
    assert torch.equal(shifted[1, :, :3, 1:], images[1, :, 1:, :3])
    with pytest.raises(ValueError, match="shift must be in"):
        shift_toward_border(images, 4)
    with pytest.raises(ValueError, match="images must be"):
        shift_toward_border(images[0, 0], 1)


# ------------------------------------------------------------------------------------------------
# Fashion-MNIST
def _idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def test_read_idx_plain_gzipped_and_big_endian(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    labels = np.array([9, 0, 4], dtype=np.uint8)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(images)))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(labels))
    read_images, read_labels = load_fashion_mnist("train", tmp_path)
    assert read_images.dtype == np.uint8 and np.array_equal(read_images, images)
    assert np.array_equal(read_labels, labels)

    shorts = np.array([[1, -2], [300, 4]], dtype=np.int16)
    (tmp_path / "shorts.idx").write_bytes(_idx_bytes(shorts, 0x0B))
    assert np.array_equal(read_idx(tmp_path / "shorts.idx"), shorts)


def test_read_idx_refuses_bad_files(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx_bytes(np.zeros((2, 28, 28), "u1"))[:-5])
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"PK\x03\x04 a zip")
    with pytest.raises(UserInputError, match="truncated or corrupt"):
        read_idx(tmp_path / "t10k-images-idx3-ubyte")
    with pytest.raises(UserInputError, match="not an idx file"):
        read_idx(tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(EnvironmentProblem, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("train", tmp_path)
    with pytest.raises(UserInputError, match="unknown Fashion-MNIST split 'val'"):
        load_fashion_mnist("val", tmp_path)


@pytest.mark.skipif(not (DEFAULT_ROOT / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason=f"Debian's dataset-fashion-mnist is not installed ({DEFAULT_ROOT} "
                           "missing; apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist_test_split():
    images, labels = load_fashion_mnist("test")
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and len(CLASSES) == 10
    assert np.array_equal(np.bincount(labels), np.full(10, 1000))  # balanced classes
    assert images[:, 0, 0].max() < 32 and images.max() == 255  # dark background, bright items


def write_fashion_mnist(root: Path, train: int = 8, test: int = 8) -> Path:
    """Fake Fashion-MNIST idx files: image ``i`` of a split is black with a 6x6 square of grey
    level ``10 + i`` at rows 11-16, columns 9-14 (left of the centre), labelled ``i % 10``."""
    root.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", train), ("t10k", test)):
        images = np.zeros((count, 28, 28), np.uint8)
        for index in range(count):
            images[index, 11:17, 9:15] = 10 + index
        labels = (np.arange(count) % 10).astype(np.uint8)
        (root / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(images)))
        (root / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(labels)))
    return root


def _grey(image: torch.Tensor) -> np.ndarray:
    """``(3, S, S)`` normalised -> ``(S, S)`` 8-bit grey levels, checking the 3 channels agree."""
    levels = [(image[c] * IMAGENET_STD[c] + IMAGENET_MEAN[c]).numpy() * 255 for c in range(3)]
    assert np.allclose(levels[0], levels[1], atol=1e-3) and np.allclose(levels[0], levels[2],
                                                                         atol=1e-3)
    return np.rint(levels[0])


def test_fashion_mnist_dataset_samples_subsets_and_shifted_copies(tmp_path):
    root = write_fashion_mnist(tmp_path / "fmnist", train=12, test=6)
    train, val = build_classification_datasets(root, root, crop_size=28, seed=3,
                                               dataset="fashion_mnist", train_images=10,
                                               val_images=5, shift=4)
    assert (len(train), len(val), len(train.classes)) == (10, 5, 10)
    sample = val[2]
    assert set(sample) == {"image", "label", "index", "image_shifted"}
    assert sample["image"].shape == sample["image_shifted"].shape == (3, 28, 28)
    original = np.zeros((28, 28))
    original[11:17, 9:15] = 12
    assert sample["label"] == 2 and np.array_equal(_grey(sample["image"]), original)
    # image 2 moves toward corner 2 (bottom-left): 4 px down, 4 px left
    expected = np.zeros((28, 28))
    expected[15:21, 5:11] = 12
    assert np.array_equal(_grey(sample["image_shifted"]), expected)
    assert "image_shifted" not in train[0]


def test_fashion_mnist_training_flips_are_seeded_per_sample_and_epoch(tmp_path):
    train = build_classification_datasets(write_fashion_mnist(tmp_path), tmp_path, 28, seed=3,
                                          dataset="fashion_mnist")[0]
    left = set()
    for epoch in range(8):
        train.set_epoch(epoch)
        first = _grey(train[1]["image"])
        assert np.array_equal(first, _grey(train[1]["image"]))  # the same sample again
        columns = np.nonzero(first.any(axis=0))[0]
        assert list(columns) in ([9, 10, 11, 12, 13, 14], [13, 14, 15, 16, 17, 18])  # flipped
        left.add(int(columns[0]))
    assert left == {9, 13}  # both, over 8 epochs


def test_fashion_mnist_dataset_resizes_and_refuses_bad_requests(tmp_path):
    root = write_fashion_mnist(tmp_path, train=4, test=4)
    val = build_classification_datasets(root, root, crop_size=32, dataset="fashion_mnist")[1]
    assert val[0]["image"].shape == (3, 32, 32)
    with pytest.raises(UserInputError, match="first 5 Fashion-MNIST train images, but"):
        build_classification_datasets(root, root, dataset="fashion_mnist", train_images=5)
    with pytest.raises(UserInputError, match=r"classifier.shift must be in \[0, 28\)"):
        build_classification_datasets(root, root, dataset="fashion_mnist", shift=28)
    with pytest.raises(UserInputError, match="unknown classification dataset 'mnist'"):
        build_classification_datasets(root, root, dataset="mnist")
    with pytest.raises(UserInputError, match="fashion_mnist only"):
        build_classification_datasets(root, root, shift=2)
