"""masks.source: video: training masks from the per-frame object masks of a video folder."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inpainting.engine.config import ConfigError
from inpainting.engine.errors import UserInputError
from inpainting.tasks import load_config
from inpainting.tasks.inpainting.data import build_mask_source
from masks import VideoMaskSource, load_object_mask


def _palette_frame(path, box, label=1, size=(40, 30)):
    """A DAVIS-style palette PNG: 0 background, ``label`` inside ``box`` (top, bottom, l, r)."""
    labels = np.zeros((size[1], size[0]), np.uint8)
    top, bottom, left, right = box
    labels[top:bottom, left:right] = label
    image = Image.fromarray(labels, mode="P")
    image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9))
    image.save(path)


@pytest.fixture
def video_folder(tmp_path):
    """Two sequences of three frames: a box moving right (label 1), two objects (labels 1, 2)."""
    root = tmp_path / "Annotations" / "480p"
    for name in ("bear", "car"):
        (root / name).mkdir(parents=True)
    for frame in range(3):
        _palette_frame(root / "bear" / f"{frame:05d}.png", (5, 20, 4 + 5 * frame, 16 + 5 * frame))
        _palette_frame(root / "car" / f"{frame:05d}.png", (2, 10, 2, 10), label=2)
    return root


def test_objects_of_a_frame_are_the_hole(video_folder):
    known = load_object_mask(video_folder / "bear" / "00001.png")
    assert known.shape == (30, 40) and known.dtype == np.uint8
    assert not known[5:20, 9:21].any() and known.sum() == 30 * 40 - 15 * 12
    rgb = video_folder / "rgb.png"  # colour annotations: any non-black pixel is an object
    picture = np.zeros((8, 8, 3), np.uint8)
    picture[2:4, 2:4] = (0, 200, 0)
    Image.fromarray(picture).save(rgb)
    assert load_object_mask(rgb).sum() == 64 - 4
    for mode, opaque in (("RGBA", (0, 0, 0, 255)), ("LA", (0, 255))):
        with_alpha = video_folder / f"{mode}.png"  # an opaque background is not an object
        frame = np.zeros((8, 8, len(mode)), np.uint8)
        frame[...] = opaque
        frame[2:4, 2:4, 0] = 200
        Image.fromarray(frame, mode).save(with_alpha)
        assert load_object_mask(with_alpha).sum() == 64 - 4


def test_frames_come_from_every_sequence_resized_and_seeded(video_folder):
    source = VideoMaskSource(video_folder, 24, 24, augment=False)
    assert len(source.sequences) == 2 and len(source) == 6
    masks = [source(np.random.default_rng(seed)) for seed in range(40)]
    assert all(m.shape == (24, 24) and set(np.unique(m)) <= {0, 1} for m in masks)
    holes = {int((m == 0).sum()) for m in masks}
    assert len(holes) >= 2  # both sequences are drawn
    again = VideoMaskSource(video_folder, 24, 24, augment=False)
    assert all(np.array_equal(a, again(np.random.default_rng(seed)))
               for seed, a in enumerate(masks))


def test_augmentation_changes_the_frames_as_for_mask_folders(video_folder):
    plain = VideoMaskSource(video_folder, 32, 32, augment=False)
    augmented = VideoMaskSource(video_folder, 32, 32, augment=True)
    pairs = [(plain(np.random.default_rng(s)), augmented(np.random.default_rng(s)))
             for s in range(10)]
    assert any(not np.array_equal(a, b) for a, b in pairs)
    assert all(set(np.unique(b)) <= {0, 1} for _, b in pairs)


def test_an_empty_or_missing_folder_is_one_line_naming_it(tmp_path):
    (tmp_path / "empty" / "seq").mkdir(parents=True)
    (tmp_path / "empty" / "seq" / "notes.txt").write_text("no frames")
    with pytest.raises(UserInputError) as info:
        VideoMaskSource(tmp_path / "empty", 16, 16)
    message = str(info.value)
    assert "holds no frame masks" in message and "empty" in message and "\n" not in message
    with pytest.raises(UserInputError, match="does not exist"):
        VideoMaskSource(tmp_path / "missing", 16, 16)


def test_a_broken_frame_is_one_line_naming_the_file(tmp_path):
    (tmp_path / "seq").mkdir()
    (tmp_path / "seq" / "00000.png").write_bytes(b"not a png")
    source = VideoMaskSource(tmp_path, 16, 16)
    with pytest.raises(UserInputError, match="00000.png"):
        source(np.random.default_rng(0))


def test_config_selects_and_checks_the_video_source(video_folder):
    with pytest.raises(ConfigError, match="masks.folder must be set when masks.source is 'video'"):
        load_config(None, ["masks.source=video"])
    config = load_config(None, ["masks.source=video", f"masks.folder={video_folder}",
                                "data.image_size=32", "model.depth=3"])
    source = build_mask_source(config.masks, config.data.image_size)
    assert isinstance(source, VideoMaskSource)
    assert source(np.random.default_rng(0)).shape == (32, 32)


def test_a_run_trains_on_video_masks(tiny_config, video_folder):
    from inpainting.engine.run import setup_training

    session = setup_training(str(tiny_config), ["masks.source=video",
                                                f"masks.folder={video_folder}",
                                                "masks.augment=false", "train.max_steps=2"])
    try:
        sample = session.trainer.train_loader.dataset[0]
        result = session.trainer.fit()
    finally:
        session.close()
    assert sample["mask"].shape == (1, 32, 32) and 0.0 < 1 - float(sample["mask"].mean()) < 0.5
    assert result.step == 2
