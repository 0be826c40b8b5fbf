"""Tests for masks.dataset: the binned mask set on disk, its manifest and resuming."""

import json

import numpy as np
import pytest

import masks.dataset as dataset
import masks.manifest as manifest_module
from inpainting.engine.errors import EnvironmentProblem
from masks import MaskGenerator, hole_ratio, load_mask
from masks.dataset import default_border, generate_mask_set
from masks.generator import GENERATOR_VERSION
from masks.manifest import MANIFEST_NAME

BINS = [(0.01, 0.1), (0.3, 0.4)]


def _snapshot(folder):
    """{relative path: (bytes, mtime_ns)} of every file under folder."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _generate(out, **kwargs):
    arguments = {"size": 48, "bins": BINS, "count_per_bin": 3, "seed": 1, "progress": False}
    return generate_mask_set(out, **{**arguments, **kwargs})


def test_layout_manifest_and_masks(tmp_path):
    report = _generate(tmp_path)
    assert (report.written, report.kept) == (12, 0)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["size"] == 48 and manifest["polarity"] == "known_white"
    assert manifest["border_px"] == default_border(48) == 5
    assert len(manifest["masks"]) == 12
    assert {e["file"].split("/")[0] for e in manifest["masks"]} == {"border", "no_border"}
    for entry in manifest["masks"]:
        mask = load_mask(tmp_path / entry["file"])
        lo, hi = entry["bin"]
        assert mask.shape == (48, 48) and lo < hole_ratio(mask) <= hi
        assert entry["hole_ratio"] == hole_ratio(mask)
        if entry["border"]:
            assert mask[:5].all() and mask[-5:].all() and mask[:, :5].all() and mask[:, -5:].all()
        # The recorded seed alone reproduces the mask.
        border = 5 if entry["border"] else None
        again = MaskGenerator(48, 48, (lo, hi), border=border, rng=entry["seed"])()
        assert np.array_equal(again, mask)
    assert len({e["seed"] for e in manifest["masks"]}) == 12


def test_second_run_writes_nothing(tmp_path, monkeypatch):
    _generate(tmp_path)
    before = _snapshot(tmp_path)

    def no_writes(*args, **kwargs):
        raise AssertionError("the second run wrote a file")

    monkeypatch.setattr(dataset, "atomic_write", no_writes)
    monkeypatch.setattr(manifest_module, "atomic_write", no_writes)
    report = _generate(tmp_path)
    assert (report.written, report.kept) == (0, 12)
    assert _snapshot(tmp_path) == before


def test_workers_do_not_change_the_result(tmp_path):
    _generate(tmp_path / "one", workers=1)
    _generate(tmp_path / "two", workers=2)
    one, two = _snapshot(tmp_path / "one"), _snapshot(tmp_path / "two")
    assert one.keys() == two.keys()
    assert all(one[name][0] == two[name][0] for name in one)


def test_interrupted_run_leaves_whole_files_and_resumes(tmp_path, monkeypatch):
    _generate(tmp_path / "reference")
    calls = {"count": 0}
    real_write_job = dataset._write_job

    def interrupted(task):
        calls["count"] += 1
        if calls["count"] > 5:
            raise KeyboardInterrupt
        return real_write_job(task)

    monkeypatch.setattr(dataset, "_write_job", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _generate(tmp_path / "run")
    pngs = list((tmp_path / "run").rglob("*.png"))
    assert len(pngs) == 5 and not list((tmp_path / "run").rglob("*.tmp"))
    assert all(load_mask(p).shape == (48, 48) for p in pngs)
    assert len(json.loads((tmp_path / "run" / MANIFEST_NAME).read_text())["masks"]) == 5
    monkeypatch.setattr(dataset, "_write_job", real_write_job)
    report = _generate(tmp_path / "run")
    assert (report.written, report.kept) == (7, 5)
    reference, resumed = _snapshot(tmp_path / "reference"), _snapshot(tmp_path / "run")
    assert {k: v[0] for k, v in reference.items()} == {k: v[0] for k, v in resumed.items()}


def test_resume_without_manifest_checks_files_and_removes_temporaries(tmp_path):
    _generate(tmp_path)
    (tmp_path / MANIFEST_NAME).unlink()
    stale = tmp_path / "border" / "0.01-0.1" / ".00001.png.999.tmp"
    stale.write_bytes(b"half a png")
    wrong = tmp_path / "no_border" / "0.3-0.4" / "00002.png"
    wrong.write_bytes((tmp_path / "no_border" / "0.3-0.4" / "00000.png").read_bytes())
    report = _generate(tmp_path)
    assert (report.written, report.kept) == (1, 11)
    assert not stale.exists()
    assert len(json.loads((tmp_path / MANIFEST_NAME).read_text())["masks"]) == 12


def test_more_masks_per_bin_extends_the_set(tmp_path):
    _generate(tmp_path, bins=[(0.1, 0.2)], borders=(False,))
    first = _snapshot(tmp_path)
    report = _generate(tmp_path, bins=[(0.1, 0.2)], borders=(False,), count_per_bin=5)
    assert (report.written, report.kept) == (2, 3)
    after = _snapshot(tmp_path)
    assert all(after[name] == first[name] for name in first if name != MANIFEST_NAME)


def test_mask_seeds_ignore_bin_order(tmp_path):
    _generate(tmp_path / "a", bins=BINS, borders=(True,))
    _generate(tmp_path / "b", bins=BINS[::-1], borders=(True,))
    assert _snapshot(tmp_path / "a").keys() == _snapshot(tmp_path / "b").keys()
    a, b = _snapshot(tmp_path / "a"), _snapshot(tmp_path / "b")
    assert all(a[name][0] == b[name][0] for name in a)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"size": 64}, "--size 48"),
        ({"seed": 2}, "--seed 1"),
        ({"border_px": 3}, "--border-px 5"),
    ],
)
def test_resuming_another_set_is_refused(tmp_path, kwargs, match):
    _generate(tmp_path)
    with pytest.raises(ValueError, match=match):
        _generate(tmp_path, **kwargs)


def test_resuming_another_set_names_the_callers_options(tmp_path):
    _generate(tmp_path)
    flags = {"size": "--image-size", "seed": "--mask-seed", "border_px": None}
    with pytest.raises(ValueError, match="--mask-seed 1, not 2; use the same --mask-seed") as info:
        _generate(tmp_path, seed=2, flags=flags)
    assert "--seed" not in str(info.value)
    with pytest.raises(ValueError, match="--image-size 48, not 64; use the same --image-size"):
        _generate(tmp_path, size=64, flags=flags)
    with pytest.raises(ValueError, match="border_px 5, not 3; choose a new --out") as info:
        _generate(tmp_path, border_px=3, flags=flags)
    assert "--border-px" not in str(info.value)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"count_per_bin": 0}, "count_per_bin"),
        ({"workers": 0}, "workers"),
        ({"bins": []}, "at least one bin"),
        ({"border_px": 30}, "no room"),
        ({"size": 8, "bins": [(0.0, 0.001)]}, "widen the range"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _generate(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_unwritable_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(EnvironmentProblem, match="cannot write to"):  # exit code 3
        _generate(tmp_path / "file" / "out")


def test_set_from_another_generator_version_is_refused(tmp_path):
    _generate(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    manifest["generator_version"] = 0
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="generator version 0"):
        _generate(tmp_path)


def test_broken_manifest_is_reported(tmp_path):
    tmp_path.joinpath(MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="delete it to rebuild"):
        _generate(tmp_path)


def test_resume_from_a_manifest_without_version_keeps_every_mask(tmp_path):
    """Sets made before the shared manifest schema (no "version") resume without rewriting."""
    _generate(tmp_path)
    entries = json.loads((tmp_path / MANIFEST_NAME).read_text())["masks"]
    old = {"size": 48, "polarity": "known_white", "border_px": 5, "seed": 1,
           "generator_version": GENERATOR_VERSION, "masks": entries}
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(old))
    before = {name: data for name, data in _snapshot(tmp_path).items() if name != MANIFEST_NAME}
    report = _generate(tmp_path)
    assert (report.written, report.kept) == (0, 12)
    after = _snapshot(tmp_path)
    assert all(after[name] == data for name, data in before.items())
    content = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert content["version"] == 2 and content["masks"] == entries
