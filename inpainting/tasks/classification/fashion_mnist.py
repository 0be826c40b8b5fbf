"""Fashion-MNIST from local idx files, read with numpy (no download code).

Xiao et al., "Fashion-MNIST: a novel image dataset for benchmarking machine learning
algorithms" (2017): 60,000 training and 10,000 test images of 28x28 grey levels in 10 classes.
Debian's package ``dataset-fashion-mnist`` installs the four files, gzipped, under
``/usr/share/datasets/fashion-mnist`` (:data:`DEFAULT_ROOT`); the padding demo trains on it
offline. Plain (gunzipped) files are read too.

The idx format (LeCun's MNIST page): two zero bytes, a type code (``0x08`` unsigned byte, ...),
the number of dimensions, each dimension as a big-endian int32, then the values, big-endian.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from inpainting.engine.errors import EnvironmentProblem, UserInputError

__all__ = ["CLASSES", "DEFAULT_ROOT", "SPLITS", "load_fashion_mnist", "read_idx"]

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")
# split -> file name prefix
SPLITS = {"train": "train", "test": "t10k"}

_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one idx file (gzipped or not) into an array of its shape and type.

    Args:
        path: e.g. ``train-images-idx3-ubyte.gz``.

    Returns:
        The array, in native byte order (``uint8`` for Fashion-MNIST's images and labels).

    Raises:
        FileNotFoundError: the file does not exist.
        UserInputError: not an idx file, or its size does not match its header.
    """
    data = Path(path).read_bytes()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise UserInputError(f"'{path}' is a broken gzip file ({error})") from error
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_TYPES:
        raise UserInputError(f"'{path}' is not an idx file (bad magic number {data[:4].hex()})")
    dtype, ndim = _IDX_TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4"))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(shape) != ndim or len(data) != expected:
        raise UserInputError(f"'{path}' holds {len(data)} bytes; its header {shape} needs "
                             f"{expected} (truncated or corrupt file)")
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise EnvironmentProblem(
        f"Fashion-MNIST file '{root / stem}[.gz]' not found; install Debian's package "
        f"(apt-get install dataset-fashion-mnist) or point at the folder holding the idx files")


def load_fashion_mnist(
    split: str = "train", root: str | os.PathLike = DEFAULT_ROOT
) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels of one split.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        root: the folder of the idx files.

    Returns:
        ``(images, labels)``: uint8 ``(N, 28, 28)``, 0 = black background, 255 = white; uint8
        ``(N,)`` class indices into :data:`CLASSES`.

    Raises:
        UserInputError: unknown split, unreadable files, or images and labels that disagree.
        EnvironmentProblem: a file is missing (with how to install the package).
    """
    if split not in SPLITS:
        raise UserInputError(f"unknown Fashion-MNIST split {split!r} (valid: {', '.join(SPLITS)})")
    root = Path(root)
    images = read_idx(_find(root, f"{SPLITS[split]}-images-idx3-ubyte"))
    labels = read_idx(_find(root, f"{SPLITS[split]}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise UserInputError(f"Fashion-MNIST {split} files in '{root}' disagree: images "
                             f"{images.shape}, labels {labels.shape}")
    if images.dtype != np.uint8 or labels.dtype != np.uint8 or labels.max(initial=0) >= 10:
        raise UserInputError(f"Fashion-MNIST {split} files in '{root}' are not uint8 images "
                             "with labels 0-9")
    return images, labels
