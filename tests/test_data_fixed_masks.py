"""Tests for FixedMaskSet: deterministic, binned validation masks and their files."""

import json

import numpy as np
import pytest

from inpainting.data import FixedMaskSet
from inpainting.metrics.scoring import bin_index
from masks import PAPER_BINS, hole_ratio, save_mask

BINS = ((0.05, 0.15), (0.3, 0.4), (0.5, 0.6))


def test_masks_cycle_over_the_bins_and_lie_in_them():
    fixed = FixedMaskSet(7, 32, bins=BINS, seed=0)
    assert len(fixed) == 7 and fixed.size == 32 and fixed.bins == BINS
    for i in range(7):
        assert fixed.bin_index(i) == i % 3
        mask = fixed[i]
        assert mask.dtype == np.uint8 and mask.shape == (32, 32)
        assert set(np.unique(mask).tolist()) <= {0, 1}
        low, high = BINS[i % 3]
        assert low < hole_ratio(mask) <= high


def test_default_bins_are_the_papers():
    fixed = FixedMaskSet(6, 32)
    assert fixed.bins == PAPER_BINS
    assert [fixed.bin_index(i) for i in range(6)] == list(range(6))


def test_same_seed_same_masks_other_seed_other_masks():
    first, second = FixedMaskSet(4, 32, seed=3), FixedMaskSet(4, 32, seed=3)
    assert np.array_equal(first.masks, second.masks)
    assert not np.array_equal(first.masks, FixedMaskSet(4, 32, seed=4).masks)
    # Mask i does not depend on how many masks are drawn after it.
    assert np.array_equal(FixedMaskSet(2, 32, seed=3).masks, first.masks[:2])


def test_border_keeps_the_frame_known():
    fixed = FixedMaskSet(3, 32, bins=BINS, border=4)
    frame = np.ones((32, 32), bool)
    frame[4:-4, 4:-4] = False
    assert all(np.all(fixed[i][frame] == 1) for i in range(3))


def test_save_load_round_trip(tmp_path):
    fixed = FixedMaskSet(5, 24, bins=BINS, border=2, seed=2)
    fixed.save(tmp_path / "val_masks")
    manifest = json.loads((tmp_path / "val_masks" / "manifest.json").read_text())
    assert manifest["version"] == 2 and manifest["border_px"] == 2 and manifest["seed"] == 2
    assert [entry["bin"] for entry in manifest["masks"]] == [list(BINS[i % 3]) for i in range(5)]
    assert all(entry["border"] for entry in manifest["masks"])
    assert manifest["masks"][1]["file"] == "mask_00001.png"
    assert manifest["masks"][1]["hole_ratio"] == pytest.approx(hole_ratio(fixed[1]))
    loaded = FixedMaskSet.load(tmp_path / "val_masks")
    assert np.array_equal(loaded.masks, fixed.masks)
    assert loaded.bins == fixed.bins and loaded.size == 24
    assert (loaded.border, loaded.seed) == (2, 2)
    assert [loaded.bin_index(i) for i in range(5)] == [fixed.bin_index(i) for i in range(5)]


def test_version_1_manifest_still_loads(tmp_path):
    """The format FixedMaskSet wrote before the shared schema: bins by index."""
    masks = [np.ones((16, 16), np.uint8) for _ in range(3)]
    masks[0][:2] = 0  # 32 of 256 pixels: ratio 0.125
    masks[1][:6] = 0  # 0.375
    masks[2][:3] = 0  # 0.1875
    for i, mask in enumerate(masks):
        save_mask(tmp_path / f"mask_{i:05d}.png", mask)
    (tmp_path / "manifest.json").write_text("""{
 "version": 1,
 "size": 16,
 "bins": [[0.05, 0.15], [0.3, 0.4], [0.15, 0.2]],
 "masks": [
  {"file": "mask_00000.png", "hole_ratio": 0.125, "bin": 0},
  {"file": "mask_00001.png", "hole_ratio": 0.375, "bin": 1},
  {"file": "mask_00002.png", "hole_ratio": 0.1875, "bin": 2}
 ]
}
""")
    loaded = FixedMaskSet.load(tmp_path)
    assert loaded.size == 16 and loaded.bins == ((0.05, 0.15), (0.3, 0.4), (0.15, 0.2))
    assert [loaded.bin_index(i) for i in range(3)] == [0, 1, 2]
    assert np.array_equal(loaded.masks, np.stack(masks))
    assert loaded.border is None and loaded.seed is None


@pytest.mark.parametrize("size, border", [(32, None), (48, 4), (64, None)])
def test_binning_by_hole_ratio_gives_the_bin_each_mask_was_made_for(size, border):
    """The validation table bins masks by hole ratio (lo, hi]; a FixedMaskSet's masks land
    exactly in the bins they were generated for, so the rows are those of the stored bins."""
    for seed in range(3):
        fixed = FixedMaskSet(24, size, bins=PAPER_BINS, border=border, seed=seed)
        for i in range(len(fixed)):
            assert bin_index(hole_ratio(fixed[i]), fixed.bins) == fixed.bin_index(i)
    uneven = ((0.05, 0.15), (0.15, 0.2), (0.5, 0.6), (0.2, 0.5))  # any order, touching ends
    fixed = FixedMaskSet(12, size, bins=uneven, border=border)
    assert all(bin_index(hole_ratio(fixed[i]), uneven) == fixed.bin_index(i) for i in range(12))


def test_overlapping_bins_are_refused():
    with pytest.raises(ValueError, match=r"\(0.1, 0.3\] and \(0.2, 0.4\] overlap"):
        FixedMaskSet(4, 32, bins=((0.2, 0.4), (0.1, 0.3)))


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="no manifest.json"):
        FixedMaskSet.load(tmp_path)
    FixedMaskSet(2, 16, bins=BINS).save(tmp_path / "set")
    (tmp_path / "set" / "mask_00001.png").unlink()
    with pytest.raises(ValueError, match=r"mask_00001.png' listed in .* is missing"):
        FixedMaskSet.load(tmp_path / "set")


def test_bad_arguments():
    with pytest.raises(ValueError, match="count >= 1"):
        FixedMaskSet(0, 16)
    with pytest.raises(ValueError, match="at least one hole-ratio bin"):
        FixedMaskSet(2, 16, bins=())
