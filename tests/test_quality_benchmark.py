"""benchmarks/quality.py end to end on tiny synthetic photos, and configs/photos_cpu.yaml."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from run_helpers import load_benchmark

from inpainting.tasks import load_config

REPO = Path(__file__).resolve().parents[1]


def _photos(folder: Path, count: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        small = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
        Image.fromarray(small).resize((100, 80), Image.BICUBIC).save(folder / f"p{index:02d}.jpg")
    return folder


def test_split_takes_four_fixed_test_photos():
    quality = load_benchmark("quality")
    photos = [Path(f"{i:02d}.jpg") for i in range(16)]
    train, test = quality.split_photos(photos)
    assert [p.name for p in test] == ["02.jpg", "06.jpg", "10.jpg", "14.jpg"]
    assert len(train) == 12 and not set(train) & set(test)
    with pytest.raises(SystemExit, match="at least 5"):
        quality.split_photos(photos[:4])


def test_quality_benchmark_trains_evaluates_and_plots(tmp_path):
    quality = load_benchmark("quality")
    photos = _photos(tmp_path / "photos", 7)
    out = tmp_path / "out"
    quality.main(["--photos", str(photos), "--minutes", "0.02", "--evals", "2", "--crop", "64",
                  "--crops", "1", "--masks-per-bin", "1", "--out", str(out),
                  "--set", "model.depth=3", "--set", "model.base_channels=8",
                  "--set", "data.image_size=32", "--set", "data.batch_size=2",
                  "--set", "data.num_workers=0", "--set", "masks.val_count=6",
                  "--set", "train.max_steps=1"])
    results = json.loads((out / "results.json").read_text())
    assert len(results) == 3 and results[0]["minutes"] == results[0]["step"] == 0
    assert results[1]["minutes"] <= results[2]["minutes"]
    assert results[1]["step"] == results[2]["step"] == 1  # a finished run is not resumed
    final = results[-1]["scores"]
    assert set(final) == {"model", "opencv-telea", "opencv-ns"}
    assert len(final["opencv-ns"]["bins"]) == 6
    assert all(np.isfinite(row["psnr"]) for row in final["model"]["bins"].values())
    assert sorted(p.name for p in (out / "test_crops").iterdir()) == [
        "p01_0.png", "p03_0.png", "p04_0.png", "p06_0.png"]
    table = (out / "table.md").read_text()
    assert "| (0.5, 0.6] |" in table and "opencv-ns" in table
    with Image.open(out / "psnr_vs_minutes.png") as plot:
        assert plot.size == (560, 320)
    with pytest.raises(SystemExit, match="earlier run"):
        quality.main(["--photos", str(photos), "--out", str(out)])


def test_photos_cpu_recipe_loads_with_a_folder():
    config = load_config(REPO / "configs" / "photos_cpu.yaml", ["data.train=/photos"])
    assert config.train.max_minutes == 30 and config.train.val_baseline == "opencv-ns"
    assert config.model.norm == "batch" and config.model.prefill == "diffusion"


def test_demo_uses_the_recipe_and_validates_beside_navier_stokes_and_patchmatch():
    demo = load_config(REPO / "configs" / "demo.yaml")
    assert demo.model.prefill == "diffusion"
    assert demo.train.baselines() == ("opencv-ns", "patchmatch")
    assert "grad-ratio" in demo.train.val_metrics
    assert demo.train.max_minutes > 0 and demo.train.finetune_step == 0
