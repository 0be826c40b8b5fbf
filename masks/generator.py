"""Irregular-hole mask generator with an exact hole-ratio range.

A mask is made in three phases on a hole canvas (255 = hole), which covers only the part of the
image where holes are allowed (everything but a ``border``-pixel frame):

1. *raw*: random shapes (strokes, lines, circles, ellipses; :mod:`masks.shapes`) up to a random
   fraction of a target hole count drawn uniformly in the requested range;
2. *augment*: the paper's random rotation, cropping, translation and dilation
   (:mod:`masks.augment`); if that overshoots the target, the holes are eroded back;
3. *grow*: more shapes, each sized to the remaining deficit, until the target is reached. A shape
   that would overshoot the range is undone and retried at half the size, so the result always
   lands in the range without rejecting whole masks, and large ratios cost about as much as
   small ones.

With a border, holes are also kept out of a *ragged band* along the inside of the frame: a
smooth random width profile per side (``_ragged_band``) whose area takes part of the room the
target leaves. Without it, shapes are cut off straight at the frame and large holes fill the
interior to a solid square; with it, where a hole meets the frame its outline is as irregular
as elsewhere (``masks.stats.straight_edge_share`` measures this).

Reference: Liu et al., "Image Inpainting for Irregular Holes Using Partial Convolutions",
ECCV 2018, Sec. 4.1 (hole-ratio bins and the 50-pixel border of the test masks).
"""

from __future__ import annotations

import math
import re

import cv2
import numpy as np

from inpainting.engine.errors import UserInputError
from masks.augment import Augmentation
from masks.shapes import DEFAULT_SHAPE_WEIGHTS, HOLE, SHAPES

# Bump whenever a seed would give a different mask, so old mask sets are not silently mixed.
GENERATOR_VERSION = 2  # 2: the ragged band along the border
PAPER_BINS: tuple[tuple[float, float], ...] = (
    (0.01, 0.1),
    (0.1, 0.2),
    (0.2, 0.3),
    (0.3, 0.4),
    (0.4, 0.5),
    (0.5, 0.6),
)
_MAX_GROW_STEPS = 400
_ERODE_KERNEL = np.ones((3, 3), np.uint8)
# The ragged band takes this share of the room the target leaves, and at most this share of the
# canvas side as its mean width; its knots (per side) are exponential, so a few bite deep.
_BAND_ROOM_SHARE = (0.5, 0.9)
_BAND_MAX_MEAN_WIDTH = 0.08
_BAND_KNOTS = (4, 12)  # coarse knots per side
_BAND_FINE_SPACING = 8  # pixels between the knots of the fine ripple
_BAND_RIPPLE = 3.0  # mean depth of the fine ripple in pixels (at most half the band's mean)
MAX_BINS = 100  # bins in one set; more would only be a typo (and quadratic to check)
_BIN_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*-\s*([0-9]*\.?[0-9]+)\s*$")


def check_range(lo: float, hi: float) -> tuple[float, float]:
    """Validate a hole-ratio range (lo, hi] and return it as floats.

    Raises:
        UserInputError: Unless 0 <= lo < hi <= 1.
    """
    lo, hi = float(lo), float(hi)
    if not (0.0 <= lo <= 1.0 and 0.0 <= hi <= 1.0):
        raise UserInputError(f"hole-ratio range ({lo:g}, {hi:g}] must lie inside [0, 1]")
    if lo >= hi:
        raise UserInputError(f"hole-ratio range ({lo:g}, {hi:g}] needs lo < hi")
    return lo, hi


def parse_bins(text: str) -> list[tuple[float, float]]:
    """Parse hole-ratio bins from the command line.

    Args:
        text: ``"paper"`` for :data:`PAPER_BINS`, or comma-separated ``lo-hi`` pairs such as
            ``"0.01-0.1,0.3-0.4"``; each bin is the half-open range (lo, hi].

    Returns:
        The bins as a list of (lo, hi) float pairs, in the given order.

    Raises:
        UserInputError: If the text is malformed, a bin lies outside [0, 1], has lo >= hi, a
            bin is repeated, or there are more than :data:`MAX_BINS` bins.
    """
    if text.strip().lower() == "paper":
        return list(PAPER_BINS)
    parts = text.split(",")
    if len(parts) > MAX_BINS:
        raise UserInputError(f"{len(parts)} bins are over the limit of {MAX_BINS}; use fewer")
    bins: list[tuple[float, float]] = []
    for part in parts:
        match = _BIN_PATTERN.match(part)
        if match is None:
            raise UserInputError(
                f"bad bin {part.strip()!r} in {text!r}: use 'paper' or lo-hi pairs "
                "like '0.01-0.1,0.3-0.4'"
            )
        bin_range = check_range(float(match.group(1)), float(match.group(2)))
        if bin_range in bins:
            raise UserInputError(f"bin {part.strip()!r} is given twice in {text!r}")
        bins.append(bin_range)
    return bins


def derive_rng(*keys: int) -> np.random.Generator:
    """A generator determined only by integer keys, e.g. ``derive_rng(seed, epoch, index)``.

    Use it in a Dataset's ``__getitem__`` so each sample's mask is reproducible whatever the
    number of DataLoader workers: ``mask = generator(derive_rng(seed, epoch, index))``.
    """
    return np.random.default_rng([int(key) for key in keys])


