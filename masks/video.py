"""Hole masks from video: occlusion and dis-occlusion regions between consecutive frames.

Liu et al. (ECCV 2018, Sec. 4.1) made their irregular training masks from the occlusion /
dis-occlusion masks of a forward-backward optical-flow consistency check between consecutive
video frames (Sundaram et al., "Dense point trajectories by GPU-accelerated large displacement
optical flow", ECCV 2010). This module does the same with OpenCV's DIS dense optical flow:

* forward flow ``F`` (frame t -> t+1) and backward flow ``B`` (t+1 -> t);
* a pixel x of frame t is *occluded* when ``|F(x) + B(x + F(x))|^2 >
  relative_tolerance * (|F(x)|^2 + |B(x + F(x))|^2) + absolute_tolerance``, i.e. going forward
  and back again does not return to x; pixels leaving the frame are ignored;
* *dis-occluded* pixels of frame t+1 are found the same way with the roles swapped;
* the union of both is closed morphologically, small specks are dropped and the result is
  optionally dilated; it becomes the hole (0) of a mask.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from inpainting.engine.errors import UserInputError
from masks.generator import check_range
from masks.io import hole_ratio, resize_mask

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OcclusionSettings:
    """How occlusions are detected and cleaned.

    Attributes:
        relative_tolerance: Sundaram et al.'s 0.01: allowed forward-backward error relative to
            the squared flow magnitudes.
        absolute_tolerance: Allowed squared forward-backward error in pixels^2. Sundaram et al.
            use 0.5 with their more accurate flow; 2.0 suits DIS (on the synthetic test videos it
            lifts the mean IoU with the true occlusions from about 0.63 to 0.72) at the cost of
            missing occlusions thinner than about 4 pixels.
        patch_size: DIS optical-flow patch side in pixels; small patches keep flow edges sharp.
        smoothness: DIS variational-refinement smoothness weight (OpenCV's default is 20).
        close_size: Side of the elliptical closing kernel that joins nearby detections, pixels.
        min_component: Connected hole regions smaller than this many pixels are dropped.
        dilation: Side of the elliptical dilation kernel applied last (0 or 1: none), pixels.
    """

    relative_tolerance: float = 0.01
    absolute_tolerance: float = 2.0
    patch_size: int = 4
    smoothness: float = 5.0
    close_size: int = 5
    min_component: int = 32
    dilation: int = 0

    def __post_init__(self) -> None:
        if self.relative_tolerance < 0 or self.absolute_tolerance < 0:
            raise ValueError("relative_tolerance and absolute_tolerance must be >= 0")
        if self.patch_size < 2:
            raise ValueError(f"patch_size must be >= 2, got {self.patch_size}")
        if self.smoothness <= 0:
            raise ValueError(f"smoothness must be > 0, got {self.smoothness}")
        for name in ("close_size", "min_component", "dilation"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def _inconsistent(forward: np.ndarray, backward: np.ndarray, settings: OcclusionSettings):
    """Pixels of the first frame whose forward flow is not undone by the backward flow.

    Args:
        forward: (H, W, 2) float32 flow from frame a to frame b, (dx, dy) in pixels.
        backward: (H, W, 2) float32 flow from frame b to frame a.

    Returns:
        (H, W) bool, True where the check fails and the target stays inside the frame.
    """
    height, width = forward.shape[:2]
    grid_x, grid_y = np.meshgrid(
        np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    )
    target_x = grid_x + forward[..., 0]
    target_y = grid_y + forward[..., 1]
    # Backward flow sampled where each pixel lands: (H, W, 2).
    back_at_target = cv2.remap(
        backward, target_x, target_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    error = np.square(forward + back_at_target).sum(axis=-1)
    magnitude = np.square(forward).sum(axis=-1) + np.square(back_at_target).sum(axis=-1)
    limit = settings.relative_tolerance * magnitude + settings.absolute_tolerance
    inside = (target_x >= 0) & (target_x <= width - 1) & (target_y >= 0) & (target_y <= height - 1)
    return (error > limit) & inside


def _clean(holes: np.ndarray, settings: OcclusionSettings) -> np.ndarray:
    """Close gaps, drop specks and dilate a uint8 (H, W) hole map (255 = hole)."""
    if settings.close_size > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (settings.close_size,) * 2)
        holes = cv2.morphologyEx(holes, cv2.MORPH_CLOSE, kernel)
    if settings.min_component > 1:
        count, labels, stats, _ = cv2.connectedComponentsWithStats(holes, connectivity=8)
        keep = stats[:, cv2.CC_STAT_AREA] >= settings.min_component
        keep[0] = False  # label 0 is the background
        holes = np.where(keep[labels], np.uint8(255), np.uint8(0))
    if settings.dilation > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (settings.dilation,) * 2)
        holes = cv2.dilate(holes, kernel)
    return holes


def occlusion_mask(
    first: np.ndarray, second: np.ndarray, settings: OcclusionSettings | None = None
) -> np.ndarray:
    """Occlusion / dis-occlusion mask between two frames.

    Args:
        first: (H, W) uint8 grey or (H, W, 3) uint8 BGR frame at time t.
        second: The frame at time t+1, same size and layout.
        settings: Detection settings; ``None`` uses :class:`OcclusionSettings` defaults.

    Returns:
        uint8 (H, W) mask, 1 = known, 0 = hole (occluded in ``first`` or dis-occluded in
        ``second``).

    Raises:
        ValueError: If the frames differ in shape.
    """
    if first.shape != second.shape:
        raise ValueError(f"frames differ in shape: {first.shape} vs {second.shape}")
    settings = settings or OcclusionSettings()
    grey = [f if f.ndim == 2 else cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in (first, second)]
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow.setPatchSize(settings.patch_size)
    flow.setPatchStride(max(1, settings.patch_size // 2))
    flow.setVariationalRefinementAlpha(settings.smoothness)
    forward = flow.calc(grey[0], grey[1], None)
    backward = flow.calc(grey[1], grey[0], None)
    holes = _inconsistent(forward, backward, settings) | _inconsistent(backward, forward, settings)
    holes = _clean(holes.view(np.uint8) * np.uint8(255), settings)
    return (holes == 0).view(np.uint8)


def _open_video(path: str | os.PathLike) -> tuple[cv2.VideoCapture, np.ndarray]:
    """Open a video and read its first frame (seeking back is unreliable for some codecs)."""
    if not os.path.isfile(path):
        raise UserInputError(f"cannot open video {os.fspath(path)!r}: no such file")
    capture = cv2.VideoCapture(os.fspath(path))
    ok, first = capture.read() if capture.isOpened() else (False, None)
    if not ok:
        capture.release()
        raise UserInputError(
            f"cannot open video {os.fspath(path)!r}: OpenCV cannot decode it "
            "(use a format its FFmpeg backend reads, e.g. .mp4 or .avi)"
        )
    return capture, first


def _frames(
    capture: cv2.VideoCapture, first: np.ndarray, frame_step: int, work_side: int | None
) -> Iterator[np.ndarray]:
    """Yield every ``frame_step``-th frame as grey uint8, shrunk so its long side <= work_side."""
    index, frame = 0, first
    try:
        while frame is not None:
            if index % frame_step == 0:
                grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
                long_side = max(grey.shape)
                if work_side is not None and long_side > work_side:
                    scale = work_side / long_side
                    grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                yield grey
            index += 1
            ok, frame = capture.read()
            frame = frame if ok else None
    finally:
        capture.release()


def from_video(
    path: str | os.PathLike,
    *,
    height: int | None = None,
    width: int | None = None,
    frame_step: int = 1,
    hole_range: tuple[float, float] = (0.0, 1.0),
    max_masks: int | None = None,
    work_side: int | None = 512,
    settings: OcclusionSettings | None = None,
) -> Iterator[np.ndarray]:
    """Masks from the occlusions between consecutive frames of a video.

    The video is opened and its first two compared frames are read immediately, so a bad path
    or a clip too short to compare two frames raises here rather than on first use.

    Args:
        path: Video file readable by OpenCV (FFmpeg backend).
        height: Output mask height; ``None`` keeps the (working) frame height.
        width: Output mask width; ``None`` keeps the (working) frame width.
        frame_step: Compare frames t and t + frame_step (larger steps, larger motions).
        hole_range: Only masks with hole ratio in (lo, hi] are yielded; the default skips
            frame pairs without any occlusion.
        max_masks: Stop after this many masks; ``None`` reads the whole video.
        work_side: Frames are shrunk so their longer side is at most this (speed); ``None``
            keeps full resolution.
        settings: Detection settings; ``None`` uses :class:`OcclusionSettings` defaults.

    Returns:
        An iterator of uint8 (H, W) masks, 1 = known, 0 = hole.

    Raises:
        UserInputError: If the video cannot be opened, has fewer than ``frame_step + 1``
            frames, or ``hole_range`` is out of range.
        ValueError: If another argument is out of range (the command line checks them first).
    """
    if frame_step < 1:
        raise ValueError(f"frame_step must be >= 1, got {frame_step}")
    if max_masks is not None and max_masks < 1:
        raise ValueError(f"max_masks must be >= 1, got {max_masks}")
    if (height is None) != (width is None) or (height is not None and min(height, width) <= 0):
        raise ValueError(f"give both height and width as positive sizes, got {height}x{width}")
    lo, hi = check_range(*hole_range)
    frames = _frames(*_open_video(path), frame_step, work_side)
    # Read up to the second compared frame now, so that a clip too short to show any motion
    # is refused here, before the caller creates an output folder.
    head = list(itertools.islice(frames, 2))
    if len(head) < 2:
        frames.close()
        apart = "" if frame_step == 1 else (
            f" frame_step {frame_step} apart (at least {frame_step + 1} frames)")
        raise UserInputError(
            f"{os.fspath(path)!r} has too few frames to find motion: needs at least 2 "
            f"frames{apart}; use a longer clip" + (" or a smaller frame step" if apart else "")
        )
    return _masks(itertools.chain(head, frames), (lo, hi), (height, width), max_masks, settings)


def _masks(frames, hole_range, size, max_masks, settings) -> Iterator[np.ndarray]:
    made = 0
    previous = None
    for frame in frames:
        if previous is not None:
            mask = occlusion_mask(previous, frame, settings)
            if size[0] is not None:
                mask = resize_mask(mask, *size)
            ratio = hole_ratio(mask)
            if hole_range[0] < ratio <= hole_range[1]:
                yield mask
                made += 1
                if max_masks is not None and made >= max_masks:
                    return
            else:
                logger.debug("skipped a frame pair with hole ratio %.4f", ratio)
        previous = frame
