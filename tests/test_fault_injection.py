"""Fault injection: kill -9 a training run at random moments, resume, get the same losses.

Each kill lands at a chosen kind of moment: inside a checkpoint write (the temporary file
written, not yet renamed), inside validation, or at a random time. The test hook
``PCONV_TEST_PAUSE`` (``inpainting.engine.signals``) widens those moments from milliseconds to
a fraction of a second. After each kill ``last.pt`` must load, and the run continued by
``--resume`` (or started afresh when no checkpoint was written yet) must log the per-step
losses of an uninterrupted run, read from its TensorBoard events.
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_helpers import load, scalars

from inpainting.engine.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
STEPS = 12
OVERRIDES = [f"train.max_steps={STEPS}", "train.val_every=4", "train.ckpt_every=2",
             "train.log_every=1", "masks.val_count=20"]
PAUSES = "checkpoint_write:0.3,validation_batch:0.05"  # a write 0.3 s, validation 0.5 s
MARKER = "test hook: pausing at "


def train_command(config: Path, run_dir: Path) -> list[str]:
    """A fresh run, or ``--resume`` once the run has a checkpoint."""
    if (run_dir / "last.pt").exists():
        head = ["--resume", str(run_dir)]
    else:
        head = ["--config", str(config), *(f"--set={o}" for o in OVERRIDES),
                f"--set=train.run_dir={run_dir}"]
    return [sys.executable, str(ROOT / "train.py"), *head]


def launch(command: list[str], pause: str = "") -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
           "PCONV_TEST_PAUSE": pause}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def log_count(log: Path, text: str) -> int:
    return log.read_text().count(text) if log.exists() else 0


def kill_at(process: subprocess.Popen, log: Path, moment: tuple[str, float]) -> bool:
    """SIGKILL ``process`` at ``moment``; False if it finished first.

    ``("checkpoint_write" | "validation_batch", n)``: while it pauses there the n-th time;
    ``("time", seconds)``: that long after its set-up logged the start of the run.
    """
    kind, value = moment
    marker, count = (" run in ", 1) if kind == "time" else (MARKER + kind, value)
    target = log_count(log, marker) + count
    deadline = time.monotonic() + 120
    while log_count(log, marker) < target:
        if process.poll() is not None:
            assert process.returncode == 0, process.communicate()[1]
            return False
        assert time.monotonic() < deadline, f"the run never logged {marker!r}"
        time.sleep(0.02)
    if kind == "time":
        time.sleep(value)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    return True


def check_after_kill(run_dir: Path, moment: tuple[str, float]) -> None:
    if moment[0] == "checkpoint_write":  # killed between the write and the rename
        assert list(run_dir.glob("*.pt.tmp"))
    if (run_dir / "last.pt").exists():
        state = load(run_dir / "last.pt")  # weights_only: plain types and tensors
        assert state["step"] % 2 == 0 and 0 < state["step"] <= STEPS
        assert load_checkpoint(run_dir)["step"] == state["step"]


def finished(run_dir: Path) -> bool:
    return (run_dir / "last.pt").exists() and load(run_dir / "last.pt")["step"] == STEPS


def losses_after_kills(config: Path, run_dir: Path, moments) -> tuple[dict[int, float], int]:
    """Kill a run at each moment in turn, then let it finish; its per-step losses and the
    number of kills (fewer than moments when the run finished first)."""
    kills = 0
    for moment in moments:
        if finished(run_dir):
            break
        process = launch(train_command(config, run_dir), PAUSES)
        if kill_at(process, run_dir / "train.log", moment):
            kills += 1
            check_after_kill(run_dir, moment)
    if not finished(run_dir):
        done = launch(train_command(config, run_dir))
        _, stderr = done.communicate(timeout=300)
        assert done.returncode == 0, stderr
    assert finished(run_dir) and not list(run_dir.glob("*.tmp"))
    return scalars(run_dir, "train/total"), kills


@pytest.fixture
def uninterrupted(tiny_config, tmp_path) -> dict[int, float]:
    process = launch(train_command(tiny_config, tmp_path / "full"))
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    return scalars(tmp_path / "full", "train/total")


def assert_same_losses(resumed: dict[int, float], expected: dict[int, float]) -> None:
    assert sorted(resumed) == list(range(1, STEPS + 1)) == sorted(expected)
    assert all(resumed[step] == expected[step] for step in expected), (resumed, expected)


def test_kill_9_in_a_checkpoint_write_in_validation_and_at_random(tiny_config, tmp_path,
                                                                   uninterrupted):
    moments = [("time", random.Random(0).uniform(0, 1)), ("checkpoint_write", 2),
               ("validation_batch", 3)]
    resumed, kills = losses_after_kills(tiny_config, tmp_path / "run", moments)
    assert kills == len(moments)
    assert_same_losses(resumed, uninterrupted)


@pytest.mark.slow
def test_kill_9_at_many_random_moments(tiny_config, tmp_path, uninterrupted):
    rng = random.Random(1)
    moments = []
    for _ in range(15):
        kind = rng.choice(["checkpoint_write", "validation_batch", "time"])
        moments.append((kind, rng.uniform(0, 2) if kind == "time" else rng.randint(1, 4)))
    resumed, kills = losses_after_kills(tiny_config, tmp_path / "run", moments)
    assert kills >= 8
    assert_same_losses(resumed, uninterrupted)
