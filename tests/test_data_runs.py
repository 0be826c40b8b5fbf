"""Runs on awkward image folders: looping symlinks and file names that plain lists cannot hold."""

import csv
import runpy
from pathlib import Path

import cv2
import numpy as np
from conftest import make_images
from run_helpers import run

from inpainting.data import read_file_list

ROOT = Path(__file__).resolve().parents[1]
AWKWARD = ["a.png b.png", "new\nline.png", "#hash.png", "tab\tname.png", "\u00e9t\u00e9.png"]


def _config(tmp_path: Path, val: Path) -> Path:
    """The tiny 32 px CPU config (see conftest.tiny_config) with a separate validation folder."""
    train = make_images(tmp_path / "train", count=4)
    path = tmp_path / "tiny.yaml"
    path.write_text(f"""
model: {{depth: 3, base_channels: 8}}
data: {{train: '{train}', val: '{val}', image_size: 32, batch_size: 2, num_workers: 0}}
masks: {{val_count: 4}}
loss: {{vgg_weights: none}}
train: {{run_dir: '{tmp_path / 'run'}', max_steps: 2, log_every: 1, val_every: 2, ckpt_every: 2,
         device: cpu}}
log: {{progress: false, grid_size: 2}}
""", encoding="utf-8")
    return path


def test_a_run_whose_val_folder_holds_a_looping_symlink_trains_and_validates(tmp_path, caplog):
    val = make_images(tmp_path / "val", count=2)
    (val / "loop.png").symlink_to("loop.png")
    session, result = run(_config(tmp_path, val))
    assert result.step == 2 and result.last_eval is not None
    assert (tmp_path / "run" / "last.pt").is_file()
    assert "loop.png" in caplog.text  # named in a warning
    listed = read_file_list(tmp_path / "run" / "splits" / "val.txt", tmp_path / "run" / "splits")
    assert sorted(p.name for p in listed) == ["image_00.png", "image_01.png"]


def test_evaluate_reads_the_val_list_of_a_run_on_awkward_file_names(tmp_path, capsys):
    val = tmp_path / "val"
    val.mkdir()
    rng = np.random.default_rng(0)
    for name in AWKWARD:
        image = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        ok, encoded = cv2.imencode(".png", image)
        (val / name).write_bytes(encoded.tobytes())
    run(_config(tmp_path, val), [f"masks.val_count={len(AWKWARD)}"])
    splits = tmp_path / "run" / "splits" / "val.txt"
    assert sorted(p.name for p in read_file_list(splits, splits.parent)) == sorted(AWKWARD)
    evaluate = runpy.run_path(str(ROOT / "evaluate.py"))["main"]
    code = evaluate(["--checkpoint", str(tmp_path / "run" / "last.pt"), "--images", str(splits),
                     "--masks", str(tmp_path / "run" / "val_masks"), "--out",
                     str(tmp_path / "report"), "--device", "cpu", "--workers", "0"])
    assert code == 0, capsys.readouterr().err
    rows = list(csv.DictReader(open(tmp_path / "report" / "per_image.csv", newline="")))
    assert {Path(row["file"]).name for row in rows} == set(AWKWARD)
