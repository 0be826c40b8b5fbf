"""Tests for masks.generator, masks.shapes and masks.augment."""

import numpy as np
import pytest

from masks import PAPER_BINS, Augmentation, MaskGenerator, derive_rng, hole_ratio, parse_bins
from masks.generator import count_bounds
from masks.shapes import SHAPES
from masks.stats import straight_edge_share


def _assert_valid(mask, size, hole_range, border):
    assert mask.dtype == np.uint8 and mask.shape == size
    assert np.all((mask == 0) | (mask == 1)), "mask is not exactly binary"
    ratio = hole_ratio(mask)
    assert hole_range[0] < ratio <= hole_range[1], (ratio, hole_range)
    if border:
        frame = np.ones(size, bool)
        frame[border:-border, border:-border] = False
        assert np.all(mask[frame] == 1), "a hole pixel lies inside the border"


def test_same_seed_same_masks_different_seed_different_masks():
    first = MaskGenerator(64, 64, (0.1, 0.3), rng=7)()
    again = MaskGenerator(64, 64, (0.1, 0.3), rng=7)()
    other = MaskGenerator(64, 64, (0.1, 0.3), rng=8)()
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_sequence_from_seed_is_reproducible_and_varies():
    run1 = [MaskGenerator(48, 40, (0.2, 0.4), rng=3)() for _ in range(3)]
    generator = MaskGenerator(48, 40, (0.2, 0.4), rng=3)
    run2 = [generator() for _ in range(3)]
    assert np.array_equal(run1[0], run2[0])
    assert not np.array_equal(run2[0], run2[1])


def test_independent_of_global_random_state():
    np.random.seed(1)
    a = MaskGenerator(32, 32, (0.1, 0.5), rng=5)()
    np.random.seed(2)
    np.random.rand(10)
    b = MaskGenerator(32, 32, (0.1, 0.5), rng=5)()
    assert np.array_equal(a, b)


def test_call_rng_overrides_own_generator():
    one = MaskGenerator(40, 40, (0.1, 0.2), rng=1)
    two = MaskGenerator(40, 40, (0.1, 0.2), rng=2)
    assert np.array_equal(one(derive_rng(5, 0, 17)), two(derive_rng(5, 0, 17)))
    assert not np.array_equal(one(derive_rng(5, 0, 17)), one(derive_rng(5, 1, 17)))
    assert np.array_equal(one(9), two(np.random.default_rng(9)))


@pytest.mark.parametrize("border", [None, 12])
@pytest.mark.parametrize("hole_range", PAPER_BINS)
def test_thousands_of_masks_binary_in_bin_and_respect_border(hole_range, border):
    # 6 bins x 2 border modes x 200 = 2400 masks at 128x128 (border 12 = round(50 * 128 / 512)).
    generator = MaskGenerator(128, 128, hole_range, border=border, rng=11)
    ratios = []
    for _ in range(200):
        mask = generator()
        _assert_valid(mask, (128, 128), hole_range, border)
        ratios.append(hole_ratio(mask))
    # The target is uniform over the bin, so both halves of the bin must be used.
    middle = sum(hole_range) / 2
    assert min(ratios) < middle < max(ratios)


@pytest.mark.parametrize("border", [None, 50])
def test_full_size_masks_in_every_paper_bin(border):
    for hole_range in PAPER_BINS:
        generator = MaskGenerator(512, 512, hole_range, border=border, rng=0)
        for _ in range(3):
            _assert_valid(generator(), (512, 512), hole_range, border)


@pytest.mark.parametrize(
    "size, hole_range, border",
    [
        ((8, 8), (0.01, 0.1), None),
        ((9, 31), (0.33, 0.34), 1),
        ((16, 16), (0.9, 1.0), None),
        ((20, 12), (0.0, 1.0), 2),
        ((64, 64), (0.0, 0.001), None),
    ],
)
def test_awkward_sizes_and_ranges(size, hole_range, border):
    generator = MaskGenerator(*size, hole_range, border=border, rng=4)
    for _ in range(30):
        _assert_valid(generator(), size, hole_range, border)


