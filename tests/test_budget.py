"""train.max_minutes: a time budget ends the run like max_steps does, and resumes add up; and
train.val_baseline."""

import importlib.util
import sys

import pytest
from run_helpers import load, run

from inpainting.engine.config import ConfigError
from inpainting.engine.errors import UserInputError
from inpainting.tasks import load_config

UNBOUNDED = ["train.max_steps=100000", "train.val_every=100000", "train.ckpt_every=100000",
             "train.log_every=100000"]


def test_budget_stops_with_final_validation_and_checkpoint_and_resumes(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    session, result = run(tiny_config, [*UNBOUNDED, "train.max_minutes=0.01"])
    assert result.stopped_by is None and 1 <= result.step < 100000
    assert result.last_eval is not None  # the final validation ran
    first = load(run_dir / "last.pt")
    assert first["step"] == result.step and first["train_seconds"] >= 0.6
    assert "train.max_minutes 0.01 reached at step" in (run_dir / "train.log").read_text()
    assert "the train.max_minutes budget of 0.01 min" in session.summary(result)

    _, more = run(None, ["train.max_minutes=0.02"], resume=str(run_dir))
    second = load(run_dir / "last.pt")
    assert more.step > result.step and second["step"] == more.step
    assert second["train_seconds"] >= 1.2 > first["train_seconds"]

    _, spent = run(None, [], resume=str(run_dir))  # the budget is spent: no further step
    assert spent.step == more.step


def test_budget_and_baseline_config_errors():
    with pytest.raises(ConfigError, match="train.max_minutes"):
        load_config(None, ["train.max_minutes=-1"])
    with pytest.raises(ConfigError, match="train.val_baseline"):
        load_config(None, ["train.val_baseline=photoshop"])
    assert load_config(None, ["train.val_baseline=opencv-telea"]).train.val_baseline


def test_validation_table_shows_the_baseline_on_the_same_pairs(tiny_config):
    _, result = run(tiny_config, ["train.val_baseline=opencv-ns"])
    scores = result.last_eval.scores
    assert set(scores) == {"model", "masked input", "opencv-ns"}
    assert scores["opencv-ns"].overall["count"] == scores["model"].overall["count"] == 6
    assert scores["opencv-ns"].overall["psnr"] > scores["masked input"].overall["psnr"]
    assert "opencv-ns" in result.last_eval.table()


@pytest.mark.skipif(importlib.util.find_spec("patchmatch_cython") is None,
                    reason="needs the patchmatch extra")
def test_patchmatch_is_a_validation_baseline(tiny_config):
    _, result = run(tiny_config, ["train.val_baseline=patchmatch", "train.max_steps=1",
                                  "train.val_every=1"])
    scores = result.last_eval.scores
    assert scores["patchmatch"].overall["psnr"] > scores["masked input"].overall["psnr"]


def test_a_baseline_without_its_package_stops_at_set_up(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "patchmatch_cython", None)  # import raises ImportError
    with pytest.raises(UserInputError, match=r"pip install '\.\[patchmatch\]'"):
        run(tiny_config, ["train.val_baseline=patchmatch"])
    assert not (tmp_path / "run").exists()  # before anything is written


def test_validation_shows_the_listed_metrics_and_every_baseline(tiny_config):
    """train.val_metrics picks the table's columns (grad-ratio by default) and val_baseline
    takes a comma list; PSNR stays in the logs for best.pt."""
    _, result = run(tiny_config, ["train.val_baseline=opencv-ns,opencv-telea", "train.max_steps=1",
                                  "train.val_every=1"])
    table = result.last_eval.table()
    assert "opencv-ns" in table and "opencv-telea" in table and " grad " in table
    assert set(result.last_eval.scores) == {"model", "masked input", "opencv-ns", "opencv-telea"}
    assert "grad-ratio" in result.last_eval.overall and "psnr" in result.last_eval.overall
    _, result = run(tiny_config, ["train.val_metrics=[psnr]", "train.max_steps=1",
                                  "train.val_every=1", "train.run_dir=" + str(
                                      tiny_config.parent / "run2")])
    assert "SSIM" not in result.last_eval.table() and "PSNR" in result.last_eval.table()
