"""Tests for InpaintingDataset: sample format, bad files, determinism across epochs and workers."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_data_io import GOOD, gradient_rgb, write_image_zoo

from inpainting.data import FixedMaskSet, ImageDecodeError, InpaintingDataset
from inpainting.engine.errors import UserInputError
from masks import FolderMaskSource, MaskGenerator, save_mask

SIZE = 16


def generator(size: int = SIZE) -> MaskGenerator:
    return MaskGenerator(size, size, hole_range=(0.1, 0.5))


def same_pixels(one: dict, two: dict) -> bool:
    return torch.equal(one["image"], two["image"]) and torch.equal(one["mask"], two["mask"])


def write_pngs(folder: Path, count: int, size: tuple[int, int] = (24, 30)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        paths.append(folder / f"img_{i:02d}.png")
        pixels = np.roll(gradient_rgb(*size), shift=7 * i, axis=1)
        Image.fromarray(pixels).save(paths[-1])
    return paths


def test_sample_format_on_every_awkward_file(tmp_path):
    zoo = write_image_zoo(tmp_path / "zoo")
    paths = [zoo[name] for name in GOOD]
    for train in (True, False):
        dataset = InpaintingDataset(paths, SIZE, train=train, mask_source=generator(), seed=0)
        for index in range(len(dataset)):
            sample = dataset[index]
            image, mask = sample["image"], sample["mask"]
            assert image.dtype == torch.float32 and image.shape == (3, SIZE, SIZE)
            assert 0.0 <= image.min() and image.max() <= 1.0
            assert mask.dtype == torch.float32 and mask.shape == (1, SIZE, SIZE)
            assert set(mask.unique().tolist()) <= {0.0, 1.0}
            hole = 1.0 - mask.mean().item()
            assert 0.1 < hole <= 0.5
            assert sample["bad_files"] == 0 and sample["path"] == str(paths[index])
            assert "bin" not in sample


def test_corrupt_file_is_skipped_counted_and_logged(tmp_path, caplog):
    zoo = write_image_zoo(tmp_path / "zoo")
    paths = [zoo["rgb"], zoo["corrupt"], zoo["truncated"], zoo["tiny"]]
    dataset = InpaintingDataset(paths, SIZE, train=True, mask_source=generator(), seed=0)
    with caplog.at_level(logging.WARNING, logger="inpainting.data.dataset"):
        sample = dataset[1]
    assert sample["bad_files"] == 2 and sample["path"] == str(zoo["tiny"])
    assert "corrupt.jpg" in caplog.text and "truncated.png" in caplog.text
    assert dataset[0]["bad_files"] == 0
    again = dataset[1]  # the substitution is deterministic
    assert same_pixels(again, sample)


def test_bad_last_file_wraps_around(tmp_path):
    zoo = write_image_zoo(tmp_path / "zoo")
    dataset = InpaintingDataset(
        [zoo["gray"], zoo["corrupt"]], SIZE, train=False, mask_source=generator(), seed=0
    )
    sample = dataset[1]
    assert sample["bad_files"] == 1 and sample["path"] == str(zoo["gray"])


def test_strict_raises_naming_the_file(tmp_path):
    zoo = write_image_zoo(tmp_path / "zoo")
    dataset = InpaintingDataset(
        [zoo["rgb"], zoo["corrupt"]], SIZE, True, generator(), seed=0, strict=True
    )
    assert dataset[0]["bad_files"] == 0
    with pytest.raises(ImageDecodeError, match="corrupt.jpg"):
        dataset[1]


def test_only_bad_files_is_an_error_not_a_hang(tmp_path):
    zoo = write_image_zoo(tmp_path / "zoo")
    dataset = InpaintingDataset([zoo["corrupt"], zoo["truncated"]], SIZE, True, generator(), 0)
    with pytest.raises(UserInputError, match="could not be decoded"):
        dataset[0]


def test_same_seed_epoch_index_gives_the_same_sample(tmp_path):
    paths = write_pngs(tmp_path, 3, size=(40, 48))
    first = InpaintingDataset(paths, SIZE, True, generator(), seed=5)
    second = InpaintingDataset(paths, SIZE, True, generator(), seed=5)
    first.set_epoch(2)
    second.set_epoch(2)
    assert same_pixels(first[1], second[1])
    other_seed = InpaintingDataset(paths, SIZE, True, generator(), seed=6)
    other_seed.set_epoch(2)
    assert not torch.equal(first[1]["mask"], other_seed[1]["mask"])


def test_epoch_changes_training_crop_and_mask_but_not_eval(tmp_path):
    paths = write_pngs(tmp_path, 2, size=(40, 48))
    train = InpaintingDataset(paths, SIZE, True, generator(), seed=0, hflip=False)
    before = train[0]
    train.set_epoch(1)
    after = train[0]
    assert not torch.equal(before["image"], after["image"])
    assert not torch.equal(before["mask"], after["mask"])
    val = InpaintingDataset(paths, SIZE, False, generator(), seed=0)
    before = val[0]
    val.set_epoch(7)
    after = val[0]
    assert same_pixels(before, after)


def test_masks_do_not_depend_on_augmentation_settings(tmp_path):
    paths = write_pngs(tmp_path, 2, size=(40, 48))
    plain = InpaintingDataset(paths, SIZE, True, generator(), seed=3, hflip=False)
    augmented = InpaintingDataset(
        paths, SIZE, True, generator(), seed=3, hflip=True, train_resize="random_resized_crop"
    )
    assert torch.equal(plain[1]["mask"], augmented[1]["mask"])


def test_batches_identical_with_zero_and_two_workers(tmp_path):
    paths = write_pngs(tmp_path, 3)
    paths.insert(2, tmp_path / "broken.png")
    paths[2].write_bytes(b"\x89PNG not really")
    dataset = InpaintingDataset(paths, SIZE, True, generator(), seed=11)
    dataset.set_epoch(3)

    def batches(workers: int) -> list[dict]:
        loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=workers)
        return list(loader)

    serial, parallel = batches(0), batches(2)
    assert len(serial) == len(parallel) == 2
    for one, two in zip(serial, parallel, strict=True):
        for key in ("image", "mask", "index", "bad_files"):
            assert torch.equal(one[key], two[key]), key
    assert sum(int(b["bad_files"].sum()) for b in parallel) == 1


def test_fixed_mask_set_gives_its_own_masks_in_turn(tmp_path):
    paths = write_pngs(tmp_path, 4)
    fixed = FixedMaskSet(3, SIZE, bins=((0.1, 0.2), (0.3, 0.4), (0.5, 0.6)), seed=1)
    dataset = InpaintingDataset(paths, SIZE, train=False, mask_source=fixed, seed=0)
    for index in range(4):
        sample = dataset[index]
        assert np.array_equal(sample["mask"][0].numpy(), fixed[index % 3])
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4)))
    assert torch.equal(batch["mask"][3], batch["mask"][0])


def test_folder_mask_source_works_as_a_mask_source(tmp_path):
    mask_dir = tmp_path / "masks"
    mask_dir.mkdir()
    for i in range(3):
        save_mask(mask_dir / f"m{i}.png", generator(32)(np.random.default_rng(i)))
    source = FolderMaskSource(mask_dir, SIZE, SIZE, polarity="known_white", augment=True)
    dataset = InpaintingDataset(write_pngs(tmp_path / "img", 2), SIZE, True, source, seed=0)
    mask = dataset[0]["mask"]
    assert mask.shape == (1, SIZE, SIZE) and set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(dataset[0]["mask"], mask)


def test_argument_and_mask_source_errors(tmp_path):
    paths = write_pngs(tmp_path, 1)
    with pytest.raises(ValueError, match="at least one image"):
        InpaintingDataset([], SIZE, True, generator(), seed=0)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        InpaintingDataset(paths, SIZE, True, generator(), seed=-1)
    with pytest.raises(ValueError, match="unknown eval mode"):
        InpaintingDataset(paths, SIZE, False, generator(), seed=0, eval_mode="pad")
    with pytest.raises(ValueError, match="build the FixedMaskSet at the image size"):
        InpaintingDataset(paths, SIZE, False, FixedMaskSet(1, 32), seed=0)
    wrong_size = InpaintingDataset(paths, SIZE, True, generator(SIZE + 1), seed=0)
    with pytest.raises(ValueError, match=r"expected \(16, 16\)"):
        wrong_size[0]
    white = InpaintingDataset(paths, SIZE, True, lambda rng: np.full((SIZE, SIZE), 255), seed=0)
    with pytest.raises(ValueError, match="1 = known, 0 = hole"):
        white[0]
