"""LaMa's random thin / medium / thick evaluation masks as presets (``generate --preset``).

The parameters are those of LaMa's mask-generation configs (github.com/advimman/lama, read at
commit 786f593; Suvorov et al., "Resolution-robust Large Mask Inpainting with Fourier
Convolutions", WACV 2022, Sec. 4):

- ``configs/data_gen/random_thin_256.yaml``, ``configs/data_gen/random_thin_512.yaml``
- ``configs/data_gen/random_medium_256.yaml``, ``configs/data_gen/random_medium_512.yaml``
- ``configs/data_gen/random_thick_256.yaml``, ``configs/data_gen/random_thick_512.yaml``

which ``bin/gen_mask_dataset.py`` feeds to the ``MixedMaskGenerator`` of
``saicinpainting/training/data/masks.py``. The code here is our own; what it reproduces is the
distribution of masks that script makes for a square photo:

- Each mask is *either* strokes *or* boxes, picked with probability ``irregular_proba`` :
  ``box_proba`` (thin: strokes only; medium and thick: 1 : 0.3, i.e. 23 % box masks).
- Strokes: ``min_times`` to ``max_times + 1`` strokes (LaMa's generator, called without a
  training step as its script does, allows one more than the config says). A stroke starts at
  a uniform pixel and has 1 to 5 straight segments drawn with round caps; each segment's
  direction is one of ``max_angle`` fixed angles (0.01, 1.01, 2.01, ... radians, mirrored for
  every other stroke), its length uniform in ``[min_len, min_len + max_len - 1]``, its width
  in ``[min_width, min_width + max_width - 1]``, and it ends clipped to the image.
- Boxes: ``min_times`` to ``max_times`` filled axis-aligned boxes, each side uniform in
  ``[bbox_min_size, bbox_max_size]``, placed uniformly inside a ``margin``-pixel frame.
- A mask with more than half of its pixels in holes is drawn again (LaMa's
  ``max_tamper_area: 0.5`` drops such candidates), so every ratio is in (0, 0.5].

Sizes: LaMa gives each preset at 256 and 512 pixels, and the two are not scaled copies of each
other (thin at 512 has more strokes, not just wider ones). A ``size`` uses the config of the
nearer of the two (below 384: the 256 config) with every length in pixels (widths, lengths,
margin, box sides, and LaMa's fixed smallest width 5 and length 10) multiplied by
``size / base`` and rounded half up, at least 1 (the margin may be 0); counts, angles and
probabilities stay as they are. At 256 and 512 the parameters are LaMa's own.

Where LaMa differs: it draws on the photo resized to a short side of 256 or 512 and then crops
a square around the holes; we draw on the square directly, which is what LaMa does for a
square photo. It picks one of 5 candidates that pass the 0.5 limit; we redraw until one
passes, which gives the same distribution. Its global ``np.random`` becomes an explicit
per-mask ``np.random.Generator`` (``STYLE.md`` section 8).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import cv2
import numpy as np

from inpainting.engine.errors import UserInputError
from masks.shapes import HOLE, place_box

# Bump whenever a seed would give a different preset mask, so old sets are not silently mixed.
PRESET_VERSION = 1
MIN_PRESET_SIZE = 32  # below this LaMa's boxes and strokes no longer scale to whole pixels
_BASE_SIZES = (256, 512)
# Draws of one mask before giving up: about 40 % of thick's raw draws go over the hole limit,
# so 100 failures in a row (0.4 ** 100) only happen when the parameters are broken.
_MAX_ATTEMPTS = 100
_MAX_SEGMENTS = 5  # segments per stroke: 1 to 5


@dataclass(frozen=True)
class StrokeParams:
    """LaMa's ``irregular_kwargs``; lengths in pixels at the preset's size.

    ``min_width`` and ``min_len`` are constants of LaMa's generator (5 and 10 pixels at both
    256 and 512), listed here because they scale with the size like the rest.
    """

    min_times: int
    max_times: int
    max_width: int
    max_angle: int
    max_len: int
    min_width: int = 5
    min_len: int = 10


@dataclass(frozen=True)
class BoxParams:
    """LaMa's ``box_kwargs``; lengths in pixels at the preset's size."""

    min_times: int
    max_times: int
    margin: int
    bbox_min_size: int
    bbox_max_size: int


@dataclass(frozen=True)
class PresetParams:
    """Everything that makes a preset's masks at one size (see the module docstring).

    Attributes:
        source: The LaMa config the values come from (repository and path).
        base_size: The size that config is for (256 or 512).
        size: The size these values are scaled to.
        irregular_proba: Relative weight of stroke masks.
        irregular: Stroke parameters.
        box_proba: Relative weight of box masks (0: none).
        box: Box parameters, None when ``box_proba`` is 0.
        max_hole_ratio: Masks with a larger hole ratio are drawn again.
    """

    source: str
    base_size: int
    size: int
    irregular_proba: float
    irregular: StrokeParams
    box_proba: float
    box: BoxParams | None
    max_hole_ratio: float = 0.5

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types, as written to a set's ``manifest.json`` (``preset_params``)."""
        return asdict(self)


