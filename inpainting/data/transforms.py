"""Geometric transforms on ``(H, W, 3)`` ``uint8`` RGB arrays (numpy + OpenCV).

All randomness comes from an explicit ``np.random.Generator`` argument, never from a global
RNG, so a sample can be reproduced from its seed. Upscaling uses bicubic interpolation,
downscaling area averaging (no aliasing).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

__all__ = [
    "EVAL_MODES",
    "TRAIN_RESIZE_MODES",
    "EvalTransform",
    "TrainTransform",
    "center_crop",
    "horizontal_flip",
    "random_crop",
    "random_resized_crop",
    "resize",
    "upscale_to_min_side",
]


def _resize_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize to ``(height, width)``, bicubic when enlarging, area-averaged when shrinking."""
    if image.shape[0] == height and image.shape[1] == width:
        return image
    shrinking = height * width < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(image, (width, height), interpolation=interpolation)


def _upscaled_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """``(H, W)`` of ``upscale_to_min_side`` on an ``H x W`` image, without resizing."""
    short = min(height, width)
    if short >= size:
        return height, width
    scale = size / short
    new_height = size if height == short else max(size, round(height * scale))
    new_width = size if width == short else max(size, round(width * scale))
    return new_height, new_width


def upscale_to_min_side(image: np.ndarray, size: int) -> np.ndarray:
    """Enlarge an image, keeping its aspect ratio, so that its short side is at least ``size``.

    Args:
        image: ``(H, W, C)`` array.
        size: minimum side length in pixels.

    Returns:
        The image unchanged if ``min(H, W) >= size``, else resized so ``min(H, W) == size``.
    """
    new_height, new_width = _upscaled_shape(*image.shape[:2], size)
    return _resize_to(image, new_height, new_width)


# An image that must be enlarged to more than this many crops' area (a strip: 1 x 60000 at 64 px
# would become 64 x 3.84M) is enlarged only under the crop window.
_WHOLE_UPSCALE_LIMIT = 16


def _upscaled_window(image: np.ndarray, size: int, top: int, left: int) -> np.ndarray:
    """The ``size x size`` window at ``(top, left)`` of ``upscale_to_min_side(image, size)``.

    Images that need no enlarging, or whose enlarged copy stays small, are cut from that copy.
    For a strip, only the window is interpolated (bicubic, the same sampling grid as the resize),
    so memory stays in proportion to ``size``; its pixels agree with the full resize to within
    rounding.
    """
    height, width = image.shape[:2]
    new_height, new_width = _upscaled_shape(height, width, size)
    if min(height, width) >= size or new_height * new_width <= _WHOLE_UPSCALE_LIMIT * size**2:
        return upscale_to_min_side(image, size)[top : top + size, left : left + size]
    # cv2.resize samples destination pixel x at source (x + 0.5) * (source / destination) - 0.5.
    rows = (np.arange(top, top + size) + 0.5) * (height / new_height) - 0.5
    cols = (np.arange(left, left + size) + 0.5) * (width / new_width) - 0.5
    # Only the source under the window, with the bicubic kernel's reach (remap also needs
    # sources under 32767 pixels a side).
    row0, row1 = _reach(rows, height)
    col0, col1 = _reach(cols, width)
    map_x, map_y = np.meshgrid((cols - col0).astype(np.float32), (rows - row0).astype(np.float32))
    window = cv2.remap(np.ascontiguousarray(image[row0:row1, col0:col1]), map_x, map_y,
                       cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)  # (S, S[, C])
    return window.reshape(size, size, *image.shape[2:])


def _reach(positions: np.ndarray, length: int) -> tuple[int, int]:
    """``[start, stop)`` of the source pixels a bicubic sample at ``positions`` reads."""
    return max(0, int(np.floor(positions[0])) - 2), min(length, int(np.ceil(positions[-1])) + 3)


