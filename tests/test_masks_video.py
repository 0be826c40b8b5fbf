"""Tests for masks.video on a synthetic video whose occluded regions are known exactly."""

import cv2
import numpy as np
import pytest

from inpainting.engine.errors import UserInputError
from masks import from_video, hole_ratio
from masks.video import OcclusionSettings, occlusion_mask

HEIGHT, WIDTH, SIDE, STEP, FRAMES = 128, 160, 48, 10, 6
TOP, LEFT = 40, 12


def _texture(rng, height, width, sigma):
    """Smooth random texture in [0, 255] that optical flow can track."""
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (height, width)).astype(np.float32), (0, 0), sigma)
    return cv2.normalize(noise, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def _square(frame_index):
    """Bool (H, W) map of the moving square in a frame."""
    area = np.zeros((HEIGHT, WIDTH), bool)
    left = LEFT + STEP * frame_index
    area[TOP : TOP + SIDE, left : left + SIDE] = True
    return area


def _frames(seed=2):
    """A textured square moving STEP pixels right per frame over a textured background."""
    rng = np.random.default_rng(seed)
    background = _texture(rng, HEIGHT, WIDTH, 2.0)
    square = _texture(rng, SIDE, SIDE, 1.5)
    frames = []
    for index in range(FRAMES):
        frame = background.copy()
        frame[_square(index)] = square.reshape(-1)
        frames.append(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    return frames


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "moving_square.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (WIDTH, HEIGHT))
    assert writer.isOpened(), "OpenCV cannot write MJPG .avi files"
    for frame in _frames():
        writer.write(frame)
    writer.release()
    return path


def _iou(mask, frame_index):
    """IoU of the mask's holes with the region occluded or revealed by the square."""
    truth = _square(frame_index) ^ _square(frame_index + 1)
    predicted = mask == 0
    return np.count_nonzero(predicted & truth) / np.count_nonzero(predicted | truth)


def test_from_video_finds_the_occluded_region(video):
    masks = list(from_video(video))
    assert len(masks) == FRAMES - 1
    for index, mask in enumerate(masks):
        assert mask.dtype == np.uint8 and mask.shape == (HEIGHT, WIDTH)
        assert set(np.unique(mask)) == {0, 1}
        assert _iou(mask, index) > 0.5, (index, _iou(mask, index))


def test_occlusion_mask_on_raw_frames():
    frames = _frames(seed=5)
    ious = [_iou(occlusion_mask(frames[i], frames[i + 1]), i) for i in range(FRAMES - 1)]
    assert min(ious) > 0.5, ious


def test_static_scene_gives_no_holes():
    frame = _frames()[0]
    assert occlusion_mask(frame, frame.copy()).all()


def test_resizing_step_and_limits(video):
    masks = list(from_video(video, height=64, width=80, frame_step=2, max_masks=2))
    assert len(masks) == 2 and all(m.shape == (64, 80) for m in masks)
    assert set(np.unique(masks[0])) <= {0, 1}
    # Pairs two frames apart move twice as far, so the holes are larger.
    single = list(from_video(video, max_masks=1))[0]
    assert hole_ratio(masks[0]) > hole_ratio(single)
    assert list(from_video(video, hole_range=(0.5, 1.0))) == []


def test_unopenable_video_raises_clearly(tmp_path):
    with pytest.raises(ValueError, match="cannot open video .*no such file"):
        from_video(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"definitely not a video")
    with pytest.raises(ValueError, match="cannot open video .*cannot decode"):
        from_video(junk)


def _one_frame_clip(path):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (WIDTH, HEIGHT))
    assert writer.isOpened(), "OpenCV cannot write MJPG .avi files"
    writer.write(_frames()[0])
    writer.release()
    return path


def test_a_one_frame_clip_raises_at_once(tmp_path):
    """Motion needs two frames: a one-frame clip is refused when opened, not an empty result."""
    clip = _one_frame_clip(tmp_path / "one.avi")
    with pytest.raises(UserInputError, match="too few frames .*needs at least 2 frames"):
        from_video(clip)


def test_a_clip_shorter_than_the_frame_step_raises(video):
    with pytest.raises(UserInputError, match=f"{FRAMES} apart \\(at least {FRAMES + 1} frames\\)"):
        from_video(video, frame_step=FRAMES)
    assert len(list(from_video(video, frame_step=FRAMES - 1))) == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"frame_step": 0}, "frame_step"),
        ({"max_masks": 0}, "max_masks"),
        ({"height": 10}, "both height and width"),
        ({"hole_range": (0.5, 0.2)}, "lo < hi"),
    ],
)
def test_bad_arguments(video, kwargs, match):
    with pytest.raises(ValueError, match=match):
        from_video(video, **kwargs)


def test_settings_validation():
    with pytest.raises(ValueError, match="patch_size"):
        OcclusionSettings(patch_size=1)
    with pytest.raises(ValueError, match="dilation"):
        OcclusionSettings(dilation=-1)
    dilated = occlusion_mask(*_frames()[:2], OcclusionSettings(dilation=7))
    plain = occlusion_mask(*_frames()[:2])
    assert hole_ratio(dilated) > hole_ratio(plain)