def _lama(name: str, size: int, strokes: StrokeParams, box_proba: float = 0.0,
          box: BoxParams | None = None) -> PresetParams:
    source = f"advimman/lama configs/data_gen/random_{name}_{size}.yaml"
    return PresetParams(source, size, size, 1.0, strokes, box_proba, box)


# The values of the six config files, as written there (irregular_proba is 1 in all of them).
_LAMA_CONFIGS: dict[str, dict[int, PresetParams]] = {
    "thin": {
        256: _lama("thin", 256, StrokeParams(min_times=4, max_times=50, max_width=10,
                                             max_angle=4, max_len=40)),
        512: _lama("thin", 512, StrokeParams(min_times=4, max_times=70, max_width=20,
                                             max_angle=4, max_len=100)),
    },
    "medium": {
        256: _lama("medium", 256,
                   StrokeParams(min_times=4, max_times=5, max_width=50, max_angle=4, max_len=100),
                   0.3, BoxParams(min_times=1, max_times=5, margin=0, bbox_min_size=10,
                                  bbox_max_size=50)),
        512: _lama("medium", 512,
                   StrokeParams(min_times=4, max_times=10, max_width=100, max_angle=4,
                                max_len=200),
                   0.3, BoxParams(min_times=1, max_times=5, margin=0, bbox_min_size=30,
                                  bbox_max_size=150)),
    },
    "thick": {
        256: _lama("thick", 256,
                   StrokeParams(min_times=1, max_times=5, max_width=100, max_angle=4,
                                max_len=200),
                   0.3, BoxParams(min_times=1, max_times=3, margin=10, bbox_min_size=30,
                                  bbox_max_size=150)),
        512: _lama("thick", 512,
                   StrokeParams(min_times=1, max_times=5, max_width=250, max_angle=4,
                                max_len=450),
                   0.3, BoxParams(min_times=1, max_times=4, margin=10, bbox_min_size=30,
                                  bbox_max_size=300)),
    },
}
PRESETS: tuple[str, ...] = tuple(_LAMA_CONFIGS)


def _scale(value: int, factor: float, minimum: int = 1) -> int:
    return max(minimum, math.floor(value * factor + 0.5))  # rounded half up


def preset_params(name: str, size: int) -> PresetParams:
    """The parameters of preset ``name`` for ``size`` x ``size`` masks.

    Args:
        name: One of :data:`PRESETS`.
        size: Mask side in pixels, at least :data:`MIN_PRESET_SIZE`.

    Returns:
        LaMa's config for the nearer of 256 and 512, its pixel lengths scaled by
        ``size / base`` (see the module docstring).

    Raises:
        UserInputError: For an unknown name (the message lists the valid ones) or a size
            below :data:`MIN_PRESET_SIZE`.
    """
    if name not in _LAMA_CONFIGS:
        raise UserInputError(f"unknown mask preset {name!r} (valid: {', '.join(PRESETS)})")
    if size < MIN_PRESET_SIZE:
        raise UserInputError(f"mask preset {name!r} needs a size of at least "
                             f"{MIN_PRESET_SIZE} pixels, got {size}")
    base = min(_BASE_SIZES, key=lambda b: (abs(size - b), b))  # a tie (384) goes to 256
    params = _LAMA_CONFIGS[name][base]
    factor = size / base
    strokes = params.irregular
    strokes = replace(
        strokes,
        max_width=_scale(strokes.max_width, factor),
        max_len=_scale(strokes.max_len, factor),
        min_width=_scale(strokes.min_width, factor),
        min_len=_scale(strokes.min_len, factor),
    )
    box = params.box
    if box is not None:
        box = replace(
            box,
            margin=_scale(box.margin, factor, minimum=0),
            bbox_min_size=_scale(box.bbox_min_size, factor),
            bbox_max_size=_scale(box.bbox_max_size, factor),
        )
    return replace(params, size=size, irregular=strokes, box=box)


