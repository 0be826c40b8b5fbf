"""Tests for inpainting.data.transforms: shapes, placement, explicit-RNG determinism."""

import numpy as np
import pytest

from inpainting.data import (
    EvalTransform,
    TrainTransform,
    center_crop,
    horizontal_flip,
    random_crop,
    random_resized_crop,
    resize,
    upscale_to_min_side,
)


def coordinate_image(height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8 whose channels 0/1 hold the row/column index (H, W <= 256)."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([rows, cols, np.zeros_like(rows)], -1).astype(np.uint8)


def is_window_of(crop: np.ndarray, height: int, width: int) -> bool:
    """True if ``crop`` is an unscaled, unflipped window of ``coordinate_image(height, width)``."""
    top, left = int(crop[0, 0, 0]), int(crop[0, 0, 1])
    bottom, right = top + crop.shape[0], left + crop.shape[1]
    expected = coordinate_image(height, width)[top:bottom, left:right]
    return expected.shape == crop.shape and np.array_equal(expected, crop)


def test_upscale_keeps_aspect_and_sets_short_side():
    tiny = np.zeros((7, 10, 3), np.uint8)  # 10 wide, 7 high
    assert upscale_to_min_side(tiny, 16).shape == (16, 23, 3)  # 10 * 16 / 7 = 22.9
    tall = np.zeros((40, 5, 3), np.uint8)
    assert upscale_to_min_side(tall, 10).shape == (80, 10, 3)
    big = np.zeros((20, 30, 3), np.uint8)
    assert upscale_to_min_side(big, 16) is big


def test_random_crop_is_an_exact_window_inside_the_image():
    image = coordinate_image(40, 50)
    rng = np.random.default_rng(0)
    corners = set()
    for _ in range(20):
        crop = random_crop(image, 16, rng)
        assert crop.shape == (16, 16, 3)
        assert is_window_of(crop, 40, 50)
        corners.add((int(crop[0, 0, 0]), int(crop[0, 0, 1])))
    assert len(corners) > 10  # positions vary


def test_random_crop_upscales_small_images():
    crop = random_crop(np.full((7, 10, 3), 90, np.uint8), 32, np.random.default_rng(0))
    assert crop.shape == (32, 32, 3)
    assert np.all(crop == 90)


def test_random_resized_crop_shape_and_argument_checks():
    image = coordinate_image(60, 80)
    rng = np.random.default_rng(1)
    crops = [random_resized_crop(image, 24, rng, scale=(0.2, 0.6)) for _ in range(5)]
    assert all(crop.shape == (24, 24, 3) for crop in crops)
    assert not all(np.array_equal(crops[0], crop) for crop in crops[1:])
    with pytest.raises(ValueError, match="scale"):
        random_resized_crop(image, 24, rng, scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="ratio"):
        random_resized_crop(image, 24, rng, ratio=(2.0, 1.0))


def test_random_resized_crop_falls_back_on_extreme_aspect():
    # Ratios near 1 cannot fit a 2 x 200 image at scale >= 0.9: the centred fallback is used.
    crop = random_resized_crop(
        np.full((2, 200, 3), 50, np.uint8), 8, np.random.default_rng(0), scale=(0.9, 1.0)
    )
    assert crop.shape == (8, 8, 3)
    assert np.all(crop == 50)


def test_center_crop_is_centred():
    crop = center_crop(coordinate_image(40, 50), 20)
    assert crop.shape == (20, 20, 3)
    assert (crop[0, 0, 0], crop[0, 0, 1]) == (10, 15)
    assert is_window_of(crop, 40, 50)


def test_resize_ignores_aspect_and_flip_mirrors():
    assert resize(np.zeros((7, 10, 3), np.uint8), 32).shape == (32, 32, 3)
    assert resize(np.zeros((300, 100, 3), np.uint8), 32).shape == (32, 32, 3)
    image = coordinate_image(4, 6)
    assert np.array_equal(horizontal_flip(image), image[:, ::-1])


def test_train_transform_uses_only_the_given_rng():
    image = coordinate_image(50, 60)
    transform = TrainTransform(24, hflip=True)
    np.random.seed(1)
    first = transform(image, np.random.default_rng(7))
    np.random.seed(2)  # the global RNG must not matter
    assert np.array_equal(first, transform(image, np.random.default_rng(7)))
    assert first.shape == (24, 24, 3) and first.dtype == np.uint8


def test_train_transform_flips_about_half_the_time():
    image = coordinate_image(24, 24)  # crop == whole image, so only the flip varies
    outputs = [TrainTransform(24, hflip=True)(image, np.random.default_rng(s)) for s in range(40)]
    flipped = sum(np.array_equal(out, image[:, ::-1]) for out in outputs)
    unflipped = sum(np.array_equal(out, image) for out in outputs)
    assert flipped + unflipped == 40
    assert 8 <= flipped <= 32
    never = [TrainTransform(24, hflip=False)(image, np.random.default_rng(s)) for s in range(10)]
    assert all(np.array_equal(out, image) for out in never)


def test_train_transform_random_resized_crop_option():
    transform = TrainTransform(16, random_resized_crop=True, rrc_scale=(0.3, 0.5))
    out = transform(coordinate_image(64, 64), np.random.default_rng(0))
    assert out.shape == (16, 16, 3)
    with pytest.raises(ValueError, match="rrc_scale"):
        TrainTransform(16, random_resized_crop=True, rrc_scale=(0.5, 1.5))


@pytest.mark.parametrize("mode", ["crop", "resize", "random_resized_crop"])
def test_train_resize_modes_give_seeded_samples_of_the_size_in_range(mode):
    image = np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    transform = TrainTransform(24, mode=mode, rrc_scale=(0.3, 0.6))
    outputs = [transform(image, np.random.default_rng(seed)) for seed in range(6)]
    assert all(out.shape == (24, 24, 3) and out.dtype == np.uint8 for out in outputs)
    assert all(np.array_equal(out, transform(image, np.random.default_rng(seed)))
               for seed, out in enumerate(outputs))
    if mode == "resize":  # the whole image, only the flip varies
        whole = resize(image, 24)
        assert all(np.array_equal(out, whole) or np.array_equal(out, whole[:, ::-1])
                   for out in outputs)
    else:
        assert len({out.tobytes() for out in outputs}) > 2


def test_train_resize_mode_names_and_the_older_switch():
    with pytest.raises(ValueError, match="unknown train resize mode 'zoom' .*valid: crop, "
                                         "resize, random_resized_crop"):
        TrainTransform(16, mode="zoom")
    assert TrainTransform(16, random_resized_crop=True).mode == "random_resized_crop"


def test_eval_transform_modes_and_unknown_mode():
    image = coordinate_image(40, 50)
    assert np.array_equal(EvalTransform(20, "center_crop")(image), center_crop(image, 20))
    assert EvalTransform(20, "resize")(image).shape == (20, 20, 3)
    valid = r"unknown eval mode 'crop' \(valid: center_crop, resize\)"
    with pytest.raises(ValueError, match=valid):
        EvalTransform(20, "crop")
