"""Tests for masks.io (file format, polarity, resizing) and masks.folder."""

import os

import cv2
import numpy as np
import pytest
from PIL import Image

from masks import FolderMaskSource, MaskGenerator, hole_ratio, load_mask, resize_mask, save_mask
from masks.io import iter_mask_files, remove_stale_temporaries


@pytest.fixture
def mask():
    return MaskGenerator(24, 32, (0.2, 0.4), rng=0)()


def test_save_writes_single_channel_png_with_white_known(tmp_path, mask):
    path = tmp_path / "m.png"
    save_mask(path, mask)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "L"
        pixels = np.asarray(image)
    assert set(np.unique(pixels)) == {0, 255}
    assert np.array_equal(pixels == 255, mask == 1)
    assert np.array_equal(load_mask(path), mask)
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"], "temporary file left behind"


def test_polarity_round_trips(tmp_path, mask):
    hole_white = tmp_path / "hole_white.png"
    cv2.imwrite(str(hole_white), (mask == 0).astype(np.uint8) * 255)
    loaded = load_mask(hole_white, polarity="hole_white")
    assert loaded.dtype == np.uint8 and np.array_equal(loaded, mask)
    assert np.array_equal(load_mask(hole_white, polarity="known_white"), 1 - mask)


def test_unknown_polarity_names_valid_values(tmp_path, mask):
    save_mask(tmp_path / "m.png", mask)
    with pytest.raises(ValueError, match="known_white, hole_white"):
        load_mask(tmp_path / "m.png", polarity="hole-white")


def test_grey_and_colour_files_are_binarised_at_128(tmp_path):
    grey = np.array([[0, 127, 128, 255]], np.uint8)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    assert load_mask(tmp_path / "grey.png").tolist() == [[0, 0, 1, 1]]
    assert load_mask(tmp_path / "grey.png", "hole_white").tolist() == [[1, 1, 0, 0]]
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[:, 4:] = 255
    cv2.imwrite(str(tmp_path / "colour.jpg"), colour)
    loaded = load_mask(tmp_path / "colour.jpg")
    assert loaded.shape == (8, 8) and set(np.unique(loaded)) == {0, 1}
    assert loaded[:, :3].sum() == 0 and loaded[:, 5:].all()


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match="missing.png"):  # UserInputError: exit 2, one line
        load_mask(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot decode"):
        load_mask(tmp_path / "junk.png")


def test_save_rejects_non_binary_and_non_2d(tmp_path):
    with pytest.raises(ValueError, match="only 0"):
        save_mask(tmp_path / "m.png", np.full((4, 4), 255, np.uint8))
    with pytest.raises(ValueError, match="2-D"):
        save_mask(tmp_path / "m.png", np.ones((4, 4, 1), np.uint8))
    assert not any(tmp_path.iterdir())


def test_failed_replace_leaves_no_files(tmp_path, mask, monkeypatch):
    def broken_replace(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save_mask(tmp_path / "m.png", mask)
    assert not any(tmp_path.iterdir())


def test_remove_stale_temporaries(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".a.png.123.tmp").write_bytes(b"x")
    (tmp_path / "keep.png").write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == 1
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["keep.png"]


def test_resize_is_nearest_and_binary():
    checker = np.indices((4, 4)).sum(axis=0) % 2
    big = resize_mask(checker, 8, 12)
    assert big.shape == (8, 12) and big.dtype == np.uint8
    assert np.array_equal(big, np.repeat(np.repeat(checker, 2, axis=0), 3, axis=1))
    small = resize_mask(np.repeat(np.repeat(checker, 2, axis=0), 2, axis=1), 4, 4)
    assert np.array_equal(small, checker)
    soft = resize_mask(np.array([[0.2, 0.7], [0.5, 0.0]]), 3, 3)
    assert set(np.unique(soft)) <= {0, 1}
    with pytest.raises(ValueError, match="positive"):
        resize_mask(checker, 0, 4)


def test_hole_ratio_counts_zeros():
    assert hole_ratio(np.array([[1, 0], [0, 0]], np.uint8)) == 0.75
    assert hole_ratio(np.ones((3, 3), np.float32)) == 0.0


def test_folder_source(tmp_path):
    for index in range(3):
        hole = np.zeros((40, 40), np.uint8)
        hole[5 + index * 10 : 12 + index * 10, 5:35] = 255
        sub = tmp_path / ("nested" if index else "")
        sub.mkdir(exist_ok=True)
        cv2.imwrite(str(sub / f"{index}.png"), hole)
    (tmp_path / "notes.txt").write_text("not a mask")
    assert len(list(iter_mask_files(tmp_path))) == 3
    plain = FolderMaskSource(tmp_path, 20, 30, polarity="hole_white", augment=False, rng=0)
    masks = [plain() for _ in range(20)]
    assert all(m.shape == (20, 30) and m.dtype == np.uint8 for m in masks)
    # Without augmentation every mask is one of the three files, resized.
    assert all(0.1 < hole_ratio(m) < 0.2 for m in masks)
    augmented = FolderMaskSource(tmp_path, 20, 30, polarity="hole_white", rng=0)
    first = augmented(np.random.default_rng(3))
    assert np.array_equal(first, augmented(np.random.default_rng(3)))
    assert set(np.unique(first)) <= {0, 1}
    assert any(not np.array_equal(augmented(), m) for m in masks[:5])


def test_folder_source_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        FolderMaskSource(tmp_path / "missing", 8, 8)
    with pytest.raises(ValueError, match="holds no"):
        FolderMaskSource(tmp_path, 8, 8)
    cv2.imwrite(str(tmp_path / "m.png"), np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="polarity"):
        FolderMaskSource(tmp_path, 8, 8, polarity="white")