class LamaStrokes:
    """Irregular stroke masks: a few polylines of thick straight segments (module docstring).

    Args:
        params: Stroke parameters in pixels.
    """

    def __init__(self, params: StrokeParams) -> None:
        self.params = params

    def __call__(self, canvas: np.ndarray, rng: np.random.Generator) -> None:
        """Draw the strokes of one mask onto a uint8 hole canvas (255 = hole), in place."""
        params = self.params
        height, width = canvas.shape
        strokes = int(rng.integers(params.min_times, params.max_times + 2))
        for stroke in range(strokes):
            x, y = int(rng.integers(width)), int(rng.integers(height))
            for _ in range(int(rng.integers(1, _MAX_SEGMENTS + 1))):
                angle = 0.01 + int(rng.integers(params.max_angle))
                if stroke % 2 == 0:
                    angle = 2 * math.pi - angle  # every other stroke turns the other way
                length = params.min_len + int(rng.integers(params.max_len))
                brush = params.min_width + int(rng.integers(params.max_width))
                # Truncate towards zero, then clip; the end may sit one pixel past the image.
                end_x = min(max(int(x + length * math.sin(angle)), 0), width)
                end_y = min(max(int(y + length * math.cos(angle)), 0), height)
                cv2.line(canvas, (x, y), (end_x, end_y), HOLE, brush)
                x, y = end_x, end_y


class LamaBoxes:
    """Box masks: a few filled axis-aligned rectangles inside a margin (module docstring).

    Args:
        params: Box parameters in pixels.
    """

    def __init__(self, params: BoxParams) -> None:
        self.params = params

    def __call__(self, canvas: np.ndarray, rng: np.random.Generator) -> None:
        """Draw the boxes of one mask onto a uint8 hole canvas (255 = hole), in place."""
        params = self.params
        height, width = canvas.shape
        # A side is at most the room inside the margin less one pixel, as in LaMa.
        largest = max(1, min(params.bbox_max_size, height - 2 * params.margin - 1,
                             width - 2 * params.margin - 1))
        smallest = min(params.bbox_min_size, largest)
        for _ in range(int(rng.integers(params.min_times, params.max_times + 1))):
            box_width = int(rng.integers(smallest, largest + 1))
            box_height = int(rng.integers(smallest, largest + 1))
            place_box(canvas, box_width, box_height, params.margin, rng)


class PresetGenerator:
    """Masks of one LaMa evaluation preset (thin, medium or thick) at one size.

    Args:
        name: One of :data:`PRESETS`.
        size: Mask side in pixels, at least :data:`MIN_PRESET_SIZE`.

    Attributes:
        params: The preset's parameters at this size (:func:`preset_params`).
        kinds: The mask kinds it mixes: :class:`LamaStrokes`, and :class:`LamaBoxes` if any.
        probabilities: The chance of each kind, in the order of ``kinds``.

    Raises:
        UserInputError: For an unknown preset or a too small size.

    Example:
        >>> generator = PresetGenerator("thick", 256)
        >>> mask = generator(np.random.default_rng(7))  # uint8 (256, 256), 1 = known, 0 = hole
    """

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.params = preset_params(name, size)
        kinds: list[tuple[float, Any]] = [(self.params.irregular_proba,
                                           LamaStrokes(self.params.irregular))]
        if self.params.box is not None and self.params.box_proba > 0:
            kinds.append((self.params.box_proba, LamaBoxes(self.params.box)))
        weights = np.array([weight for weight, _ in kinds])
        self.probabilities = weights / weights.sum()  # of each kind in ``kinds``
        self.kinds = [kind for _, kind in kinds]
        self._max_holes = math.floor(self.params.max_hole_ratio * size * size)

    def __call__(self, rng: np.random.Generator) -> np.ndarray:
        """Make one mask.

        Args:
            rng: Random source of this mask alone (e.g. ``np.random.default_rng(seed)``), so
                the mask can be made again from its seed.

        Returns:
            uint8 (size, size) mask, 1 = known, 0 = hole, hole ratio in (0, max_hole_ratio].
        """
        size = self.params.size
        canvas = np.zeros((size, size), np.uint8)
        for _ in range(_MAX_ATTEMPTS):
            canvas[:] = 0
            kind = self.kinds[rng.choice(len(self.kinds), p=self.probabilities)]
            kind(canvas, rng)
            if 0 < cv2.countNonZero(canvas) <= self._max_holes:
                return (canvas == 0).view(np.uint8)
        raise RuntimeError(f"preset {self.name!r} drew {_MAX_ATTEMPTS} masks over the hole "
                           f"limit of {self.params.max_hole_ratio} in a row; its parameters "
                           "are broken")