def count_bounds(lo: float, hi: float, pixels: int) -> tuple[int, int]:
    """Smallest and largest hole-pixel counts ``n`` with ``lo < n / pixels <= hi``.

    Uses the same float division as :func:`masks.hole_ratio`, so the bounds agree with it
    exactly. The result has ``first > last`` when no count fits.
    """
    first = math.floor(lo * pixels) + 1
    while first > 0 and (first - 1) / pixels > lo:
        first -= 1
    while first / pixels <= lo:
        first += 1
    last = math.floor(hi * pixels)
    while (last + 1) / pixels <= hi:
        last += 1
    while last > 0 and last / pixels > hi:
        last -= 1
    return first, last


class MaskGenerator:
    """Random irregular-hole masks whose hole ratio lies in ``(lo, hi]``.

    Args:
        height: Mask height in pixels.
        width: Mask width in pixels.
        hole_range: (lo, hi) with 0 <= lo < hi <= 1; every mask's hole ratio r satisfies
            lo < r <= hi exactly (as computed by :func:`masks.hole_ratio`).
        border: If set, no hole pixel lies within this many pixels of the image edge (the paper
            uses 50 at 512x512). ``None`` or 0 allows holes everywhere.
        rng: Default random source: a ``np.random.Generator``, an integer seed, or ``None`` for
            fresh OS entropy. Never the global ``np.random`` state.
        shape_weights: Relative frequency of each shape (``stroke``, ``line``, ``circle``,
            ``ellipse``); defaults to mostly strokes.
        augmentation: Raw-mask augmentation; ``None`` uses :class:`Augmentation` defaults.

    Raises:
        UserInputError: If the range is invalid, the border leaves no room or the range cannot
            be met at this size (all come from the user's settings).
        ValueError: If a size is not positive or a shape weight is unknown or negative.

    Example:
        >>> generator = MaskGenerator(512, 512, hole_range=(0.1, 0.2), rng=0)
        >>> mask = generator()  # uint8 (512, 512), 1 = known, 0 = hole
    """

    def __init__(
        self,
        height: int,
        width: int,
        hole_range: tuple[float, float] = (0.01, 0.6),
        border: int | None = None,
        rng: np.random.Generator | int | None = None,
        shape_weights: dict[str, float] | None = None,
        augmentation: Augmentation | None = None,
    ) -> None:
        if int(height) <= 0 or int(width) <= 0:
            raise ValueError(f"mask size must be positive, got {height}x{width}")
        self.height, self.width = int(height), int(width)
        self.hole_range = check_range(*hole_range)
        self.border = int(border or 0)
        if self.border < 0 or 2 * self.border >= min(self.height, self.width):
            raise UserInputError(
                f"border {border} leaves no room for holes in a {self.height}x{self.width} mask "
                f"(need 0 <= border < {(min(self.height, self.width) + 1) // 2})"
            )
        pixels = self.height * self.width
        interior = (self.height - 2 * self.border) * (self.width - 2 * self.border)
        self._first, last = count_bounds(*self.hole_range, pixels)
        self._last = min(last, interior)
        if self._first > self._last:
            raise UserInputError(
                f"no {self.height}x{self.width} mask with border {self.border} has a hole ratio "
                f"in ({self.hole_range[0]:g}, {self.hole_range[1]:g}]; widen the range or "
                "enlarge the mask"
            )
        self._rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self._shapes, self._weights = self._build_shapes(shape_weights or DEFAULT_SHAPE_WEIGHTS)
        self._augment = augmentation or Augmentation()

    def _build_shapes(self, weights: dict[str, float]) -> tuple[list, np.ndarray]:
        unknown = sorted(set(weights) - set(SHAPES))
        if unknown:
            raise ValueError(f"unknown shape {unknown[0]!r} (valid: {', '.join(SHAPES)})")
        values = np.array([float(weights[name]) for name in weights])
        if np.any(values < 0) or values.sum() <= 0:
            raise ValueError(f"shape weights must be >= 0 with a positive sum, got {weights}")
        scale = min(self.height, self.width)
        shapes = [SHAPES[name](scale) for name in weights]
        return shapes, values / values.sum()

    def __call__(self, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """Make one mask.

        Args:
            rng: Random source for this mask (a generator or an integer seed); defaults to the
                generator's own. Pass a per-sample generator (see :func:`derive_rng`) for
                results that do not depend on DataLoader workers.

        Returns:
            uint8 (height, width) mask, 1 = known, 0 = hole, hole ratio in (lo, hi].
        """
        if rng is None:
            rng = self._rng
        elif not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        b = self.border
        canvas = np.zeros((self.height - 2 * b, self.width - 2 * b), np.uint8)
        target = int(rng.integers(self._first, self._last + 1))
        band = _ragged_band(canvas.shape, canvas.size - target, rng) if b else None
        self._grow(canvas, int(target * rng.uniform(0.4, 0.8)), rng, False, band)
        canvas = self._augment(canvas, rng)
        _clear(canvas, band)
        while cv2.countNonZero(canvas) > target:
            canvas = cv2.erode(canvas, _ERODE_KERNEL, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        self._grow(canvas, target, rng, True, band)
        known = np.ones((self.height, self.width), np.uint8)
        known[b : self.height - b, b : self.width - b] = canvas == 0
        return known

    def _grow(
        self, canvas: np.ndarray, target: int, rng: np.random.Generator, undo_overshoot: bool,
        band: np.ndarray | None = None,
    ) -> None:
        """Draw shapes onto ``canvas`` until it holds at least ``target`` hole pixels.

        With ``undo_overshoot`` a shape that pushes the count past the upper bound is undone
        and retried at half the size; when shapes get tiny, single pixels finish the job.
        Pixels of ``band`` (``_ragged_band``) stay known.
        """
        count = cv2.countNonZero(canvas)
        backup = np.empty_like(canvas)
        shrink = 1.0
        for _ in range(_MAX_GROW_STEPS):
            if count >= target:
                return
            free = 1.0 - count / canvas.size
            # Only the free part of a new shape adds holes, hence the division by `free`.
            budget = (target - count) / max(free, 0.05) * rng.uniform(0.5, 1.2) * shrink
            if undo_overshoot and budget < 4.0:
                break
            if undo_overshoot:
                np.copyto(backup, canvas)
            shape = self._shapes[rng.choice(len(self._shapes), p=self._weights)]
            shape(canvas, budget, rng)
            _clear(canvas, band)
            new_count = cv2.countNonZero(canvas)
            if undo_overshoot and new_count > self._last:
                np.copyto(canvas, backup)
                shrink *= 0.5
                continue
            count = new_count
        if count < target:
            _add_edge_pixels(canvas, target - count, rng, band)


def _clear(canvas: np.ndarray, band: np.ndarray | None) -> None:
    """Make the pixels of ``band`` known again, in place (a no-op without a band)."""
    if band is not None:
        cv2.bitwise_and(canvas, band, dst=canvas)


def _add_edge_pixels(canvas: np.ndarray, number: int, rng: np.random.Generator,
                     band: np.ndarray | None = None) -> None:
    """Turn ``number`` known pixels (outside ``band``) into holes, next to holes if possible."""
    free = canvas == 0
    if band is not None:
        free &= band > 0
    grown = cv2.dilate(canvas, _ERODE_KERNEL)
    edge = np.flatnonzero((grown > 0) & free)
    if edge.size < number:
        edge = np.flatnonzero(free)
    chosen = rng.choice(edge, size=number, replace=False)
    canvas.reshape(-1)[chosen] = HOLE


def _smooth_knots(length: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` exponential knots interpolated (cubic) to ``(length,)``, clipped at 0."""
    knots = rng.exponential(1.0, max(2, count)).astype(np.float32)
    # (1, count) -> (1, length)
    return np.clip(cv2.resize(knots[None, :], (length, 1), interpolation=cv2.INTER_CUBIC)[0],
                   0.0, None)


def _width_profile(length: int, mean: float, rng: np.random.Generator) -> np.ndarray:
    """Random widths in pixels along one side, ``(length,)`` float, mean about ``mean``: a few
    broad waves plus a fine ripple a few pixels deep, so that no long stretch keeps one width
    (a straight edge) and the bites stay blob-like rather than spiky."""
    ripple = min(mean / 2, _BAND_RIPPLE)
    coarse = _smooth_knots(length, int(rng.integers(_BAND_KNOTS[0], _BAND_KNOTS[1] + 1)), rng)
    fine = _smooth_knots(length, length // _BAND_FINE_SPACING, rng)
    return (mean - ripple) * coarse + ripple * fine


def _ragged_band(shape: tuple[int, int], room: int, rng: np.random.Generator) -> np.ndarray:
    """A band along the four sides whose width varies smoothly: uint8 ``shape``, 0 in the band
    and 255 elsewhere (an AND with it clears the band on a hole canvas).

    Its area is at most ``_BAND_ROOM_SHARE[1]`` of ``room`` (the known pixels the target leaves
    in the canvas), so the target still fits outside it.
    """
    height, width = shape
    share = rng.uniform(*_BAND_ROOM_SHARE)
    mean = min(share * room / (2 * (height + width)), _BAND_MAX_MEAN_WIDTH * min(shape))
    top, bottom = _width_profile(width, mean, rng), _width_profile(width, mean, rng)
    left, right = _width_profile(height, mean, rng), _width_profile(height, mean, rng)
    rows, cols = np.arange(height)[:, None], np.arange(width)[None, :]
    limit, scale = _BAND_ROOM_SHARE[1] * room, 1.0
    while True:
        band = (rows < scale * top[None, :]) | ((height - 1 - rows) < scale * bottom[None, :])
        band |= (cols < scale * left[:, None]) | ((width - 1 - cols) < scale * right[:, None])
        area = int(np.count_nonzero(band))
        if area <= limit:
            return np.where(band, np.uint8(0), np.uint8(255))
        scale *= 0.9 * limit / area  # deep bites that overlap at corners: thin the band
