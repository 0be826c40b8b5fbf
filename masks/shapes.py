"""Hole shapes drawn with OpenCV (and one with numpy): one callable class per shape type.

Every shape draws onto a *hole canvas*: a uint8 (h, w) array where 255 marks a hole and 0 a
known pixel (the inverse of the public mask convention, because OpenCV draws foreground). A
shape is asked for roughly ``budget`` hole pixels; it may cover fewer (overlap, clipping at the
canvas edge) or somewhat more, and the caller checks the real count.

Thicknesses and radii scale with ``scale``, the smaller side of the full image, so masks look
alike at every resolution.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

HOLE = 255


def _thickness(budget: float, scale: int, fraction: tuple[float, float], rng) -> int:
    """Random stroke thickness in pixels, never wider than a square of ``budget`` pixels."""
    thickness = rng.uniform(*fraction) * scale
    return max(1, int(min(thickness, math.sqrt(max(budget, 1.0)))))


def _reflect(values: np.ndarray, size: int) -> np.ndarray:
    """Fold coordinates back into [0, size - 1] as if the walk bounced off the edges."""
    if size <= 1:
        return np.zeros_like(values)
    period = 2 * (size - 1)
    folded = np.abs(np.mod(values, period))
    return np.where(folded > size - 1, period - folded, folded)


class StrokeShape:
    """Free-form brush stroke: a random walk of thick segments with round joints.

    Args:
        scale: Smaller side of the full image in pixels.
        thickness: Range of the brush width as a fraction of ``scale``.
        vertices: Range (inclusive) of the number of segments per stroke.
        turn: Standard deviation of the direction change at each joint, in radians.
    """

    def __init__(
        self,
        scale: int,
        thickness: tuple[float, float] = (0.015, 0.07),
        vertices: tuple[int, int] = (3, 10),
        turn: float = 1.0,
    ) -> None:
        self.scale = scale
        self.thickness = thickness
        self.vertices = vertices
        self.turn = turn

    def __call__(self, canvas: np.ndarray, budget: float, rng: np.random.Generator) -> None:
        height, width = canvas.shape
        thickness = _thickness(budget, self.scale, self.thickness, rng)
        count = int(rng.integers(self.vertices[0], self.vertices[1] + 1))
        segment = min(budget / thickness / count, 0.6 * self.scale)
        angles = rng.uniform(0, 2 * math.pi) + np.cumsum(rng.normal(0.0, self.turn, count))
        lengths = segment * rng.uniform(0.5, 1.5, count)
        start = rng.uniform((0, 0), (width, height))
        # (count,) steps -> (count + 1, 2) vertices, starting at `start`.
        steps = np.stack([np.cos(angles) * lengths, np.sin(angles) * lengths], axis=1)
        points = np.vstack([start, start + np.cumsum(steps, axis=0)])
        points[:, 0] = _reflect(points[:, 0], width)
        points[:, 1] = _reflect(points[:, 1], height)
        points = np.rint(points).astype(np.int32)
        cv2.polylines(canvas, [points], False, HOLE, thickness)
        radius = thickness // 2
        if radius > 0:
            for x, y in points.tolist():
                cv2.circle(canvas, (x, y), radius, HOLE, -1)


class LineShape:
    """A single straight thick line.

    Args:
        scale: Smaller side of the full image in pixels.
        thickness: Range of the line width as a fraction of ``scale``.
    """

    def __init__(self, scale: int, thickness: tuple[float, float] = (0.01, 0.05)) -> None:
        self.scale = scale
        self.thickness = thickness

    def __call__(self, canvas: np.ndarray, budget: float, rng: np.random.Generator) -> None:
        height, width = canvas.shape
        thickness = _thickness(budget, self.scale, self.thickness, rng)
        length = min(budget / thickness, 1.5 * self.scale)
        angle = rng.uniform(0, math.pi)
        x0, y0 = rng.uniform((0, 0), (width, height))
        x1, y1 = x0 + length * math.cos(angle), y0 + length * math.sin(angle)
        cv2.line(canvas, (round(x0), round(y0)), (round(x1), round(y1)), HOLE, thickness)


class CircleShape:
    """A filled disc.

    Args:
        scale: Smaller side of the full image in pixels.
        max_radius: Largest radius as a fraction of ``scale``.
    """

    def __init__(self, scale: int, max_radius: float = 0.2) -> None:
        self.scale = scale
        self.max_radius = max_radius

    def __call__(self, canvas: np.ndarray, budget: float, rng: np.random.Generator) -> None:
        height, width = canvas.shape
        radius = math.sqrt(budget / math.pi) * rng.uniform(0.7, 1.1)
        radius = int(min(max(radius, 1.0), self.max_radius * self.scale))
        x, y = rng.uniform((0, 0), (width, height))
        cv2.circle(canvas, (int(x), int(y)), radius, HOLE, -1)


class EllipseShape:
    """A filled, randomly rotated ellipse.

    Args:
        scale: Smaller side of the full image in pixels.
        max_axis: Largest semi-axis as a fraction of ``scale``.
        max_aspect: Largest ratio of the long to the short semi-axis.
    """

    def __init__(self, scale: int, max_axis: float = 0.3, max_aspect: float = 4.0) -> None:
        self.scale = scale
        self.max_axis = max_axis
        self.max_aspect = max_aspect

    def __call__(self, canvas: np.ndarray, budget: float, rng: np.random.Generator) -> None:
        height, width = canvas.shape
        aspect = rng.uniform(1.0, self.max_aspect)
        # area = pi * a * b with a = aspect * b.
        short = math.sqrt(budget / (math.pi * aspect)) * rng.uniform(0.7, 1.1)
        limit = self.max_axis * self.scale
        long_axis = int(min(max(aspect * short, 1.0), limit))
        short_axis = int(min(max(short, 1.0), limit))
        x, y = rng.uniform((0, 0), (width, height))
        angle = rng.uniform(0.0, 180.0)
        cv2.ellipse(canvas, (int(x), int(y)), (long_axis, short_axis), angle, 0, 360, HOLE, -1)


def place_box(
    canvas: np.ndarray, box_width: int, box_height: int, margin: int, rng: np.random.Generator
) -> None:
    """Fill an axis-aligned box of the given sides at a random place on a hole canvas.

    The box lies wholly inside the canvas less a ``margin``-pixel frame; sides that do not fit
    are shortened to the room there is (at least 1 pixel).

    Args:
        canvas: uint8 (h, w) hole canvas, 255 = hole; changed in place.
        box_width: Box width in pixels (>= 1).
        box_height: Box height in pixels (>= 1).
        margin: Pixels kept free of the box along each canvas side (>= 0).
        rng: Random source for the position.
    """
    height, width = canvas.shape
    room_x, room_y = max(1, width - 2 * margin), max(1, height - 2 * margin)
    box_width, box_height = min(max(1, box_width), room_x), min(max(1, box_height), room_y)
    left = min(margin, width - 1) + int(rng.integers(room_x - box_width + 1))
    top = min(margin, height - 1) + int(rng.integers(room_y - box_height + 1))
    canvas[top : top + box_height, left : left + box_width] = HOLE


class BoxShape:
    """A filled axis-aligned rectangle (the box holes of LaMa's evaluation masks).

    Args:
        scale: Smaller side of the full image in pixels.
        max_side: Longest side as a fraction of ``scale``.
        max_aspect: Largest ratio of the long to the short side.
    """

    def __init__(self, scale: int, max_side: float = 0.5, max_aspect: float = 3.0) -> None:
        self.scale = scale
        self.max_side = max_side
        self.max_aspect = max_aspect

    def __call__(self, canvas: np.ndarray, budget: float, rng: np.random.Generator) -> None:
        aspect = rng.uniform(1.0, self.max_aspect)
        # area = long * short with long = aspect * short.
        short = math.sqrt(max(budget, 1.0) / aspect) * rng.uniform(0.8, 1.1)
        limit = max(1.0, self.max_side * self.scale)
        sides = [round(min(aspect * short, limit)), round(min(short, limit))]
        if rng.random() < 0.5:
            sides.reverse()
        place_box(canvas, sides[0], sides[1], 0, rng)


SHAPES = {
    "stroke": StrokeShape,
    "line": LineShape,
    "circle": CircleShape,
    "ellipse": EllipseShape,
    "box": BoxShape,  # not a default shape (the default masks stay as they were): ask by name
}
DEFAULT_SHAPE_WEIGHTS = {"stroke": 0.6, "line": 0.15, "circle": 0.1, "ellipse": 0.15}
