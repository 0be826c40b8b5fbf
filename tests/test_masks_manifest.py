"""masks.manifest: the one manifest.json schema, its writer, and the older files it still reads."""

import json

import pytest

from masks.manifest import MANIFEST_NAME, Manifest, MaskEntry, read_manifest, write_manifest

GENERATE_V0 = """{
 "size": 48,
 "polarity": "known_white",
 "border_px": 5,
 "seed": 1,
 "generator_version": 1,
 "masks": [
  {"file": "border/0.01-0.1/00000.png", "hole_ratio": 0.05, "bin": [0.01, 0.1], "border": true, "seed": 123},
  {"file": "no_border/0.3-0.4/00000.png", "hole_ratio": 0.35, "bin": [0.3, 0.4], "border": false, "seed": 7}
 ]
}
"""  # noqa: E501 (the exact lines python -m masks generate wrote)

VIDEO_V0 = """{
 "source": "clip.mp4",
 "polarity": "known_white",
 "frame_step": 2,
 "masks": [
  {"file": "00000.png", "hole_ratio": 0.3},
  {"file": "00001.png", "hole_ratio": 0.25}
 ]
}
"""

FIXED_MASK_SET_V1 = """{
 "version": 1,
 "size": 16,
 "bins": [
  [
   0.05,
   0.15
  ],
  [
   0.3,
   0.4
  ]
 ],
 "masks": [
  {
   "file": "mask_00000.png",
   "hole_ratio": 0.125,
   "bin": 0
  },
  {
   "file": "mask_00001.png",
   "hole_ratio": 0.375,
   "bin": 1
  }
 ]
}
"""


def _read(tmp_path, text):
    (tmp_path / MANIFEST_NAME).write_text(text)
    return read_manifest(tmp_path)


def test_reads_python_m_masks_generate_files(tmp_path):
    manifest = _read(tmp_path, GENERATE_V0)
    assert (manifest.size, manifest.polarity, manifest.border_px, manifest.seed,
            manifest.generator_version) == (48, "known_white", 5, 1, 1)
    assert manifest.masks == (
        MaskEntry("border/0.01-0.1/00000.png", 0.05, (0.01, 0.1), True, 123),
        MaskEntry("no_border/0.3-0.4/00000.png", 0.35, (0.3, 0.4), False, 7),
    )


def test_reads_python_m_masks_video_files(tmp_path):
    manifest = _read(tmp_path, VIDEO_V0)
    assert (manifest.source, manifest.frame_step, manifest.size) == ("clip.mp4", 2, None)
    assert manifest.masks == (MaskEntry("00000.png", 0.3), MaskEntry("00001.png", 0.25))


def test_reads_fixed_mask_set_version_1_files_with_bins_by_index(tmp_path):
    manifest = _read(tmp_path, FIXED_MASK_SET_V1)
    assert manifest.size == 16 and manifest.bins == ((0.05, 0.15), (0.3, 0.4))
    assert [(e.file, e.bin, e.border) for e in manifest.masks] == [
        ("mask_00000.png", (0.05, 0.15), None), ("mask_00001.png", (0.3, 0.4), None)]


def test_write_then_read_round_trip_one_mask_per_line(tmp_path):
    manifest = Manifest(
        masks=(MaskEntry("a.png", 0.125, (0.1, 0.2), True, 5), MaskEntry("b.png")),
        polarity="hole_white", size=32, bins=((0.1, 0.2),), border_px=3, seed=9,
        generator_version=1, source="clip.mp4", frame_step=4,
    )
    assert write_manifest(tmp_path, manifest) is True
    text = (tmp_path / MANIFEST_NAME).read_text()
    assert json.loads(text)["version"] == 2
    assert '  {"file": "b.png"}' in text.splitlines()
    assert read_manifest(tmp_path / MANIFEST_NAME) == manifest
    assert write_manifest(tmp_path, manifest) is False  # same content: the file is left alone
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST_NAME]  # no temporaries
    empty = Manifest(masks=())
    write_manifest(tmp_path, empty)
    assert read_manifest(tmp_path) == empty


@pytest.mark.parametrize("text, message", [
    ("{not json", "cannot read manifest"),
    ('{"size": 3}', "no 'masks' list"),
    ('{"masks": [{"hole_ratio": 0.1}]}', "needs a 'file' string"),
    ('{"masks": [{"file": "a.png", "bin": 2}], "bins": [[0.1, 0.2]]}', "bin index 2"),
    ('{"version": 3, "masks": []}', "unknown version 3"),
    ('{"polarity": "white", "masks": []}', "unknown mask polarity"),
    ('{"size": "big", "masks": []}', "'size' must be int"),
])
def test_bad_files_raise_one_line_naming_the_file(tmp_path, text, message):
    (tmp_path / MANIFEST_NAME).write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        read_manifest(tmp_path)
    assert str(tmp_path / MANIFEST_NAME) in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="does not exist"):
        read_manifest(tmp_path / "other.json")


def test_an_unreadable_manifest_stays_an_os_error(tmp_path, monkeypatch):
    """Permissions are the environment's problem (exit 3), not a malformed file (exit 2)."""
    path = tmp_path / MANIFEST_NAME
    path.write_text("{}")

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(path), "read_text", denied)
    with pytest.raises(PermissionError):
        read_manifest(path)
