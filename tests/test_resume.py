"""Reading what --resume and --config name, and resuming with a changed config."""

import logging
import pickle
import shutil
from pathlib import PurePosixPath

import pytest
import torch
from run_helpers import run

from inpainting.engine.checkpoint import load_checkpoint
from inpainting.engine.config import ConfigError, config_to_dict
from inpainting.engine.errors import UserInputError
from inpainting.engine.resume import check_resume_config
from inpainting.engine.run import setup_training
from inpainting.tasks import config_from_dict


def _one_line_naming(error: BaseException, path) -> str:
    text = str(error)
    assert "\n" not in text and f"'{path}'" in text, text
    assert len(text) < 250, text
    return text


@pytest.mark.parametrize("content, reason", [
    (b"", "the file is empty"),
    (b"a text file, not a checkpoint\n", "not a file written by torch.save"),
    (pickle.dumps({"model": 1, "config": {}}, protocol=4), "not a file written by torch.save"),
])
def test_a_file_that_is_not_a_checkpoint_is_one_short_line(tmp_path, content, reason):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(UserInputError) as info:
        load_checkpoint(path)
    text = _one_line_naming(info.value, path)
    assert reason in text and "pass a .pt file written by train.py" in text, text
    assert "weights_only" not in text and "EOFError" not in text, text


def test_a_foreign_pickle_inside_a_torch_file_is_one_short_line(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"model": {}, "config": {}, "path": PurePosixPath("x")}, path)  # not weights
    with pytest.raises(UserInputError) as info:
        load_checkpoint(path)
    text = _one_line_naming(info.value, path)
    assert "objects other than tensors" in text and "weights_only" not in text, text


def test_a_torch_file_that_is_no_checkpoint_says_so(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2], path)
    with pytest.raises(UserInputError, match="is not a training checkpoint of this project"):
        load_checkpoint(path)


@pytest.fixture
def finished_run(tiny_config, tmp_path):
    """A 5-step run of the tiny config: its run folder (last.pt at step 5)."""
    run(tiny_config, ["log.tensorboard=false"])
    return tmp_path / "run"


def _resume(run_dir, *overrides):
    """Set up (without fitting) a resume of ``run_dir`` to step 10 with ``overrides``."""
    session = setup_training(None, ["train.max_steps=10", *overrides], resume=str(run_dir))
    session.close()
    return session


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
            and "will not reproduce" in r.getMessage()]


@pytest.mark.parametrize("override, key, old, new", [
    ("data.batch_size=3", "data.batch_size", 2, 3),
    ("data.image_size=16", "data.image_size", 32, 16),
    ("optim.name=adamw", "optim.name", "adam", "adamw"),
    ("train.ema=0.9", "train.ema", 0.0, 0.9),
    ("optim.schedule=cosine", "optim.schedule", "constant", "cosine"),
    ("data.train={other}", "data.train", "{images}", "{other}"),
])
def test_a_change_that_alters_the_run_is_logged_and_warned_about(finished_run, tmp_path, caplog,
                                                                override, key, old, new):
    images, other = tmp_path / "images", tmp_path / "other"
    shutil.copytree(images, other)
    old, new = (str(v).format(images=images, other=other) if isinstance(v, str) else v
                for v in (old, new))
    caplog.set_level(logging.INFO)
    _resume(finished_run, override.format(other=other))
    assert f"resumed with {key} changed: {old!r} -> {new!r}" in caplog.messages, caplog.messages
    assert "resumed with train.max_steps changed: 5 -> 10" in caplog.messages
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and key in warnings[0], warnings
    # The length of a run is bookkeeping, unless the cosine schedule decays to it.
    assert ("train.max_steps" in warnings[0]) == (key == "optim.schedule"), warnings


def test_bookkeeping_changes_are_logged_without_a_warning(finished_run, caplog):
    caplog.set_level(logging.INFO)
    _resume(finished_run, "train.val_every=2", "log.progress=true")
    assert "resumed with train.val_every changed: 5 -> 2" in caplog.messages
    assert "resumed with log.progress changed: False -> True" in caplog.messages
    assert not _warnings(caplog)


def test_an_unchanged_resume_says_nothing_about_changes(finished_run, caplog):
    caplog.set_level(logging.INFO)
    session = setup_training(None, ["train.max_steps=5", "train.max_steps=10"],
                             resume=str(finished_run / "last.pt"))
    session.close()
    assert [m for m in caplog.messages if "resumed with" in m] == [
        "resumed with train.max_steps changed: 5 -> 10"]


@pytest.mark.parametrize("overrides, named", [
    (["model.base_channels=16"], "model.base_channels 8 -> 16"),
    (["model.depth=4", "model.upsampling=bilinear"], "model.depth 3 -> 4, model.upsampling "),
])
def test_a_changed_model_is_refused_in_one_line_naming_the_keys(finished_run, overrides, named):
    with pytest.raises(ConfigError) as info:
        _resume(finished_run, *overrides)
    text = str(info.value)
    assert named in text and "\n" not in text and len(text) < 300, text
    assert "--set model.base_channels=8" in text or "--set model.depth=3" in text, text


def test_freezing_the_encoder_bn_on_resume_is_a_run_change_not_an_error(finished_run, caplog):
    caplog.set_level(logging.INFO)
    _resume(finished_run, "model.freeze_encoder_bn=true")
    assert "model.freeze_encoder_bn" in _warnings(caplog)[0]


def test_another_run_dir_on_resume_is_refused_the_same_one_accepted(finished_run, tmp_path):
    with pytest.raises(ConfigError, match=r"--resume continues the run in its own folder .*"
                                          r"drop --set train.run_dir"):
        _resume(finished_run, f"train.run_dir={tmp_path / 'elsewhere'}")
    assert not (tmp_path / "elsewhere").exists()
    assert _resume(finished_run, f"train.run_dir={finished_run}").run_dir == finished_run


def test_changed_optimizer_settings_are_the_ones_trained_with(finished_run):
    session = _resume(finished_run, "optim.lr=1e-4", "optim.weight_decay=0.01",
                      "optim.betas=[0.5, 0.9]", "optim.name=adamw")
    group = session.trainer.optimizer.param_groups[0]
    assert group["lr"] == pytest.approx(1e-4) and group["weight_decay"] == 0.01
    assert group["betas"] == (0.5, 0.9) and group["decoupled_weight_decay"]
    assert session.trainer.scheduler.base_lrs == [pytest.approx(1e-4)]


def test_resume_with_a_changed_batch_size_trains_on(finished_run, tiny_config):
    _, result = run(None, ["train.max_steps=7", "data.batch_size=3"], resume=str(finished_run))
    assert result.step == 7


@pytest.mark.parametrize("key, value", [("arch", "resnet34"), ("padding", "reflect"),
                                        ("num_classes", 7)])
def test_a_changed_classifier_network_is_refused(tmp_path, key, value):
    section = {"arch": "resnet18", "padding": "partial", "num_classes": 3}
    values = {"task": "classification", "data": {"train": "t", "val": "v"},
              "classifier": section}
    saved = config_to_dict(config_from_dict(values))
    changed = config_from_dict({**values, "classifier": {**section, key: value}})
    with pytest.raises(ConfigError, match=f"classifier.{key}"):
        check_resume_config(saved, changed, [], tmp_path)
