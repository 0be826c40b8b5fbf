"""Tasks as packages: a task defined only in the tests runs through the normal set-up, a run
keeps only its own task's config sections, and checkpoints written before the layout change
(``tests/fixtures/checkpoints_v1``, made at f05e55b) still load, resume and evaluate."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import make_images
from PIL import Image
from run_helpers import scalars

from inpainting import tasks
from inpainting.engine.checkpoint import load_checkpoint
from inpainting.engine.errors import UserInputError
from inpainting.engine.run import fit_and_report, setup_training
from inpainting.tasks.inpainting.checkpoint import load_model_from_checkpoint

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "checkpoints_v1"


@pytest.fixture
def toy():
    tasks.register("toy", "toy_task:DEFINITION")
    yield
    tasks._LOCATIONS.pop("toy")
    tasks._LOADED.pop("toy", None)


def toy_run(run_dir: Path, steps: int, resume: bool = False, capsys=None) -> int:
    settings = [f"train.run_dir={run_dir}", f"train.max_steps={steps}", "train.log_every=1",
                "train.val_every=3", "train.ckpt_every=3", "train.device=cpu",
                "log.progress=false", "optim.lr=0.05"]
    if resume:
        session = setup_training(None, [f"train.max_steps={steps}"], resume=str(run_dir))
    else:
        session = setup_training(None, settings, values={"task": "toy"})
    return fit_and_report(session, "train.py")


def test_a_task_defined_in_the_tests_trains_saves_resumes_and_summarises(toy, tmp_path, capsys):
    assert toy_run(tmp_path / "whole", 6) == 0
    summary = capsys.readouterr().out
    assert "Trained to step 6" in summary and "Toy MSE" in summary
    assert toy_run(tmp_path / "part", 3) == 0
    assert (tmp_path / "part" / "last.toy").is_file() and (tmp_path / "part" / "toy.txt").is_file()
    assert toy_run(tmp_path / "part", 6, resume=True) == 0
    assert scalars(tmp_path / "part", "train/total") == pytest.approx(
        scalars(tmp_path / "whole", "train/total"))
    assert (tmp_path / "part" / "toy.jsonl").read_text() == \
        (tmp_path / "whole" / "toy.jsonl").read_text()
    saved = yaml.safe_load((tmp_path / "whole" / "config.yaml").read_text())
    assert set(saved) == {"task", "optim", "train", "log", "toy"}
    assert load_checkpoint(tmp_path / "whole")["step"] == 6


def test_the_migration_keeps_the_tasks_sections_and_renames_its_old_keys(toy):
    old = {"task": "toy", "toy": {"rows": 32}, "model": {"depth": 3}, "optim": {"lr": 0.1}}
    assert tasks.migrate_config(old) == {"task": "toy", "toy": {"samples": 32},
                                         "optim": {"lr": 0.1}}
    assert tasks.config_from_dict(tasks.migrate_config(old)).toy.samples == 32


def test_an_inpainting_checkpoint_of_the_old_layout_loads_and_resumes(tmp_path):
    model, config = load_model_from_checkpoint(FIXTURES / "inpainting_last.pt")
    assert "classifier" not in config and config["model"]["depth"] == 3
    image, mask = torch.rand(1, 3, 32, 32), (torch.rand(1, 1, 32, 32) > 0.3).float()
    assert torch.isfinite(model(image * mask, mask)[0]).all()
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(FIXTURES / "inpainting_last.pt", run / "last.pt")
    images = make_images(tmp_path / "images", 6)
    done = subprocess.run(
        [sys.executable, "train.py", "--resume", str(run), "--set", f"data.train={images}",
         "--set", "train.max_steps=5", "--set", "log.progress=false"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Trained to step 5" in done.stdout
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert set(saved) == {"task", "optim", "train", "log", "model", "data", "masks", "loss"}
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 5


def class_folders(root: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("val", 2)):
        for name in ("a", "b"):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
                Image.fromarray(image).save(folder / f"{index}.png")
    return root / "train", root / "val"


def classify(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "classify.py", "-a", "small_vgg", "-b", "4", "-j", "0",
                           "--crop-size", "16", "--resize-size", "16", "--device", "cpu", *argv],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("fixture", ["classification_checkpoint.pth.tar",
                                     "nvidia_main_checkpoint.pth.tar"])
def test_classification_checkpoints_of_the_old_layout_evaluate_and_resume(tmp_path, fixture):
    train, val = class_folders(tmp_path)
    done = classify("--data_val", str(val), "-e", "--resume", str(FIXTURES / fixture))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("* Prec@1")
    run = tmp_path / "checkpoint_small_vgg_t"
    run.mkdir()
    shutil.copy(FIXTURES / fixture, run / "checkpoint.pth.tar")
    done = classify("--data_train", str(train), "--data_val", str(val), "--epochs", "2",
                    "--ckptdirprefix", f"{tmp_path}/", "--prefix", "t", "--resume", str(run))
    assert done.returncode == 0, done.stderr
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert set(saved) == {"task", "optim", "train", "log", "data", "classifier"}
    assert set(saved["data"]) == {"train", "val", "batch_size", "num_workers", "strict"}
    assert torch.load(run / "checkpoint.pth.tar", weights_only=True)["epoch"] == 2


def test_a_checkpoint_of_the_other_task_is_named_by_the_registry(tmp_path):
    with pytest.raises(UserInputError, match=r"is a classification checkpoint \(arch "
                                             r"small_vgg\), not an inpainting one"):
        load_model_from_checkpoint(FIXTURES / "classification_checkpoint.pth.tar")
    with pytest.raises(UserInputError, match="checkpoint of NVIDIA's main.py"):
        load_model_from_checkpoint(FIXTURES / "nvidia_main_checkpoint.pth.tar")
