"""Tests for the offline demo data built from scikit-image's bundled photos."""

import json
import sys

import pytest

from inpainting.data import demo, list_images, load_image
from inpainting.engine.errors import UserInputError


def photo_of(crop_path):
    """``astronaut_003.png`` -> ``astronaut``."""
    return crop_path.stem.rsplit("_", 1)[0]


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return root, demo.prepare_demo_data(root)


def test_demo_data_has_hundreds_of_train_crops_and_held_out_val(demo_root):
    root, (train_dir, val_dir) = demo_root
    assert (train_dir, val_dir) == (root / "train", root / "val")
    train, val = list_images(train_dir), list_images(val_dir)
    assert len(train) == len(demo.TRAIN_PHOTOS) * demo.TRAIN_CROPS_PER_PHOTO >= 200
    assert len(val) == len(demo.VAL_PHOTOS) * demo.VAL_CROPS_PER_PHOTO
    assert {photo_of(p) for p in train}.isdisjoint({photo_of(p) for p in val})
    for path in train[::40] + val[::10]:
        height, width, _ = load_image(path).shape
        low, high = demo.CROP_SIDES
        assert low <= height <= high and low <= width <= high
    assert not list(root.glob(".building-*"))  # no temporary folder left behind


def test_second_call_is_a_cache_hit(demo_root, monkeypatch):
    root, folders = demo_root
    before = sorted((p.name, p.stat().st_mtime_ns) for p in (root / "train").iterdir())

    def must_not_build(*args, **kwargs):
        raise AssertionError("the cached demo data was rebuilt")

    monkeypatch.setattr(demo, "_write_split", must_not_build)
    assert demo.prepare_demo_data(root) == folders
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (root / "train").iterdir()) == before


def test_incomplete_set_is_rebuilt_identically(tmp_path, demo_root):
    root, _ = demo_root
    other = tmp_path / "demo"
    train_dir, _ = demo.prepare_demo_data(other)
    marker = json.loads((other / ".complete.json").read_text())
    assert marker["version"] == demo.DEMO_VERSION
    first = sorted(train_dir.iterdir())[0]
    assert first.read_bytes() == (root / "train" / first.name).read_bytes()  # deterministic
    first.unlink()  # a damaged cache no longer matches its marker
    demo.prepare_demo_data(other)
    assert len(list_images(train_dir)) == marker["train"]


def test_missing_scikit_image_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)  # makes "import skimage" fail
    with pytest.raises(UserInputError, match="pip install scikit-image"):
        demo.prepare_demo_data(tmp_path / "demo")


def test_cli_reports_folders(tmp_path, demo_root, capsys):
    root, (train_dir, val_dir) = demo_root
    assert demo.main([str(root)]) == 0
    assert capsys.readouterr().out.split() == ["train:", str(train_dir), "val:", str(val_dir)]


def test_cli_unwritable_root_is_one_line_and_exit_2(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert demo.main([str(blocker)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "choose a writable folder" in error and "a_file" in error


def test_cli_unreadable_root_is_one_line_and_exit_3(tmp_path, monkeypatch, capsys):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "demo"))

    monkeypatch.setattr(demo.tempfile, "TemporaryDirectory", denied)
    assert demo.main([str(tmp_path / "demo")]) == 3
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "permission denied" in error and "demo" in error
