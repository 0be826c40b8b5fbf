"""Engine robustness: failures during a run cost no training and are one clear line.

Validation failures save ``last.pt`` first, a failed checkpoint write leaves no ``.tmp`` and
says what to do, a stop signal aborts validation and grids between batches, and a run folder
is locked against a second run.
"""

import errno
import multiprocessing
import os
import runpy
import signal
import time
from pathlib import Path

import pytest
import torch
from conftest import make_images
from run_helpers import load, run

from inpainting.engine.checkpoint import save_checkpoint
from inpainting.engine.errors import EnvironmentProblem, UserInputError
from inpainting.engine.run import setup_training
from inpainting.engine.run_lock import LOCK_NAME, acquire_run_lock

ROOT = Path(__file__).resolve().parents[1]
REAL_SAVE = torch.save


def bad_images(folder: Path, names=("bad_0.png", "bad_1.png")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"not an image")
    return folder


def train_main(argv):
    return runpy.run_path(str(ROOT / "train.py"))["main"](argv)


def one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("train.py: error")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


# ---------------------------------------------------------------------------------------------
# Validation failures


def test_validation_skips_and_counts_undecodable_images(tiny_config, tmp_path):
    val = make_images(tmp_path / "val", count=2)
    bad_images(val, ["zz_bad.png"])  # read third: the up-front check decodes the first
    run(tiny_config, ["train.max_steps=2", "train.val_every=2", f"data.val={val}"])
    log_text = (tmp_path / "run" / "train.log").read_text()
    # 6 validation masks over 3 files: the bad file is met twice
    assert "validation at step 2 skipped 2 undecodable image file(s)" in log_text
    assert load(tmp_path / "run" / "last.pt")["step"] == 2


def test_strict_validation_failure_saves_last_pt_first(tiny_config, tmp_path):
    val = make_images(tmp_path / "val", count=2)
    bad = bad_images(val, ["zz_bad.png"]) / "zz_bad.png"
    with pytest.raises(UserInputError) as info:
        run(tiny_config, ["train.max_steps=6", "train.val_every=3", "train.ckpt_every=1000",
                          f"data.val={val}", "data.strict=true"])
    message = str(info.value)
    assert "validation at step 3 failed" in message and str(bad) in message
    assert f"saved in {tmp_path / 'run' / 'last.pt'} (step 3)" in message
    assert f"--resume {tmp_path / 'run'}" in message and "\n" not in message
    assert load(tmp_path / "run" / "last.pt")["step"] == 3