def random_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Crop a uniformly placed ``size x size`` window (upscaling first if the image is smaller).

    Args:
        image: ``(H, W, C)`` array.
        size: crop side in pixels.
        rng: source of the crop position.

    Returns:
        ``(size, size, C)`` array.
    """
    height, width = _upscaled_shape(*image.shape[:2], size)
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    return _upscaled_window(image, size, top, left)


def random_resized_crop(
    image: np.ndarray,
    size: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.5, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> np.ndarray:
    """Crop a window of random area and aspect ratio, then resize it to ``size x size``.

    The window covers a fraction of the image area drawn uniformly from ``scale`` and has an
    aspect ratio (width / height) drawn log-uniformly from ``ratio``. After 10 draws that do not
    fit, it falls back to the largest centred window with the ratio clamped to ``ratio``.

    Args:
        image: ``(H, W, C)`` array.
        size: output side in pixels.
        rng: source of the window.
        scale: ``(low, high)`` area fractions, ``0 < low <= high <= 1``.
        ratio: ``(low, high)`` aspect ratios, ``0 < low <= high``.

    Returns:
        ``(size, size, C)`` array.

    Raises:
        ValueError: ``scale`` or ``ratio`` out of range.
    """
    if not 0.0 < scale[0] <= scale[1] <= 1.0:
        raise ValueError(f"random resized crop scale must satisfy 0 < low <= high <= 1: {scale}")
    if not 0.0 < ratio[0] <= ratio[1]:
        raise ValueError(f"random resized crop ratio must satisfy 0 < low <= high: {ratio}")
    height, width = image.shape[:2]
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        crop_width = round(math.sqrt(target_area * aspect))
        crop_height = round(math.sqrt(target_area / aspect))
        if 0 < crop_width <= width and 0 < crop_height <= height:
            top = int(rng.integers(0, height - crop_height + 1))
            left = int(rng.integers(0, width - crop_width + 1))
            window = image[top : top + crop_height, left : left + crop_width]
            return _resize_to(window, size, size)
    aspect = min(max(width / height, ratio[0]), ratio[1])
    crop_width = min(width, round(height * aspect))
    crop_height = min(height, round(crop_width / aspect))
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    return _resize_to(image[top : top + crop_height, left : left + crop_width], size, size)


def horizontal_flip(image: np.ndarray) -> np.ndarray:
    """Mirror left-right; returns a contiguous copy."""
    return np.ascontiguousarray(image[:, ::-1])


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Centred ``size x size`` crop, upscaling first (aspect kept) if the image is smaller.

    Args:
        image: ``(H, W, C)`` array.
        size: crop side in pixels.

    Returns:
        ``(size, size, C)`` array.
    """
    height, width = _upscaled_shape(*image.shape[:2], size)
    return _upscaled_window(image, size, (height - size) // 2, (width - size) // 2)


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to ``size x size`` without keeping the aspect ratio.

    Args:
        image: ``(H, W, C)`` array.
        size: output side in pixels.

    Returns:
        ``(size, size, C)`` array.
    """
    return _resize_to(image, size, size)


EVAL_MODES: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "center_crop": center_crop,
    "resize": resize,
}


# How a training sample is framed: ``crop`` cuts S x S pixels at the file's resolution (the
# paper); ``resize`` shows the whole image at S x S, as the ``resize`` eval mode does (aligned
# faces); ``random_resized_crop`` a random window of ``rrc_scale`` of the area, resized.
TRAIN_RESIZE_MODES = ("crop", "resize", "random_resized_crop")
# Modes whose output does not depend on the image's pixel scale (a reduced decode is fine).
SCALE_FREE_TRAIN_MODES = ("resize", "random_resized_crop")


class TrainTransform:
    """Training augmentation: a framing of ``TRAIN_RESIZE_MODES``, then an optional flip.

    Args:
        image_size: output side ``S`` in pixels.
        mode: a key of ``TRAIN_RESIZE_MODES``: ``crop`` (random ``S x S`` crop), ``resize``
            (whole image to ``S x S``) or ``random_resized_crop``.
        rrc_scale: area-fraction range of the random resized crop.
        rrc_ratio: aspect-ratio range of the random resized crop.
        hflip: mirror left-right with probability 0.5.
        random_resized_crop: true is ``mode="random_resized_crop"`` (the older switch).

    Raises:
        ValueError: unknown ``mode``, ``image_size < 1`` or a range out of bounds.

    Call with ``(image, rng)``: ``image`` is ``(H, W, 3)`` uint8, the result ``(S, S, 3)`` uint8.
    """

    def __init__(
        self,
        image_size: int,
        mode: str = "crop",
        rrc_scale: tuple[float, float] = (0.5, 1.0),
        rrc_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        hflip: bool = True,
        random_resized_crop: bool = False,
    ) -> None:
        mode = "random_resized_crop" if random_resized_crop else mode
        if mode not in TRAIN_RESIZE_MODES:
            raise ValueError(f"unknown train resize mode '{mode}' "
                             f"(valid: {', '.join(TRAIN_RESIZE_MODES)})")
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        if not 0.0 < rrc_scale[0] <= rrc_scale[1] <= 1.0:
            raise ValueError(f"rrc_scale must satisfy 0 < low <= high <= 1, got {rrc_scale}")
        if not 0.0 < rrc_ratio[0] <= rrc_ratio[1]:
            raise ValueError(f"rrc_ratio must satisfy 0 < low <= high, got {rrc_ratio}")
        self.image_size = image_size
        self.mode = mode
        self.rrc_scale = tuple(rrc_scale)
        self.rrc_ratio = tuple(rrc_ratio)
        self.hflip = hflip

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.mode == "random_resized_crop":
            image = random_resized_crop(
                image, self.image_size, rng, scale=self.rrc_scale, ratio=self.rrc_ratio
            )
        elif self.mode == "resize":
            image = resize(image, self.image_size)
        else:
            image = random_crop(image, self.image_size, rng)
        if self.hflip and rng.random() < 0.5:
            image = horizontal_flip(image)
        return np.ascontiguousarray(image)


class EvalTransform:
    """Deterministic evaluation transform: ``"center_crop"`` or ``"resize"`` to ``S x S``.

    Args:
        image_size: output side ``S`` in pixels.
        mode: a key of ``EVAL_MODES``.

    Raises:
        ValueError: unknown ``mode`` (the message lists the valid ones) or ``image_size < 1``.

    Call with ``(image, rng=None)``; ``rng`` is accepted for symmetry and ignored.
    """

    def __init__(self, image_size: int, mode: str = "center_crop") -> None:
        if mode not in EVAL_MODES:
            raise ValueError(f"unknown eval mode '{mode}' (valid: {', '.join(EVAL_MODES)})")
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        self.image_size = image_size
        self.mode = mode

    def __call__(self, image: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return np.ascontiguousarray(EVAL_MODES[self.mode](image, self.image_size))
