"""evaluate.py end to end on a tiny checkpoint: table, metrics.json, CSV files, grids, errors."""

import csv
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from deploy_helpers import tiny_checkpoint
from PIL import Image
from run_helpers import run

from inpainting.predict.inference import Inpainter
from masks import PAPER_BINS, hole_ratio, load_mask

ROOT = Path(__file__).resolve().parents[1]
EVALUATE = ROOT / "evaluate.py"
METRICS = {"psnr", "ssim", "l1", "l1_hole", "grad-ratio"}  # the default --metrics


def _main():
    return runpy.run_path(str(EVALUATE))["main"]


@pytest.fixture
def setup(tmp_path):
    """A tiny checkpoint (evaluates at 32x32) and a folder of four images of assorted sizes."""
    checkpoint = tmp_path / "run" / "best.pt"
    checkpoint.parent.mkdir()
    tiny_checkpoint(checkpoint)
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i, size in enumerate([(40, 50), (32, 32), (61, 45), (36, 70)]):
        smooth = np.linspace(0, 255, size[1], dtype=np.float32)[None, :, None] * np.ones((*size, 3))
        noise = rng.normal(0, 20, (*size, 3))
        image = np.clip(smooth + noise, 0, 255).astype(np.uint8)
        Image.fromarray(image).save(images / f"img{i}.png")
    return checkpoint, images


def _bin_of(ratio):
    return next(([lo, hi] for lo, hi in PAPER_BINS if lo < ratio <= hi), None)


def _table_counts(table):
    """{(lo, hi, border): count} of the printed table's bin rows, and the overall count."""
    counts, overall = {}, None
    for line in table.splitlines():
        fields = line.split()
        if line.startswith("("):  # "(0.01, 0.1]  no   2  ..." -> label, border, count
            lo, hi = float(fields[0][1:-1]), float(fields[1][:-1])
            counts[(lo, hi, {"yes": True, "no": False}[fields[2]])] = int(fields[3])
        elif line.startswith("overall"):
            overall = int(fields[1])
    return counts, overall


def test_generated_masks_table_json_csv_and_baselines(setup, tmp_path, capsys):
    checkpoint, images = setup
    out = tmp_path / "report"
    code = _main()(["--checkpoint", str(checkpoint), "--images", str(images), "--out", str(out),
                    "--masks-per-bin", "2", "--baseline", "opencv-telea,opencv-ns",
                    "--device", "cpu", "--workers", "0", "--batch-size", "5"])
    assert code == 0
    captured = capsys.readouterr()
    table = captured.out
    assert "opencv-telea" in table and "opencv-ns" in table and "overall" in table
    # the progress bar counts the 24 image/mask pairs on stderr
    assert "evaluating" in captured.err and "24/24" in captured.err and "img/s" in captured.err
    assert len([line for line in table.splitlines() if line.startswith("(")]) == 12
    printed_counts, printed_overall = _table_counts(table)

    content = json.loads((out / "metrics.json").read_text())
    assert set(content) == {"checkpoint", "rows", "overall", "baselines"}
    assert content["checkpoint"] == str(checkpoint)
    assert set(content["baselines"]) == {"opencv-telea", "opencv-ns"}
    # every generated mask is counted in the bin of its actual hole ratio
    manifest = json.loads((out / "masks" / "manifest.json").read_text())
    expected = {}
    for entry in manifest["masks"]:
        mask = load_mask(out / "masks" / entry["file"])
        assert mask.shape == (32, 32)
        key = (tuple(_bin_of(hole_ratio(mask))), entry["border"])
        expected[key] = expected.get(key, 0) + 1
    assert sum(expected.values()) == 24 and len(expected) == 12
    assert printed_overall == 24
    assert printed_counts == {(*key[0], key[1]): count for key, count in expected.items()}
    for rows in [content["rows"], *(b["rows"] for b in content["baselines"].values())]:
        assert {(tuple(r["bin"]), r["border"]): r["count"] for r in rows} == expected
        for row in rows:
            assert set(row) == {"bin", "border", "count"} | METRICS
            assert 0 < row["l1"] <= row["l1_hole"] and 0 < row["psnr"] < 100
    for overall in [content["overall"], *(b["overall"] for b in content["baselines"].values())]:
        assert set(overall) == {"count"} | METRICS and overall["count"] == 24

    per_image = list(csv.DictReader(open(out / "per_image.csv")))
    assert len(per_image) == 24
    assert list(per_image[0]) == ["file", "mask", "bin", "border", "hole_ratio", *
                                  ["psnr", "ssim", "l1", "l1_hole", "grad-ratio"]]
    for row in per_image:
        lo, hi = _bin_of(float(row["hole_ratio"]))
        assert row["bin"] == f"{lo:g}-{hi:g}"
    for name in ("opencv-telea", "opencv-ns"):
        assert len(list(csv.DictReader(open(out / f"per_image_{name}.csv")))) == 24
    assert len(list(csv.reader(open(out / "metrics.csv")))) == 1 + 3 * 13
    assert len(list((out / "samples").glob("*.png"))) == 12