def test_a_bug_in_validation_keeps_its_traceback_after_saving(tiny_config, tmp_path, monkeypatch,
                                                               caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the scorer")

    monkeypatch.setattr("inpainting.tasks.inpainting.task.evaluate", broken)
    with pytest.raises(RuntimeError, match="a bug in the scorer"):
        run(tiny_config, ["train.max_steps=4", "train.val_every=2", "train.ckpt_every=1000"])
    assert load(tmp_path / "run" / "last.pt")["step"] == 2
    assert "validation at step 2 failed: a bug in the scorer" in caplog.text


def test_strict_validation_failure_is_one_line_with_exit_code_2(tiny_config, tmp_path, capsys):
    val = make_images(tmp_path / "val", count=2)
    bad_images(val, ["zz_bad.png"])
    code = train_main(["--config", str(tiny_config), "--set", f"data.val={val}", "--set",
                       "data.strict=true", "--set", "train.max_steps=2"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "zz_bad.png" in line and "last.pt" in line


@pytest.mark.parametrize("strict", [False, True])
def test_undecodable_validation_set_is_refused_before_the_first_step(tiny_config, tmp_path,
                                                                     strict):
    val = bad_images(tmp_path / "bad")
    match = r"bad_0\.png.*data.strict" if strict else r"validation images of data.val.*bad_0\.png"
    with pytest.raises(UserInputError, match=match):
        setup_training(str(tiny_config), [f"data.val={val}", f"data.strict={str(strict).lower()}"])
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# Checkpoint and run-folder writes


def torn_save(error):
    """A torch.save that writes half a file, then fails with ``error`` (or, for None, with
    torch's own error for a full disk: a write to /dev/full)."""

    def save(obj, file):
        Path(file).write_bytes(b"half a checkpoint")
        if error is None:
            REAL_SAVE(obj, "/dev/full")
        raise error

    return save


@pytest.mark.parametrize("error, reason", [
    (None, "the write failed with"),
    (OSError(errno.ENOSPC, "No space left on device"), "no space left on device"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "disk quota exceeded"),
    (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
    (OSError(errno.EROFS, "Read-only file system"), "read-only file system"),
])
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_failed_checkpoint_write_removes_the_tmp_file_and_says_what_to_do(
        tmp_path, monkeypatch, error, reason):
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1, "model": {"w": torch.ones(2)}}, path)
    monkeypatch.setattr(torch, "save", torn_save(error))
    with pytest.raises(EnvironmentProblem) as info:
        save_checkpoint({"step": 2, "model": {"w": torch.zeros(2)}}, path)
    message = str(info.value)
    assert f"cannot write checkpoint '{path}'" in message and reason in message
    assert "free some space" in message and "train.run_dir" in message
    assert "inline_container" not in message and "\n" not in message
    assert load(path)["step"] == 1 and not list(tmp_path.glob("*.tmp"))


def test_other_checkpoint_errors_keep_their_type_and_leave_no_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "save", torn_save(RuntimeError("CUDA error: device lost")))
    with pytest.raises(RuntimeError, match="CUDA error"):
        save_checkpoint({"step": 2}, tmp_path / "last.pt")
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_full_disk_at_checkpoint_time_is_one_line_with_exit_code_3(tiny_config, tmp_path,
                                                                   monkeypatch, capsys):
    monkeypatch.setattr(torch, "save", torn_save(None))
    code = train_main(["--config", str(tiny_config), "--set", "train.max_steps=2"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 3 and str(tmp_path / "run" / "last.pt") in line and "train.run_dir" in line
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_unwritable_samples_folder_during_the_run_is_one_line_with_exit_code_3(
        tiny_config, tmp_path, monkeypatch, capsys):
    def refused(grid, path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr("inpainting.tasks.inpainting.validation.save_image", refused)
    code = train_main(["--config", str(tiny_config), "--set", "train.max_steps=4", "--set",
                       "train.val_every=2", "--set", "train.ckpt_every=1000"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 3 and "permission denied" in line and "samples" in line, line
    assert load(tmp_path / "run" / "last.pt")["step"] == 2  # saved before the error left


# ---------------------------------------------------------------------------------------------
# Stop signals inside validation and grids


class SignalAtBatch(torch.utils.data.Dataset):
    """A validation set wrapper that sends SIGTERM when sample ``at`` is read; counts reads."""

    def __init__(self, dataset, at):
        self.dataset, self.at, self.reads = dataset, at, 0

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        self.reads += 1
        if self.reads == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return self.dataset[index]


def test_sigterm_aborts_validation_between_batches_and_saves(tiny_config, tmp_path):
    session = setup_training(str(tiny_config), ["train.max_steps=4", "train.val_every=2",
                                                "train.ckpt_every=1000", "masks.val_count=60"])
    trainer = session.trainer
    dataset = SignalAtBatch(trainer.val_loader.dataset, at=3)
    trainer.val_loader = torch.utils.data.DataLoader(dataset, batch_size=2)
    result = trainer.fit()
    session.close()
    assert result.stopped_by == "SIGTERM" and result.step == 2
    assert dataset.reads <= 6  # stopped after the batch in flight, not 60 samples later
    assert load(tmp_path / "run" / "last.pt")["step"] == 2
    assert not (tmp_path / "run" / "best.pt").exists() and result.best_score is None
    log_text = (tmp_path / "run" / "train.log").read_text()
    assert "validation at step 2 aborted by SIGTERM" in log_text
    assert "validation at step 2:" not in log_text


def test_sigterm_aborts_an_interval_grid_and_saves(tiny_config, tmp_path):
    session = setup_training(str(tiny_config), ["train.max_steps=4", "train.val_every=1000",
                                                "log.image_every=2", "log.grid_size=6",
                                                "train.ckpt_every=1000"])
    trainer = session.trainer
    dataset = SignalAtBatch(trainer.val_loader.dataset, at=2)
    trainer.val_loader = torch.utils.data.DataLoader(dataset, batch_size=2)
    result = trainer.fit()
    session.close()
    assert result.stopped_by == "SIGTERM" and result.step == 2 and dataset.reads == 2
    assert load(tmp_path / "run" / "last.pt")["step"] == 2
    assert not (tmp_path / "run" / "samples").exists()


# ---------------------------------------------------------------------------------------------
# One run per run folder


def test_a_run_folder_in_use_is_refused_and_released_at_the_end(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    lock = acquire_run_lock(run_dir)
    assert (run_dir / LOCK_NAME).read_text().strip() == str(os.getpid())
    with pytest.raises(EnvironmentProblem, match=rf"'{run_dir}' is in use by another run "
                                                 rf"\(pid {os.getpid()}\)"):
        setup_training(str(tiny_config), ["train.max_steps=1"])
    lock.release()
    run(tiny_config, ["train.max_steps=1"])  # free again; the run releases its lock at the end
    assert not (run_dir / LOCK_NAME).exists()
    acquire_run_lock(run_dir).release()


def test_a_failed_set_up_releases_the_lock(tiny_config, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug while building the session")

    monkeypatch.setattr("inpainting.engine.run._build_session", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        setup_training(str(tiny_config), ["train.max_steps=1"])
    acquire_run_lock(tmp_path / "run").release()


def started_then_sleep(started) -> None:
    started.set()
    time.sleep(30)


def test_a_forked_worker_does_not_keep_a_dead_runs_lock(tmp_path):
    """DataLoader workers are forked; the lock must die with the run, not with its workers."""
    lock = acquire_run_lock(tmp_path)
    context = multiprocessing.get_context("fork")
    started = context.Event()
    worker = context.Process(target=started_then_sleep, args=(started,))
    worker.start()
    try:
        assert started.wait(30)
        os.close(lock._descriptor)  # the run dies (kill -9): its descriptor closes, no clean-up
        acquire_run_lock(tmp_path).release()  # while the worker still lives
    finally:
        worker.kill()
        worker.join()
