"""Fault injection: kill -9 a training run at random moments, resume, get the same losses;
and the export's writers on a full disk and in a read-only folder.

Each kill lands at a chosen kind of moment: inside a checkpoint write (the temporary file
written, not yet renamed), inside validation, or at a random time. The test hook
``PCONV_TEST_PAUSE`` (``inpainting.engine.signals``) widens those moments from milliseconds to
a fraction of a second. After each kill ``last.pt`` must load, and the run continued by
``--resume`` (or started afresh when no checkpoint was written yet) must log the per-step
losses of an uninterrupted run, read from its TensorBoard events.

The export (issue 20, rule 2) must keep an earlier file intact, leave no temporary file and
exit 3 with one line naming the file, whether the disk fills mid-write (ENOSPC injected into
the atomic writer; a file size limit on a real process), or the folder is read-only.
"""

import errno
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from deploy_helpers import tiny_checkpoint
from run_helpers import load, scalars

from inpainting.engine import files
from inpainting.engine.checkpoint import load_checkpoint
from inpainting.export import main as export_main

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


EARLIER_EXPORT = b"an earlier, good export"
EXPORT = [sys.executable, "-m", "inpainting.export"]


@pytest.fixture(scope="module")
def export_checkpoint(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("export") / "best.pt")


class _FillsUp:
    """A file handle whose disk is full after ``room`` bytes: what fits is written, then
    ``write`` raises ENOSPC, as the OS does."""

    def __init__(self, handle, room: int, written: list[int]) -> None:
        self.handle, self.room, self.written = handle, room, written

    def write(self, data) -> int:
        data = memoryview(data).cast("B")
        self.handle.write(data[:self.room])
        self.handle.flush()
        self.written.append(min(len(data), self.room))
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return len(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.handle.close()


def _one_error_line(stderr: str, out: Path) -> str:
    lines = [line for line in stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("python -m inpainting.export: error: ")
    assert f"'{out}'" in lines[0], lines
    return lines[0]


@pytest.mark.parametrize("export_format", ["pt2", "onnx"])
def test_an_export_that_fills_the_disk_keeps_the_earlier_file(
        export_checkpoint, tmp_path, monkeypatch, capsys, export_format):
    if export_format == "onnx":
        pytest.importorskip("onnxscript", reason="pip install .[app]")
    out = tmp_path / f"model.{export_format}"
    out.write_bytes(EARLIER_EXPORT)
    written: list[int] = []

    def fdopen(descriptor, mode="r", *args, **kwargs):
        return _FillsUp(os.fdopen(descriptor, mode, *args, **kwargs), 1000, written)

    # only the atomic writer's handles fill up: its `os` with another fdopen
    monkeypatch.setattr(files, "os", types.SimpleNamespace(**{**vars(os), "fdopen": fdopen}))
    code = export_main(["--checkpoint", str(export_checkpoint), "--format", export_format,
                        "--out", str(out)])
    line = _one_error_line(capsys.readouterr().err, out)
    assert code == 3 and "no space left on device; free some space" in line
    assert written == [1000]  # it failed mid-write, with part of the new file on disk
    assert out.read_bytes() == EARLIER_EXPORT and os.listdir(tmp_path) == [out.name]


def _export_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
            "PYTHONDONTWRITEBYTECODE": "1"}


def test_a_real_export_past_the_file_size_limit_exits_3_and_keeps_the_earlier_file(
        export_checkpoint, tmp_path):
    out = tmp_path / "model.pt2"
    out.write_bytes(EARLIER_EXPORT)
    limit = 16 * 1024  # the model is larger: torch.export.save's C++ writer used to abort

    def limit_file_size() -> None:  # the process gets EFBIG (Python ignores SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run([*EXPORT, "--checkpoint", str(export_checkpoint), "--format", "pt2",
                           "--out", str(out)], cwd=ROOT, env=_export_env(), capture_output=True,
                          text=True, timeout=300, preexec_fn=limit_file_size)
    line = _one_error_line(done.stderr, out)
    assert done.returncode == 3 and "file too large" in line, done.stderr
    assert out.read_bytes() == EARLIER_EXPORT and os.listdir(tmp_path) == [out.name]


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder the OS refuses to write into, holding an earlier export: mode 0o555, or for
    root, whom modes do not stop, the immutable attribute (ext4 and the like)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    (folder / "model.pt2").write_bytes(EARLIER_EXPORT)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)],
                                        capture_output=True).returncode != 0:
        pytest.skip("running as root without chattr +i: no read-only folder to test with")
    try:
        yield folder
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def test_a_real_export_into_a_read_only_folder_exits_3_in_one_line(export_checkpoint,
                                                                     read_only_folder):
    out = read_only_folder / "model.pt2"
    done = subprocess.run([*EXPORT, "--checkpoint", str(export_checkpoint), "--format", "pt2",
                           "--out", str(out)], cwd=ROOT, env=_export_env(), capture_output=True,
                          text=True, timeout=300)
    line = _one_error_line(done.stderr, out)
    assert done.returncode == 3 and "permission" in line, done.stderr
    assert out.read_bytes() == EARLIER_EXPORT and os.listdir(read_only_folder) == [out.name]


def test_an_export_onto_a_folder_is_refused_before_the_work(export_checkpoint, tmp_path):
    folder = tmp_path / "model.pt2"
    (folder / "inside").mkdir(parents=True)
    done = subprocess.run([*EXPORT, "--checkpoint", str(export_checkpoint), "--format", "pt2",
                           "--out", str(folder)], cwd=ROOT, env=_export_env(),
                          capture_output=True, text=True, timeout=300)
    line = _one_error_line(done.stderr, folder)
    assert done.returncode == 2 and "is a folder" in line, done.stderr
    assert os.listdir(folder) == ["inside"]
