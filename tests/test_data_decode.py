"""Memory bounds on huge images: reduced decoding and strips that must be upscaled."""

import tracemalloc

import cv2
import numpy as np
import pytest
from PIL import Image

from inpainting.data import InpaintingDataset, load_image
from inpainting.data.io import DECODE_SIDE_MULTIPLE
from inpainting.data.transforms import center_crop, random_crop, upscale_to_min_side


def _photo(height: int, width: int) -> np.ndarray:
    """A smooth (H, W, 3) uint8 image, JPEG-friendly."""
    small = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


@pytest.fixture(scope="module")
def huge(tmp_path_factory):
    folder = tmp_path_factory.mktemp("huge")
    photo = _photo(1800, 2400)
    Image.fromarray(photo).save(folder / "huge.jpg", quality=90)
    Image.fromarray(photo).save(folder / "huge.png", compress_level=1)
    return folder


@pytest.mark.parametrize("name", ["huge.jpg", "huge.png"])
def test_a_huge_image_is_decoded_reduced_to_a_small_multiple_of_the_side(huge, name):
    full = load_image(huge / name)
    reduced = load_image(huge / name, reduce_to=128)
    assert full.shape == (1800, 2400, 3)
    assert 128 <= min(reduced.shape[:2]) < 256 and reduced.dtype == np.uint8
    assert abs(reduced.shape[1] / reduced.shape[0] - 4 / 3) < 0.02  # aspect ratio kept
    shrunk = cv2.resize(full, reduced.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk.astype(int) - reduced).mean() < 3  # the same picture, smaller


def test_images_under_twice_the_bound_decode_bit_for_bit(tmp_path):
    photo = _photo(255, 300)
    for suffix in ("png", "jpg"):
        Image.fromarray(photo).save(tmp_path / f"x.{suffix}")
        np.testing.assert_array_equal(load_image(tmp_path / f"x.{suffix}", reduce_to=128),
                                      load_image(tmp_path / f"x.{suffix}"))


def _decoded_shape(path, size, options):
    """(shape of the decoded image the dataset's transform received, the sample)."""
    seen = []
    dataset = InpaintingDataset([path], size, seed=0,
                                mask_source=lambda rng: np.ones((size, size), np.uint8),
                                **options)
    transform = dataset.transform
    dataset.transform = lambda image, rng: (seen.append(image.shape), transform(image, rng))[1]
    sample = dataset[0]
    return seen[0], sample


@pytest.mark.parametrize("options", [{"train": True, "train_resize": "random_resized_crop"},
                                     {"train": True, "train_resize": "resize"},
                                     {"train": False, "eval_mode": "resize"}])
def test_scale_free_transforms_get_a_bounded_decode_of_a_huge_image(huge, options):
    size = 32
    shape, sample = _decoded_shape(huge / "huge.jpg", size, options)
    assert sample["image"].shape == (3, size, size)
    assert min(shape[:2]) < 2 * DECODE_SIDE_MULTIPLE * size, shape


@pytest.mark.parametrize("scale", [(0.05, 0.1), (0.01, 0.02)])
def test_small_random_resized_crops_keep_more_than_the_sample_side_of_source(huge, scale):
    """The smallest window (area scale[0], aspect 3/4 or 4/3) is still shrunk, never enlarged."""
    size = 32
    options = {"train": True, "train_resize": "random_resized_crop", "rrc_scale": scale}
    shape, sample = _decoded_shape(huge / "huge.jpg", size, options)
    assert sample["image"].shape == (3, size, size)
    smallest_side = min(shape[:2]) * np.sqrt(scale[0]) * np.sqrt(3 / 4)
    assert smallest_side > DECODE_SIDE_MULTIPLE * size * 0.8, shape


@pytest.mark.parametrize("options", [{"train": True}, {"train": False,
                                                        "eval_mode": "center_crop"}])
def test_plain_crops_of_a_huge_image_keep_its_resolution(huge, options):
    """A crop cuts S pixels of the file itself: a reduced decode would show more of the photo."""
    shape, _ = _decoded_shape(huge / "huge.jpg", 32, options)
    assert shape[:2] == load_image(huge / "huge.jpg").shape[:2]


@pytest.mark.parametrize("shape", [(1, 60000, 3), (60000, 1, 3)], ids=["wide", "tall"])
@pytest.mark.parametrize("crop", ["random", "center"])
def test_a_strip_is_cropped_without_upscaling_all_of_it(shape, crop):
    strip = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    tracemalloc.start()
    try:
        if crop == "random":
            window = random_crop(strip, 64, np.random.default_rng(1))
        else:
            window = center_crop(strip, 64)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert window.shape == (64, 64, 3) and window.dtype == np.uint8
    assert peak < 8 * 2**20, peak  # the whole upscaled strip would be 64 x 3.84M x 3 bytes


@pytest.mark.parametrize("shape", [(3, 2000, 3), (2000, 5, 3)], ids=["wide", "tall"])
def test_a_strip_window_matches_the_window_of_the_whole_upscaled_strip(shape):
    strip = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8),
                             (0, 0), 1.5)
    whole = upscale_to_min_side(strip, 64)
    long_axis = int(shape[1] > shape[0])
    offset = (whole.shape[long_axis] - 64) // 2
    expected = whole[:, offset:offset + 64] if long_axis else whole[offset:offset + 64]
    np.testing.assert_allclose(center_crop(strip, 64).astype(float), expected, atol=3)
    first, second = np.random.default_rng(5), np.random.default_rng(5)
    window = random_crop(strip, 64, first)
    top = int(second.integers(0, whole.shape[0] - 64 + 1))
    left = int(second.integers(0, whole.shape[1] - 64 + 1))
    np.testing.assert_allclose(window.astype(float), whole[top:top + 64, left:left + 64], atol=3)
    assert first.random() == second.random()  # the same draws: later choices are unchanged
