"""evaluate.py with each image's own mask (--lama-dir, --pair-by-name), the paper's and LaMa's
table layouts, and the patchmatch baseline; errors are one line with exit code 2."""

import csv
import importlib.util
import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from deploy_helpers import tiny_checkpoint
from PIL import Image

from inpainting.metrics.evaluation.lama import format_lama_table, lama_bucket
from masks import save_mask

ROOT = Path(__file__).resolve().parents[1]
SIZES = [(24, 30), (32, 32), (20, 44)]  # (H, W) of the test images
HAS_PATCHMATCH = importlib.util.find_spec("patchmatch_cython") is not None


def _main():
    return runpy.run_path(str(ROOT / "evaluate.py"))["main"]


def _hole(size, index):
    """(H, W) bool, True = hole: a box covering a share of the image that grows with index."""
    hole = np.zeros(size, bool)
    hole[2:2 + size[0] // 2, 3:3 + (index + 1) * size[1] // 5] = True
    return hole


@pytest.fixture
def checkpoint(tmp_path):
    """A tiny model whose checkpoint says 32 px, so an own-size run differs from the default."""
    path = tmp_path / "run" / "best.pt"
    path.parent.mkdir()
    return tiny_checkpoint(path)


def _image(size, seed):
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


@pytest.fixture
def lama_dir(tmp_path):
    """LaMa's layout: x.png beside x_mask000.png and x_mask001.png (white = hole)."""
    folder = tmp_path / "lama"
    (folder / "sub").mkdir(parents=True)
    for index, size in enumerate(SIZES):
        stem = folder / ("sub" if index == 2 else "") / f"photo{index}_crop000"
        Image.fromarray(_image(size, index)).save(f"{stem}.png")
        for mask in range(2):
            hole = _hole(size, index + mask)
            Image.fromarray(hole.astype(np.uint8) * 255).save(f"{stem}_mask{mask:03d}.png")
    return folder


def _run(argv, tmp_path, capsys, out="report"):
    code = _main()([*argv, "--out", str(tmp_path / out), "--device", "cpu", "--workers", "0",
                    "--batch-size", "2"])
    captured = capsys.readouterr()
    return code, captured.out, [line for line in captured.err.strip().splitlines()
                                if line and "%|" not in line]  # no progress bars


def _per_image(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_lama_dir_scores_each_pair_at_its_own_size_with_lamas_table(
        checkpoint, lama_dir, tmp_path, capsys):
    code, table, errors = _run(["--checkpoint", str(checkpoint), "--lama-dir", str(lama_dir),
                                "--table", "lama", "--baseline", "opencv-telea"],
                               tmp_path, capsys)
    assert code == 0, errors
    rows = _per_image(tmp_path / "report" / "per_image.csv")
    assert len(rows) == 6
    for row in rows:  # white = hole, read at the file's own size (no crop to 32 px)
        index, mask = int(row["file"].split("photo")[1][0]), int(row["mask"][-7:-4])
        assert float(row["hole_ratio"]) == pytest.approx(_hole(SIZES[index], index + mask).mean())
    blocks = table.split("report written")[0].strip().split("\n\n")
    assert [block.split()[0] for block in blocks] == ["opencv-telea", "ours"]  # model last
    lines = blocks[1].splitlines()
    assert lines[1].split()[:2] == ["total", "6"] and "±" in lines[1]
    assert all(line.split()[0].endswith("%") for line in lines[2:])
    settings = json.loads((tmp_path / "report" / "settings.json").read_text())
    assert settings["image_size"] == "own" and settings["polarity"] == "hole_white"


def test_lama_dir_at_one_image_size(checkpoint, lama_dir, tmp_path, capsys):
    code, _, errors = _run(["--checkpoint", str(checkpoint), "--lama-dir", str(lama_dir),
                            "--image-size", "16", "--fit", "resize", "--table", "paper"],
                           tmp_path, capsys)
    assert code == 0, errors
    rows = _per_image(tmp_path / "report" / "per_image.csv")
    assert len(rows) == 6 and all(0 < float(row["hole_ratio"]) < 1 for row in rows)


def test_lama_dir_and_pairing_errors_are_one_line(checkpoint, lama_dir, tmp_path, capsys):
    (lama_dir / "lonely_mask000.png").write_bytes((lama_dir / "photo0_crop000_mask000.png")
                                                  .read_bytes())
    ckpt = ["--checkpoint", str(checkpoint)]
    cases = {
        "mask '": [*ckpt, "--lama-dir", str(lama_dir)],  # lonely_mask000.png has no image
        "drop --images": [*ckpt, "--lama-dir", str(lama_dir), "--images", str(lama_dir)],
        "white = hole": [*ckpt, "--lama-dir", str(lama_dir), "--polarity", "known-white"],
        "--images DIR|LIST": ckpt,
    }
    for expected, argv in cases.items():
        code, _, errors = _run(argv, tmp_path, capsys)
        assert code == 2 and len(errors) == 1 and expected in errors[0], (expected, errors)
    assert "lonely_mask000.png' has no image: expected 'lonely.png'" in _run(
        cases["mask '"], tmp_path, capsys)[2][0]
    (lama_dir / "lonely_mask000.png").unlink()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(lama_dir / "photo1_crop000_mask001.png")
    code, _, errors = _run(cases["mask '"], tmp_path, capsys)
    assert code == 2 and len(errors) == 1
    assert "photo1_crop000_mask001.png' is 8x8 but its image" in errors[0]


def _paired_folders(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    (images / "a").mkdir(parents=True)
    (masks / "a").mkdir(parents=True)
    for index, size in enumerate(SIZES):
        name = f"a/img{index}" if index else f"img{index}"
        Image.fromarray(_image(size, index)).save(images / f"{name}.jpg")
        save_mask(masks / f"{name}.png", (~_hole(size, index)).astype(np.uint8))
    return images, masks


def test_pair_by_name_uses_each_images_own_mask_at_its_size(checkpoint, tmp_path, capsys):
    images, masks = _paired_folders(tmp_path)
    argv = ["--checkpoint", str(checkpoint), "--images", str(images), "--masks", str(masks),
            "--pair-by-name"]
    code, _, errors = _run(argv, tmp_path, capsys)
    assert code == 0, errors
    rows = {row["file"]: row for row in _per_image(tmp_path / "report" / "per_image.csv")}
    assert sorted(rows) == ["a/img1.jpg", "a/img2.jpg", "img0.jpg"]
    for index, size in enumerate(SIZES):
        row = rows[f"a/img{index}.jpg" if index else "img0.jpg"]
        assert float(row["hole_ratio"]) == pytest.approx(_hole(size, index).mean())
    # one line for a missing mask, a mask of another size, and --image-size with --fit none
    save_mask(masks / "a" / "img1.png", np.ones((10, 10), np.uint8))
    code, _, errors = _run(argv, tmp_path, capsys)
    assert code == 2 and len(errors) == 1 and "img1.png' is 10x10 but its image" in errors[0]
    (masks / "a" / "img1.png").unlink()
    code, _, errors = _run(argv, tmp_path, capsys)
    assert code == 2 and len(errors) == 1
    assert "img1.jpg' has no mask of its name in --masks" in errors[0]
    save_mask(masks / "a" / "img1.png", (~_hole(SIZES[1], 1)).astype(np.uint8))
    code, _, errors = _run([*argv, "--image-size", "16", "--fit", "none"], tmp_path, capsys)
    assert code == 2 and "needs --fit center-crop or resize" in errors[0]
    Image.fromarray(_image((10, 30), 0)).save(images / "img0.jpg")  # under SSIM's 11 px
    save_mask(masks / "img0.png", np.ones((10, 30), np.uint8))
    code, _, errors = _run(argv, tmp_path, capsys)
    assert code == 2 and len(errors) == 1 and "img0.jpg' is 30x10; scoring at its own" in errors[0]
    code, _, errors = _run([*argv, "--image-size", "16", "--fit", "resize"], tmp_path, capsys)
    assert code == 0, errors


def test_lama_buckets_and_table_follow_lama():
    assert [lama_bucket(r) for r in (0.0, 0.05, 0.1, 0.35, 0.999, 1.0)] == [0, 0, 1, 3, 9, 9]
    records = [{"file": "x", "hole_ratio": r, "border": False, "psnr": p, "l1_hole": 1.0}
               for r, p in ((0.05, 20.0), (0.07, 30.0), (0.45, 10.0))]
    lines = format_lama_table({"model": records}).splitlines()
    assert lines[0].split() == ["model", "count", "PSNR", "L1", "hole", "(%)"]
    assert lines[1].split() == ["total", "3", "20.00", "±", "8.16", "1.00", "±", "0.00"]
    assert lines[2].split()[:5] == ["0-10%", "2", "25.00", "±", "5.00"]
    assert lines[3].split()[:2] == ["40-50%", "1"] and len(lines) == 4


def test_unknown_baseline_lists_patchmatch_and_a_missing_package_names_the_extra(
        checkpoint, lama_dir, tmp_path, capsys, monkeypatch):
    argv = ["--checkpoint", str(checkpoint), "--lama-dir", str(lama_dir), "--baseline"]
    code, _, errors = _run([*argv, "photoshop"], tmp_path, capsys)
    assert code == 2 and len(errors) == 1 and "opencv-ns, opencv-telea, patchmatch" in errors[0]
    monkeypatch.setitem(sys.modules, "patchmatch_cython", None)  # import raises ImportError
    code, _, errors = _run([*argv, "patchmatch"], tmp_path, capsys)
    assert code == 2 and len(errors) == 1 and "pip install '.[patchmatch]'" in errors[0]


@pytest.mark.skipif(not HAS_PATCHMATCH, reason="needs the patchmatch extra")
def test_paper_table_with_patchmatch(checkpoint, lama_dir, tmp_path, capsys):
    code, table, errors = _run(["--checkpoint", str(checkpoint), "--lama-dir", str(lama_dir),
                                "--baseline", "patchmatch", "--table", "paper"],
                               tmp_path, capsys)
    assert code == 0, errors
    lines = table.splitlines()
    assert lines[1].split()[:2] == ["N", "B"] and lines[2].split()[0] == "count"
    block = lines[lines.index("PSNR") + 1:lines.index("PSNR") + 3]
    assert [line.split()[0] for line in block] == ["PM", "ours"]
