"""Evaluation internals: pairing, border detection, running, report files."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpainting.metrics.evaluation.pairs import (
    MaskRecord,
    check_mask_sizes,
    make_pairs,
    masks_from_folder,
    masks_from_manifest,
)
from inpainting.metrics.evaluation.report import (
    save_grids,
    write_metrics_csv,
    write_metrics_json,
    write_per_image_csv,
)
from inpainting.metrics.evaluation.runner import (
    EvalSettings,
    PairDataset,
    has_border,
    run_evaluation,
)
from inpainting.metrics.scoring import aggregate, bin_index, format_table
from masks import PAPER_BINS, save_mask

BINS = tuple(PAPER_BINS)


def _records(names):
    return [MaskRecord(Path(f"/m/{name}"), name) for name in names]


def test_pairing_by_name_when_every_image_has_a_mask():
    images = [Path("/img/a.jpg"), Path("/img/sub/b.jpg")]
    pairs = make_pairs(images, Path("/img"), _records(["sub/b.png", "a.png", "c.png"]), seed=0)
    assert [(p.name, p.mask.name) for p in pairs] == [
        ("a.jpg", "a.png"), ("sub/b.jpg", "sub/b.png")]


def test_assignment_uses_every_mask_once_and_cycles_images_deterministically():
    images = [Path(f"/img/{i}.jpg") for i in range(6)]
    records = _records([f"m{i}.png" for i in range(14)])
    pairs = make_pairs(images, Path("/img"), records, seed=5)
    assert [p.mask.name for p in pairs] == [r.name for r in records]
    order = [p.image for p in pairs]
    assert order[:6] == order[6:12] == order[12:] + order[2:6]  # mask i <-> image order[i mod N]
    assert sorted(order[:6]) == images
    assert order == [p.image for p in make_pairs(images, Path("/img"), records, seed=5)]
    assert order != [p.image for p in make_pairs(images, Path("/img"), records, seed=6)]


def test_has_border():
    mask = np.ones((20, 20), np.uint8)
    mask[5:10, 5:10] = 0
    assert has_border(mask, 5) and not has_border(mask, 6)
    assert not has_border(mask, 0)


def _record(ratio, border, value):
    return {"file": "f", "mask": "m", "hole_ratio": ratio, "border": border,
            "psnr": value, "ssim": value / 100, "l1": value / 10, "l1_hole": value / 5}


def test_reports_json_csv_table_and_grids(tmp_path):
    model = [_record(0.05, False, 10.0), _record(0.15, True, 20.0)]
    base = [_record(0.05, False, 5.0), _record(0.15, True, 8.0)]
    results = {"model": aggregate(model, BINS), "opencv-ns": aggregate(base, BINS)}
    results["model"][1]["psnr"] = math.inf  # must not break strict JSON
    write_metrics_json(tmp_path / "m.json", "ckpt.pt", results)
    content = json.loads((tmp_path / "m.json").read_text())
    assert set(content) == {"checkpoint", "rows", "overall", "baselines"}
    assert content["overall"]["psnr"] is None
    assert content["baselines"]["opencv-ns"]["rows"][1]["bin"] == [0.1, 0.2]
    write_metrics_csv(tmp_path / "m.csv", results)
    lines = list(csv.reader(open(tmp_path / "m.csv")))
    assert lines[0][:4] == ["method", "bin", "border", "count"] and len(lines) == 1 + 2 * 3
    write_per_image_csv(tmp_path / "p.csv", model, BINS)
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert rows[1]["bin"] == "0.1-0.2" and rows[1]["border"] == "True"
    table = format_table(results).splitlines()
    assert "opencv-ns" in table[0] and table[-1].startswith("overall")
    assert len(table) == 2 + 2 + 1
    sample = {"image": np.zeros((12, 12, 3), np.uint8), "mask": np.ones((12, 12), np.uint8),
              "outputs": {"model": np.zeros((12, 12, 3), np.uint8)}}
    written = save_grids(tmp_path / "grids", {(0, True): [sample, sample]}, BINS)
    assert [p.name for p in written] == ["samples_0.01-0.1_border.png"]
    assert Image.open(written[0]).size == (4 * 12 + 3 * 4, 2 * 12 + 4)


def test_manifest_and_folder_masks(tmp_path):
    mask = np.ones((16, 16), np.uint8)
    mask[:4, :4] = 0
    (tmp_path / "set" / "border").mkdir(parents=True)
    save_mask(tmp_path / "set" / "border" / "0.png", mask)
    manifest = {"size": 16, "polarity": "hole_white",
                "masks": [{"file": "border/0.png", "border": True, "bin": [0.01, 0.1]}]}
    (tmp_path / "set" / "manifest.json").write_text(json.dumps(manifest))
    records, polarity = masks_from_manifest(tmp_path / "set" / "manifest.json")
    assert polarity == "hole_white" and records[0].border is True
    assert [r.name for r in masks_from_folder(tmp_path / "set")] == ["border/0.png"]
    check_mask_sizes(records, 16, 16)
    with pytest.raises(ValueError, match="--image-size 16"):
        check_mask_sizes(records, 32, 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no mask images"):
        masks_from_folder(tmp_path / "empty")


def test_manifests_of_video_and_fixed_mask_sets_are_read(tmp_path):
    """Old files of `python -m masks video` and of a run's val_masks (version 1)."""
    save_mask(tmp_path / "00000.png", np.ones((16, 16), np.uint8))
    (tmp_path / "manifest.json").write_text(
        '{"source": "clip.mp4", "polarity": "known_white", "frame_step": 1,\n'
        ' "masks": [{"file": "00000.png", "hole_ratio": 0.0}]}\n')
    records, polarity = masks_from_manifest(tmp_path / "manifest.json")
    assert polarity == "known_white" and [(r.name, r.border) for r in records] == [
        ("00000.png", None)]
    (tmp_path / "manifest.json").write_text(
        '{"version": 1, "size": 16, "bins": [[0.01, 0.1]],\n'
        ' "masks": [{"file": "00000.png", "hole_ratio": 0.0, "bin": 0}]}\n')
    records, _ = masks_from_manifest(tmp_path / "manifest.json")
    assert records[0].path == tmp_path / "00000.png" and records[0].border is None
    (tmp_path / "manifest.json").write_text('{"masks": [{"file": "missing.png"}]}')
    with pytest.raises(ValueError, match="missing.png' listed in"):
        masks_from_manifest(tmp_path / "manifest.json")


