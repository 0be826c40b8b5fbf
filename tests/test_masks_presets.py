"""LaMa's thin/medium/thick evaluation masks (``masks.presets``, ``generate --preset``), the box
shape, and the limits of ``python -m masks generate``."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from inpainting.engine.errors import UserInputError
from masks import PRESETS, PresetGenerator, load_mask, read_manifest
from masks.__main__ import main
from masks.dataset import MAX_MASKS, MAX_SIZE
from masks.manifest import Manifest, MaskEntry, write_manifest
from masks.preset_set import generate_preset_set
from masks.presets import (
    BoxParams,
    LamaBoxes,
    LamaStrokes,
    StrokeParams,
    preset_params,
)
from masks.shapes import HOLE, BoxShape, place_box

REPO = Path(__file__).resolve().parents[1]


def _cli(*args, cwd):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run([sys.executable, "-m", "masks", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def _thickness(mask: np.ndarray) -> float:
    """Mean distance of a mask's hole pixels to the nearest known pixel, in pixels."""
    hole = (mask == 0).astype(np.uint8)
    distance = cv2.distanceTransform(hole, cv2.DIST_L2, 3)
    return float(distance[hole > 0].mean())


# ---------------------------------------------------------------------------------------------
# The box shape


def test_box_shape_fills_one_axis_aligned_rectangle_of_about_its_budget():
    rng = np.random.default_rng(0)
    shape = BoxShape(128)
    for _ in range(20):
        canvas = np.zeros((128, 128), np.uint8)
        shape(canvas, 600.0, rng)
        rows, cols = np.nonzero(canvas)
        box = canvas[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert np.all(box == HOLE)  # the bounding box is all hole: a filled rectangle
        assert 200 < box.size < 900, box.shape


def test_place_box_keeps_the_margin_free_and_clips_to_the_room():
    rng = np.random.default_rng(1)
    for _ in range(20):
        canvas = np.zeros((40, 50), np.uint8)
        place_box(canvas, 12, 7, 5, rng)
        rows, cols = np.nonzero(canvas)
        assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (7, 12)
        assert rows.min() >= 5 and cols.min() >= 5 and rows.max() < 35 and cols.max() < 45
    canvas = np.zeros((20, 20), np.uint8)
    place_box(canvas, 100, 100, 2, rng)  # too big: shortened to the 16 x 16 inside the margin
    assert np.count_nonzero(canvas) == 16 * 16 and canvas[2:18, 2:18].all()


def test_lama_boxes_follow_their_parameters():
    params = BoxParams(min_times=1, max_times=1, margin=3, bbox_min_size=5, bbox_max_size=9)
    rng = np.random.default_rng(2)
    sides = set()
    for _ in range(100):
        canvas = np.zeros((32, 32), np.uint8)
        LamaBoxes(params)(canvas, rng)
        rows, cols = np.nonzero(canvas)
        assert rows.min() >= 3 and cols.min() >= 3 and rows.max() < 29 and cols.max() < 29
        sides |= {rows.max() - rows.min() + 1, cols.max() - cols.min() + 1}
    assert sides == set(range(5, 10))  # both ends of [bbox_min_size, bbox_max_size] occur


def test_lama_strokes_are_as_wide_as_their_brush():
    """The same seed draws the same centre lines; only the brush differs."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    for seed in range(3):
        holes, kept = {}, {}
        for width in (3, 11):
            params = StrokeParams(min_times=3, max_times=3, max_width=1, max_angle=4,
                                  max_len=20, min_width=width, min_len=10)
            canvas = np.zeros((128, 128), np.uint8)
            LamaStrokes(params)(canvas, np.random.default_rng(seed))
            holes[width] = canvas > 0
            # Share of the hole that holds a 5-pixel disc: little of a 3-pixel brush (where
            # strokes cross or turn back), most of an 11-pixel one.
            kept[width] = np.count_nonzero(cv2.erode(canvas, disc)) / np.count_nonzero(canvas)
        assert np.all(holes[11][holes[3]]), seed  # the narrow strokes lie inside the wide ones
        assert kept[3] < 0.4 < 0.6 < kept[11], (seed, kept)


def test_stroke_count_reaches_max_times_plus_one_as_in_lama():
    """LaMa's script calls its stroke generator without a training step, which allows
    ``max_times + 1`` strokes; with ``max_times = 0`` about half the masks have a stroke."""
    params = StrokeParams(min_times=0, max_times=0, max_width=5, max_angle=4, max_len=20)
    drawn = 0
    for seed in range(40):
        canvas = np.zeros((32, 32), np.uint8)
        LamaStrokes(params)(canvas, np.random.default_rng(seed))
        drawn += bool(canvas.any())
    assert 10 < drawn < 30, drawn


# ---------------------------------------------------------------------------------------------
# Parameters: LaMa's configs, scaled to the size


def test_parameters_at_256_and_512_are_lamas_own():
    thin = preset_params("thin", 256)
    assert thin.source == "advimman/lama configs/data_gen/random_thin_256.yaml"
    assert thin.irregular == StrokeParams(min_times=4, max_times=50, max_width=10, max_angle=4,
                                          max_len=40, min_width=5, min_len=10)
    assert (thin.box_proba, thin.box, thin.max_hole_ratio) == (0.0, None, 0.5)
    thick = preset_params("thick", 512)
    assert thick.source.endswith("configs/data_gen/random_thick_512.yaml")
    assert (thick.irregular.max_width, thick.irregular.max_len) == (250, 450)
    assert thick.box_proba == 0.3
    assert thick.box == BoxParams(min_times=1, max_times=4, margin=10, bbox_min_size=30,
                                  bbox_max_size=300)
    medium = preset_params("medium", 256)
    assert medium.box == BoxParams(min_times=1, max_times=5, margin=0, bbox_min_size=10,
                                   bbox_max_size=50)


def test_other_sizes_scale_the_nearer_config():
    half = preset_params("thick", 128)  # the 256 config, lengths halved (half up)
    assert (half.base_size, half.size) == (256, 128)
    assert half.irregular == StrokeParams(min_times=1, max_times=5, max_width=50, max_angle=4,
                                          max_len=100, min_width=3, min_len=5)
    assert half.box == BoxParams(min_times=1, max_times=3, margin=5, bbox_min_size=15,
                                 bbox_max_size=75)
    assert preset_params("thin", 384).base_size == 256  # the tie goes to 256
    assert preset_params("thin", 385).base_size == 512
    double = preset_params("thin", 1024)
    assert (double.base_size, double.irregular.max_width, double.irregular.max_times) == (
        512, 40, 70)  # counts do not scale


@pytest.mark.parametrize("name, size, match", [("huge", 256, "valid: thin, medium, thick"),
                                               ("thin", 16, "at least 32")])
def test_bad_preset_or_size_is_a_user_input_error(name, size, match):
    with pytest.raises(UserInputError, match=match):
        PresetGenerator(name, size)


# ---------------------------------------------------------------------------------------------
# The masks: hole ratios, thickness, mixture, determinism


def test_hole_ratio_and_thickness_per_preset():
    """Means within 0.06 of LaMa's own generator (2000 masks each at 256, run once outside the
    suite: thin 0.286, medium 0.237, thick 0.262). The names are about stroke width, not area:
    thin has the largest mean ratio (many narrow strokes), so the ratios are not ordered, but
    the hole thickness is, by a wide margin."""
    reference = {"thin": 0.286, "medium": 0.237, "thick": 0.262}
    thickness = {}
    for name in PRESETS:
        generator = PresetGenerator(name, 128)
        masks = [generator(np.random.default_rng(seed)) for seed in range(60)]
        ratios = np.array([np.count_nonzero(mask == 0) / mask.size for mask in masks])
        assert np.all((ratios > 0) & (ratios <= 0.5)), name
        assert abs(ratios.mean() - reference[name]) < 0.06, (name, ratios.mean())
        assert ratios.std() > 0.07, name  # a spread, as LaMa's, not one size for all
        thickness[name] = np.mean([_thickness(mask) for mask in masks])
    assert 2 * thickness["thin"] < thickness["medium"], thickness
    assert 1.5 * thickness["medium"] < thickness["thick"], thickness


def test_thin_has_no_boxes_and_thick_mixes_them_in(monkeypatch):
    assert [type(kind) for kind in PresetGenerator("thin", 64).kinds] == [LamaStrokes]
    generator = PresetGenerator("thick", 64)
    assert [type(kind) for kind in generator.kinds] == [LamaStrokes, LamaBoxes]
    assert generator.probabilities == pytest.approx([1 / 1.3, 0.3 / 1.3])
    calls = {"strokes": 0, "boxes": 0}
    for kind, key in ((LamaStrokes, "strokes"), (LamaBoxes, "boxes")):
        draw = kind.__call__

        def counted(self, canvas, rng, draw=draw, key=key):
            calls[key] += 1
            draw(self, canvas, rng)

        monkeypatch.setattr(kind, "__call__", counted)
    for seed in range(150):
        generator(np.random.default_rng(seed))
    share = calls["boxes"] / (calls["boxes"] + calls["strokes"])
    assert 0.15 < share < 0.32, calls


def test_same_seed_same_mask_and_seeds_differ():
    generator = PresetGenerator("medium", 64)
    first = generator(np.random.default_rng(5))
    assert first.dtype == np.uint8 and first.shape == (64, 64) and set(np.unique(first)) == {0, 1}
    assert np.array_equal(first, PresetGenerator("medium", 64)(np.random.default_rng(5)))
    assert not np.array_equal(first, generator(np.random.default_rng(6)))


# ---------------------------------------------------------------------------------------------
# Preset sets on disk


def test_preset_set_files_and_manifest(tmp_path):
    report = generate_preset_set(tmp_path / "set", "thick", 48, 4, seed=3, progress=False)
    assert (report.written, report.kept) == (4, 0)
    manifest = read_manifest(tmp_path / "set")
    assert (manifest.polarity, manifest.size, manifest.seed, manifest.preset) == (
        "known_white", 48, 3, "thick")
    assert manifest.bins is None and manifest.border_px is None
    params = manifest.preset_params
    assert params["source"] == "advimman/lama configs/data_gen/random_thick_256.yaml"
    assert params == preset_params("thick", 48).to_json()
    assert params["irregular"]["max_width"] == 19 and params["box"]["bbox_max_size"] == 28
    assert [entry.file for entry in manifest.masks] == [f"{i:05d}.png" for i in range(4)]
    generator = PresetGenerator("thick", 48)
    for entry in manifest.masks:
        assert entry.bin is None and entry.border is None
        mask = load_mask(tmp_path / "set" / entry.file)  # white = known
        assert entry.hole_ratio == np.count_nonzero(mask == 0) / mask.size
        assert 0 < entry.hole_ratio <= 0.5
        assert np.array_equal(mask, generator(np.random.default_rng(entry.seed)))  # per mask


def test_preset_set_is_reproducible_and_grows_without_changing_masks(tmp_path):
    generate_preset_set(tmp_path / "a", "thin", 40, 3, seed=1, progress=False)
    generate_preset_set(tmp_path / "b", "thin", 40, 5, seed=1, workers=2, progress=False)
    generate_preset_set(tmp_path / "c", "thin", 40, 3, seed=2, progress=False)
    for index in range(3):
        file = f"{index:05d}.png"
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    first = "00000.png"
    assert (tmp_path / "a" / first).read_bytes() != (tmp_path / "c" / first).read_bytes()
    report = generate_preset_set(tmp_path / "a", "thin", 40, 5, seed=1, progress=False)
    assert (report.written, report.kept) == (2, 3)
    assert (tmp_path / "a" / "manifest.json").read_text() == (
        tmp_path / "b" / "manifest.json").read_text()


def test_manifest_round_trip_keeps_preset_and_old_files_read(tmp_path):
    manifest = Manifest((MaskEntry("00000.png", 0.25, seed=9),), size=64, seed=0,
                        generator_version=1, preset="thin",
                        preset_params=preset_params("thin", 64).to_json())
    write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path) == manifest
    assert json.loads((tmp_path / "manifest.json").read_text())["version"] == 2
    (tmp_path / "manifest.json").write_text('{"masks": [{"file": "a.png"}]}')
    old = read_manifest(tmp_path)
    assert (old.preset, old.preset_params) == (None, None)
    (tmp_path / "manifest.json").write_text('{"preset_params": [1], "masks": []}')
    with pytest.raises(UserInputError, match="'preset_params' must be dict"):
        read_manifest(tmp_path)


def test_resuming_another_kind_of_set_is_refused(tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["generate", "--out", str(out), "--preset", "thin", "--size", "32",
                 "--count", "2", "--no-progress"]) == 0  # fmt: skip
    assert "wrote 2 masks" in capsys.readouterr().out
    for args, message in (
        (["--preset", "thick", "--count", "2"], "made with --preset thin; use --preset thin"),
        (["--count-per-bin", "1"], "made with --preset thin; use --preset thin"),
    ):
        assert main(["generate", "--out", str(out), "--size", "32", *args,
                     "--no-progress"]) == 2  # fmt: skip
        assert message in capsys.readouterr().err
    binned = tmp_path / "binned"
    assert main(["generate", "--out", str(binned), "--size", "32", "--count-per-bin", "1",
                 "--bins", "0.1-0.2", "--no-progress"]) == 0  # fmt: skip
    assert main(["generate", "--out", str(binned), "--size", "32", "--preset", "thin",
                 "--count", "1", "--no-progress"]) == 2  # fmt: skip
    assert "made without --preset; drop --preset" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Refusals and limits: one line, exit 2, nothing written


@pytest.mark.parametrize(
    "args, message",
    [
        (["--count", "5"], "--count needs --preset (thin, medium, thick)"),
        (["--preset", "huge"], "unknown value 'huge' (valid: thin, medium, thick)"),
        (["--preset", "thin", "--count", "0"], "--count: must be >= 1, got 0"),
        (["--preset", "thin", "--count-per-bin", "3"], "contradicts --count-per-bin"),
        (["--preset", "thin", "--bins", "paper"], "contradicts --bins"),
        (["--preset", "thin", "--border", "off"], "contradicts --border"),
        (["--preset", "thin", "--border-px", "3"], "contradicts --border-px"),
        (["--preset", "thin", "--size", "16"], "--preset thin needs --size >= 32, got 16"),
        (["--size", "100000"], f"--size: must be <= {MAX_SIZE}, got 100000"),
        (["--preset", "thick", "--count", "100001"], f"must be <= {MAX_MASKS}, got 100001"),
        (["--count-per-bin", "20000"],
         f"240000 masks (6 bins x 2 border modes x 20000) are over the limit of {MAX_MASKS} "
         "per set; lower --count-per-bin"),
        (["--workers", "1000"], "--workers: must be <= 256"),
        (["--bins", ",".join(f"0.{i:03d}-0.{i + 1:03d}" for i in range(1, 102))],
         "101 bins are over the limit of 100"),
    ],
)
def test_bad_generate_arguments_exit_2_with_one_line(tmp_path, args, message):
    started = time.monotonic()
    result = _cli("generate", "--out", "o", *args, cwd=tmp_path)
    assert time.monotonic() - started < 20  # refused before any work
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and message in lines[0], lines[0]
    assert not (tmp_path / "o").exists()


def test_library_callers_get_the_limits_too(tmp_path):
    with pytest.raises(UserInputError, match=f"--size {MAX_SIZE + 1} is over the limit"):
        generate_preset_set(tmp_path / "o", "thin", MAX_SIZE + 1, 1, progress=False)
    with pytest.raises(UserInputError, match="lower --count"):
        generate_preset_set(tmp_path / "o", "thin", 64, MAX_MASKS + 1, progress=False)
    assert not (tmp_path / "o").exists()


def test_help_names_the_presets_and_the_limits(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--help"])
    assert exit_info.value.code == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "thin/medium/thick" in printed and "--count N" in printed
    assert f"--size <= {MAX_SIZE}" in printed and f"at most {MAX_MASKS} masks per set" in printed
