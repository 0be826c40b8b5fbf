"""The paper's augmentation of raw masks: random rotation, cropping, translation and dilation.

Liu et al. (ECCV 2018, Sec. 4.1) augment their raw occlusion masks by random dilation, rotation
and cropping; translation is added here. Rotation, cropping (a zoom into a random window, then
resizing back) and translation are one affine warp with nearest-neighbour sampling, so the
result stays exactly binary.

Works on a *hole canvas* (uint8 (h, w), 255 = hole, 0 = known); see :mod:`masks.shapes`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Augmentation:
    """Random geometric augmentation of a hole canvas.

    Attributes:
        max_rotation: Rotation angle drawn uniformly in [-max_rotation, max_rotation] degrees.
        max_zoom: The crop window is 1 / zoom of the canvas side, zoom uniform in [1, max_zoom].
        max_translation: Shift drawn uniformly in +-max_translation of the canvas side.
        dilation_probability: Chance of a dilation after the warp.
        max_dilation: Largest dilation kernel side as a fraction of the smaller canvas side.
    """

    max_rotation: float = 180.0
    max_zoom: float = 1.4
    max_translation: float = 0.15
    dilation_probability: float = 0.5
    max_dilation: float = 0.02

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_rotation <= 180.0:
            raise ValueError(f"max_rotation must be in [0, 180], got {self.max_rotation}")
        if self.max_zoom < 1.0:
            raise ValueError(f"max_zoom must be >= 1, got {self.max_zoom}")
        for name, upper in (("max_translation", 1.0), ("dilation_probability", 1.0)):
            if not 0.0 <= getattr(self, name) <= upper:
                raise ValueError(f"{name} must be in [0, {upper:g}], got {getattr(self, name)}")
        if not 0.0 <= self.max_dilation <= 0.5:
            raise ValueError(f"max_dilation must be in [0, 0.5], got {self.max_dilation}")

    def __call__(self, canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return an augmented copy of ``canvas`` (uint8 (h, w), 255 = hole, 0 = known)."""
        height, width = canvas.shape
        angle = rng.uniform(-self.max_rotation, self.max_rotation)
        zoom = rng.uniform(1.0, self.max_zoom)
        # Rotating and zooming about a random point inside the canvas crops a random window.
        centre = rng.uniform((0, 0), (width, height))
        matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, zoom)
        shift = rng.uniform(-self.max_translation, self.max_translation, 2)
        matrix[:, 2] += shift * (width, height)
        out = cv2.warpAffine(
            canvas,
            matrix,
            (width, height),
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        largest = int(self.max_dilation * min(height, width))
        if largest >= 2 and rng.random() < self.dilation_probability:
            side = 2 * int(rng.integers(1, largest // 2 + 1)) + 1  # odd kernel side in [3, ...]
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
            out = cv2.dilate(out, kernel)
        return out