def test_count_bounds_match_hole_ratio_exactly():
    for pixels in (16, 100, 16384, 262144):
        for lo, hi in [*PAPER_BINS, (0.0, 1.0)]:
            first, last = count_bounds(lo, hi, pixels)
            assert lo < first / pixels <= hi and (first - 1) / pixels <= lo
            assert lo < last / pixels <= hi and (last + 1) / pixels > hi


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"hole_range": (0.3, 0.2)}, "lo < hi"),
        ({"hole_range": (0.1, 1.2)}, r"inside \[0, 1\]"),
        ({"hole_range": (-0.1, 0.2)}, r"inside \[0, 1\]"),
        ({"border": 16}, "border"),
        ({"height": 0}, "positive"),
        ({"shape_weights": {"star": 1.0}}, "unknown shape 'star'"),
        ({"shape_weights": {"line": 0.0}}, "positive sum"),
        ({"height": 4, "width": 4, "hole_range": (0.01, 0.05)}, "widen the range"),
        ({"border": 10, "hole_range": (0.7, 0.8)}, "widen the range"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    arguments = {"height": 32, "width": 32, **kwargs}
    with pytest.raises(ValueError, match=match):
        MaskGenerator(**arguments)


def test_single_shape_generators_work():
    for name in SHAPES:
        generator = MaskGenerator(64, 64, (0.05, 0.15), rng=2, shape_weights={name: 1.0})
        _assert_valid(generator(), (64, 64), (0.05, 0.15), None)


def test_shapes_draw_roughly_their_budget():
    rng = np.random.default_rng(0)
    for name, shape_class in SHAPES.items():
        shape = shape_class(256)
        areas = []
        for _ in range(50):
            canvas = np.zeros((256, 256), np.uint8)
            shape(canvas, 2000.0, rng)
            assert set(np.unique(canvas)) <= {0, 255}
            areas.append(np.count_nonzero(canvas))
        assert 300 < np.median(areas) < 6000, (name, np.median(areas))


def test_augmentation_keeps_binary_and_changes_the_canvas():
    rng = np.random.default_rng(0)
    canvas = np.zeros((64, 64), np.uint8)
    canvas[20:30, 10:50] = 255
    augmented = Augmentation(dilation_probability=1.0)(canvas, rng)
    assert augmented.shape == canvas.shape and set(np.unique(augmented)) <= {0, 255}
    assert not np.array_equal(augmented, canvas)
    with pytest.raises(ValueError, match="max_zoom"):
        Augmentation(max_zoom=0.5)
    with pytest.raises(ValueError, match="dilation_probability"):
        Augmentation(dilation_probability=2.0)


def test_parse_bins():
    assert parse_bins("paper") == list(PAPER_BINS)
    assert parse_bins("0.01-0.1, 0.3-0.4") == [(0.01, 0.1), (0.3, 0.4)]
    assert parse_bins(".5-1") == [(0.5, 1.0)]


@pytest.mark.parametrize(
    "text, match",
    [
        ("0.2-0.1", "lo < hi"),
        ("0.5-1.5", r"inside \[0, 1\]"),
        ("0.1", "lo-hi pairs"),
        ("papers", "lo-hi pairs"),
        ("0.1-0.2,,0.3-0.4", "lo-hi pairs"),
        ("0.1-0.2,0.1-0.2", "twice"),
    ],
)
def test_parse_bins_rejects_bad_text(text, match):
    with pytest.raises(ValueError, match=match):
        parse_bins(text)


# ---------------------------------------------------------------------------------------------
# Outline shape: border masks are as irregular as free ones


def test_straight_edge_share_tells_a_square_from_a_blob():
    square = np.ones((64, 64), np.uint8)
    square[16:48, 16:48] = 0
    assert straight_edge_share(square) == pytest.approx(1.0)
    disc = np.ones((256, 256), np.uint8)
    yy, xx = np.mgrid[:256, :256]
    disc[(yy - 128) ** 2 + (xx - 128) ** 2 < 60**2] = 0
    assert straight_edge_share(disc) == 0.0  # no flat run of 26 px on a digital circle
    assert straight_edge_share(np.ones((8, 8), np.uint8)) == 0.0  # no hole
    assert straight_edge_share(np.zeros((8, 8), np.uint8)) == 0.0  # all hole, no outline
    free = np.ones((64, 64), np.uint8)
    free[:, :32] = 0  # a hole against the image edge: only its inner side is an outline
    assert straight_edge_share(free) == pytest.approx(1.0)


@pytest.mark.parametrize("hole_range", [(0.4, 0.5), (0.5, 0.6)])
def test_large_border_masks_have_no_straight_frame_edges(hole_range):
    # Before the ragged band: a mean share of 0.13 (0.4-0.5) and 0.35 (0.5-0.6) at this size.
    generator = MaskGenerator(256, 256, hole_range=hole_range, border=25)
    masks = [generator(np.random.default_rng(seed)) for seed in range(10)]
    assert np.mean([straight_edge_share(mask) for mask in masks]) < 0.05
    for mask in masks:
        lo, hi = hole_range
        assert lo < hole_ratio(mask) <= hi
        assert mask[:25].all() and mask[-25:].all() and mask[:, :25].all() and mask[:, -25:].all()