def test_run_evaluation_counts_bins_and_reports_bad_pairs(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    masks = []
    for i, holes in enumerate([10, 40, 90]):  # of 256 pixels: bins 0, 1 and 3
        mask = np.ones(256, np.uint8)
        mask[:holes] = 0
        save_mask(tmp_path / f"m{i}.png", mask.reshape(16, 16))
        masks.append(MaskRecord(tmp_path / f"m{i}.png", f"m{i}.png"))
    pairs = make_pairs([tmp_path / "a.png"], tmp_path, masks, seed=0)
    dataset = PairDataset(pairs, EvalSettings(16, 16, "center_crop", border_px=2))
    predictors = {"model": lambda image, mask: image, "gray": lambda image, m: image * 0 + 0.5}
    result = run_evaluation(dataset, predictors, BINS, batch_size=2, grid_rows=1, progress=False)
    assert [bin_index(r["hole_ratio"], BINS) for r in result.records["model"]] == [0, 1, 3]
    assert [r["hole_ratio"] for r in result.records["model"]] == [10 / 256, 40 / 256, 90 / 256]
    assert [r["border"] for r in result.records["model"]] == [False] * 3  # holes start at row 0
    assert all(r["l1_hole"] > 0 for r in result.records["gray"])
    assert len(result.samples) == 3 and set(result.samples[(0, False)][0]["outputs"]) == {
        "model", "gray"}
    no_grids = run_evaluation(dataset, predictors, BINS, grid_rows=0, progress=False)
    assert no_grids.samples == {} and len(no_grids.records["model"]) == 3
    assert save_grids(tmp_path / "grids", {(0, False): []}, BINS) == []
    assert not (tmp_path / "grids").exists()
    gray = PairDataset(pairs, EvalSettings(16, 16, "resize", channels=1))[0]["image"]
    assert gray.shape == (1, 16, 16) and gray.dtype == torch.uint8
    bad = PairDataset(pairs, EvalSettings(8, 8, "center_crop"))
    with pytest.raises(ValueError, match="expected 8x8"):
        run_evaluation(bad, predictors, BINS, progress=False)