def test_file_list_and_masks_paired_by_name_with_polarity_and_resize(setup, tmp_path, capsys):
    checkpoint, images = setup
    masks = tmp_path / "masks"
    masks.mkdir()
    holes = {"img0": 50, "img1": 300, "img2": 700, "img3": 0}  # of 48 * 48 pixels
    for name, count in holes.items():
        hole = np.zeros(48 * 48, np.uint8)
        hole[:count] = 255  # hole-white files: white = hole
        Image.fromarray(hole.reshape(48, 48)).save(masks / f"{name}.png")
    listing = tmp_path / "test_list.txt"
    listing.write_text("# file list relative to --image-root\n" + "".join(
        f"{name}.png\n" for name in holes))
    out = tmp_path / "report"
    code = _main()(["--checkpoint", str(checkpoint), "--images", str(listing),
                    "--image-root", str(images), "--masks",
                    str(masks), "--polarity", "hole-white", "--image-size", "48",
                    "--fit", "resize", "--out", str(out), "--device", "cpu", "--workers", "0"])
    assert code == 0, capsys.readouterr().err
    per_image = {row["file"]: row for row in csv.DictReader(open(out / "per_image.csv"))}
    assert {name: row["mask"] for name, row in per_image.items()} == {
        f"{name}.png": f"{name}.png" for name in holes}
    for name, count in holes.items():
        assert float(per_image[f"{name}.png"]["hole_ratio"]) == count / 48**2
    assert per_image["img3.png"]["bin"] == ""  # no hole: in no bin, reported as "other"
    content = json.loads((out / "metrics.json").read_text())
    assert [(row["bin"], row["count"]) for row in content["rows"]] == [
        ([0.01, 0.1], 1), ([0.1, 0.2], 1), ([0.3, 0.4], 1), (None, 1)]
    assert content["overall"]["count"] == 4 and content["baselines"] == {}


