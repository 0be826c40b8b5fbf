"""The ground-truth feature cache: keyed by everything the features depend on, never torn."""

import logging
import os

import torch

from inpainting.metrics.features import FeatureCache, default_cache_dir, image_list_key


def test_a_key_misses_when_anything_it_holds_changes(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"one")
    cache = FeatureCache(tmp_path / "cache")
    key = {"images": image_list_key([image]), "height": 32, "weights_sha256": "abc"}
    features = torch.rand(1, 4)
    cache.save(key, features)
    assert torch.equal(cache.load(key), features)
    assert cache.load({**key, "height": 64}) is None
    assert cache.load({**key, "weights_sha256": "abd"}) is None
    image.write_bytes(b"two!")  # another size
    assert cache.load({**key, "images": image_list_key([image])}) is None
    os.utime(image, ns=(1, 1))  # the same size, another modification time
    assert image_list_key([image]) != key["images"]


def test_a_torn_or_foreign_entry_is_a_miss_and_a_failed_write_a_warning(tmp_path, caplog):
    cache = FeatureCache(tmp_path / "cache")
    key = {"images": [], "height": 1}
    cache.folder.mkdir()
    cache.path(key).write_bytes(b"PK\x03\x04 torn")
    with caplog.at_level(logging.WARNING):
        assert cache.load(key) is None
    torch.save({"key": "another", "features": torch.zeros(1)}, cache.path(key))
    assert cache.load(key) is None
    blocked = FeatureCache(tmp_path / "file")
    (tmp_path / "file").write_text("a file where the folder should be")
    with caplog.at_level(logging.WARNING):
        assert blocked.save(key, torch.zeros(1)) is None
    assert "could not write the feature cache" in caplog.text
    assert sorted(p.name for p in cache.folder.iterdir()) == [cache.path(key).name]


def test_the_default_folder_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "pconv-inpainting" / "features"