def test_errors_are_one_line_with_exit_code_2(setup, tmp_path, capsys):
    checkpoint, images = setup
    small = tmp_path / "small_masks"
    small.mkdir()
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(small / "m.png")
    (tmp_path / "empty").mkdir()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "broken.png").write_bytes(b"not a png")
    common = ["--out", str(tmp_path / "r"), "--device", "cpu", "--workers", "0"]
    cases = {
        "broken.png": ["--checkpoint", str(checkpoint), "--images", str(corrupt),
                       "--masks-per-bin", "1"],
        "16x16": ["--checkpoint", str(checkpoint), "--images", str(images), "--masks", str(small)],
        "no images": ["--checkpoint", str(checkpoint), "--images", str(tmp_path / "empty")],
        "unknown baseline": ["--checkpoint", str(checkpoint), "--images", str(images),
                             "--baseline", "opencv-magic"],
        "does not exist": ["--checkpoint", str(checkpoint), "--images", str(tmp_path / "nope")],
    }
    main = _main()
    for expected, argv in cases.items():
        code = main([*argv, *common])
        # progress bars of the mask generation may come first; the error is one line
        lines = [line for line in capsys.readouterr().err.strip().splitlines()
                 if "|" not in line and line]
        assert code == 2 and len(lines) == 1 and expected in lines[0], (expected, lines)
    for flag, value in [("--masks-per-bin", "0"), ("--batch-size", "0"), ("--grid-rows", "-1"),
                        ("--workers", "two"), ("--mask-seed", "-1")]:
        with pytest.raises(SystemExit) as exit_info:
            main(["--checkpoint", str(checkpoint), "--images", str(images), flag, value])
        lines = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2 and len(lines) == 1 and flag in lines[0], lines
    # The real entry point in fresh interpreters (started together: the torch import dominates).
    subprocess_cases = {
        "does not exist": ["--checkpoint", str(tmp_path / "nope.pt"), "--images", str(images)],
        "polarity": ["--checkpoint", str(checkpoint), "--images", str(images), "--polarity", "x"],
    }
    running = {
        key: subprocess.Popen([sys.executable, str(EVALUATE), *argv, *common], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for key, argv in subprocess_cases.items()
    }
    for expected, process in running.items():
        _, err = process.communicate(timeout=180)
        lines = err.strip().splitlines()
        assert process.returncode == 2 and len(lines) == 1 and expected in lines[0], (expected, err)


def test_rerun_in_the_same_folder_scores_only_the_requested_masks(setup, tmp_path, capsys):
    checkpoint, images = setup
    out = tmp_path / "report"
    common = ["--checkpoint", str(checkpoint), "--images", str(images), "--out", str(out),
              "--device", "cpu", "--workers", "0"]
    main = _main()
    # First run: 3 masks in each of two bins, and no sample grids.
    assert main([*common, "--masks-per-bin", "3", "--bins", "0.01-0.1,0.1-0.2",
                 "--grid-rows", "0"]) == 0
    assert _table_counts(capsys.readouterr().out)[1] == 12
    assert not (out / "samples").exists()
    first = {p: p.stat().st_mtime_ns for p in (out / "masks").rglob("*.png")}
    assert len(first) == 12
    # Second run: 2 masks of one of those bins. The old files are reused, the extras not scored.
    assert main([*common, "--masks-per-bin", "2", "--bins", "0.1-0.2"]) == 0
    printed_counts, printed_overall = _table_counts(capsys.readouterr().out)
    assert printed_counts == {(0.1, 0.2, False): 2, (0.1, 0.2, True): 2} and printed_overall == 4
    assert {p: p.stat().st_mtime_ns for p in (out / "masks").rglob("*.png")} == first
    content = json.loads((out / "metrics.json").read_text())
    assert [(row["bin"], row["border"], row["count"]) for row in content["rows"]] == [
        ([0.1, 0.2], False, 2), ([0.1, 0.2], True, 2)]
    assert content["overall"]["count"] == 4
    per_image = list(csv.DictReader(open(out / "per_image.csv")))
    assert sorted(row["mask"] for row in per_image) == [
        f"{mode}/0.1-0.2/0000{i}.png" for mode in ("border", "no_border") for i in (0, 1)]
    assert len(list((out / "samples").glob("*.png"))) == 2
    # Another mask seed or image size: the message names evaluate.py's own options.
    for argv, flag, old in [(["--mask-seed", "1"], "--mask-seed", "0"),
                            (["--image-size", "48"], "--image-size", "32")]:
        assert main([*common, *argv]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and f"{flag} {old}," in lines[0] and "--out" in lines[0], lines
        assert "--seed" not in lines[0] and "--size" not in lines[0], lines


def _model_rows(table):
    """(hole ratio, border, count, L1 %, PSNR, SSIM) of the first method, row by row."""
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("hole ratio")) + 1
    rows = []
    for line in lines[start:]:
        label, rest = (line[:13].strip(), line[13:].split())
        rows.append((label, *rest[:5]) if label != "overall" else (label, "", *rest[:4]))
        if label == "overall":
            return rows
    raise AssertionError(f"no overall line in {table!r}")


def test_training_validation_and_evaluate_print_the_same_numbers(tiny_config, tmp_path, capsys):
    """A run's last validation table (train.py's summary) and evaluate.py on the run's
    validation images and saved val_masks, paired the same way, print equal numbers."""
    session, result = run(tiny_config, ["masks.val_count=6"])
    run_dir = tmp_path / "run"
    summary = session.summary(result)
    # evaluate.py gives mask i image order[i mod N], order a permutation seeded by --mask-seed;
    # validation gives mask i image i mod N: pick a seed whose permutation is the identity.
    images = (run_dir / "splits" / "val.txt").read_text().split()
    seed = next(s for s in range(100)
                if list(np.random.default_rng(s).permutation(len(images))) == [0, 1])
    assert len(images) == 2
    capsys.readouterr()
    code = _main()(["--checkpoint", str(run_dir / "last.pt"), "--images",
                    str(run_dir / "splits" / "val.txt"), "--masks", str(run_dir / "val_masks"),
                    "--mask-seed", str(seed), "--batch-size", "2", "--out",
                    str(tmp_path / "report"), "--device", "cpu", "--workers", "0"])
    assert code == 0
    printed = capsys.readouterr().out
    validation_rows, evaluate_rows = _model_rows(summary), _model_rows(printed)
    assert len(validation_rows) == 7 and validation_rows[-1][:3] == ("overall", "", "6")
    assert evaluate_rows == validation_rows
    content = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert content["overall"]["psnr"] == result.last_eval.overall["psnr"]
    assert content["overall"]["ssim"] == result.last_eval.overall["ssim"]


def test_a_file_that_is_not_a_checkpoint_is_one_line_with_exit_code_2(setup, tmp_path, capsys):
    _, images = setup
    notes = tmp_path / "notes.pt"
    notes.write_text("not a checkpoint\n")
    code = _main()(["--checkpoint", str(notes), "--images", str(images),
                    "--out", str(tmp_path / "r"), "--device", "cpu", "--workers", "0"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("evaluate.py: error: cannot read checkpoint"), lines
    assert "notes.pt" in lines[0], lines


def test_a_failure_while_scoring_keeps_its_traceback(setup, tmp_path, monkeypatch):
    """A CUDA failure or a bug is not turned into a one-line exit 2."""
    checkpoint, images = setup

    def cuda_failure(self, image, mask):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(Inpainter, "predict", cuda_failure)
    with pytest.raises(RuntimeError, match="CUDA error"):
        _main()(["--checkpoint", str(checkpoint), "--images", str(images), "--masks-per-bin", "1",
                 "--out", str(tmp_path / "r"), "--device", "cpu", "--workers", "0"])


def test_a_mask_set_inverted_against_its_manifest_names_the_polarity(setup, tmp_path):
    """Files written white = hole under a manifest that says white = known measure 1 minus
    their listed hole ratios: exit 2 saying which polarity the files have."""
    from masks.dataset import generate_mask_set

    checkpoint, images = setup
    masks = tmp_path / "masks"
    generate_mask_set(masks, 32, [(0.1, 0.2), (0.3, 0.4)], 3, borders=(False,), progress=False)
    files = sorted(masks.rglob("*.png"))
    changed = files[0]
    for path in files:  # the inverted set: every file's white and black swapped
        Image.fromarray(255 - np.asarray(Image.open(path))).save(path)
    command = [sys.executable, str(EVALUATE), "--checkpoint", str(checkpoint), "--images",
               str(images), "--masks", str(masks), "--out", str(tmp_path / "report")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=env)
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    name = changed.relative_to(masks).as_posix()
    assert line.startswith(f"evaluate.py: error: mask '{name}' has 8"), line
    assert line.endswith(": the files are inverted (hole-white, white = hole); set "
                         "\"polarity\": \"hole_white\" in the manifest"), line
    for path in files:  # back to their polarity but one: the files changed
        Image.fromarray(255 - np.asarray(Image.open(path))).save(path)
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(changed)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=env)
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith(f"evaluate.py: error: mask '{name}' has 0.0% holes, manifest "
                           f"'{masks / 'manifest.json'}' says 1"), line
    assert line.endswith(": the files changed since it was written; regenerate the set"), line
