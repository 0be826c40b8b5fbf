"""train.py as users run it: in a subprocess, killed with SIGTERM, and under torchrun (gloo)."""

import errno
import os
import runpy
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from run_helpers import load, run, scalars

from inpainting.tasks.inpainting.checkpoint import load_model_from_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "train.py"


def env_one_thread() -> dict[str, str]:
    """Subprocess environment: one thread each, so two processes fit on two cores."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def train(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TRAIN), *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env_one_thread())



@pytest.mark.parametrize("argv, message", [
    (["--set", "optim.lr=1e-4"], "no config given: use --config configs/X.yaml"),
    (["--config", "missing.yaml"], "missing.yaml"),
    (["--config", "{config}", "--set", "optim.lrr=1"], "unknown key 'optim.lrr'"),
    (["--config", "{config}", "--set", "data.image_size=30"], "data.image_size"),
    (["--config", "{config}", "--set", "data.train={tmp}/nowhere"], "nowhere"),
    (["--config", "{config}", "--set", "train.sync_bn=true"], "train.sync_bn needs CUDA"),
    (["--config", "{config}", "--resume", "{tmp}/run"], "run folder '{tmp}/run' does not exist"),
])
def test_user_errors_are_one_line_with_exit_code_2(tiny_config, tmp_path, argv, message):
    argv = [a.format(config=tiny_config, tmp=tmp_path) for a in argv]
    done = train(*argv)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: error: "), done.stderr
    assert message.format(tmp=tmp_path) in lines[0]
    assert "Traceback" not in done.stderr


def _main():
    return runpy.run_path(str(TRAIN))["main"]


def test_help_states_the_exit_codes_and_what_ctrl_c_does(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _main()(["--help"])
    printed = capsys.readouterr().out
    assert exit_info.value.code == 0 and "exit codes:" in printed
    assert all(f"  {code} " in printed for code in ("0", "1", "2", "3", "130"))
    assert "SIGTERM" in printed and "saves last.pt and exits 0" in printed


def test_bad_argument_is_one_line_with_exit_code_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _main()(["--config"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("train.py: error: argument --config"), lines


def test_unwritable_run_folder_is_one_line_with_exit_code_3(tiny_config, tmp_path, capsys):
    (tmp_path / "blocker").write_text("a file where the run folder's parent should be")
    code = _main()(["--config", str(tiny_config), "--set",
                    f"train.run_dir={tmp_path / 'blocker' / 'run'}"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]  # the log warns about VGG
    assert code == 3 and len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith("train.py: error: ") and "blocker" in errors[0], errors
    assert "a part of the path is a file, not a folder" in errors[0], errors


@pytest.mark.parametrize("error", [RuntimeError("CUDA error: an illegal memory access"),
                                   ValueError("a bug in a builder")])
def test_failures_during_set_up_keep_their_traceback(tiny_config, monkeypatch, error):
    """A CUDA/NCCL failure or a bug is no user error: it is not turned into a one-line exit 2."""

    def broken_builder(**model):
        raise error

    monkeypatch.setattr("inpainting.tasks.inpainting.model.build_model", broken_builder)
    with pytest.raises(type(error), match=str(error)):
        _main()(["--config", str(tiny_config)])


def test_a_runtime_error_in_set_up_exits_1_with_a_traceback(tiny_config):
    script = ("import runpy, sys\n"
              "import inpainting.tasks.inpainting.model as session\n"
              "def broken_builder(**model):\n"
              "    raise RuntimeError('NCCL error: unhandled system error')\n"
              "session.build_model = broken_builder\n"
              f"sys.argv = ['train.py', '--config', {str(tiny_config)!r}]\n"
              f"runpy.run_path({str(TRAIN)!r}, run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env_one_thread())
    assert done.returncode == 1, done.stderr
    assert "Traceback" in done.stderr and "NCCL error" in done.stderr


def test_sigterm_saves_a_loadable_checkpoint_and_the_run_resumes(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, str(TRAIN), "--config", str(tiny_config), "--set",
               "train.max_steps=100000", "--set", "train.val_every=100000"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env_one_thread())
    try:
        log = run_dir / "train.log"
        deadline = time.monotonic() + 120
        while not (log.exists() and "step 3/" in log.read_text()):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "no training step logged within 120 s"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "Stopped by SIGTERM" in stdout and f"python train.py --resume {run_dir}" in stdout
    state = load(run_dir / "last.pt")  # weights_only: plain types and tensors
    stopped_at = state["step"]
    assert stopped_at >= 3 and not list(run_dir.glob("*.tmp"))
    model, _ = load_model_from_checkpoint(run_dir, "cpu")
    assert all(torch.isfinite(p).all() for p in model.parameters())

    done = train("--resume", str(run_dir), "--set", f"train.max_steps={stopped_at + 2}")
    assert done.returncode == 0, done.stderr
    assert load(run_dir / "last.pt")["step"] == stopped_at + 2


def test_two_process_gloo_ddp_runs_three_steps(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(TRAIN), "--config", str(tiny_config),
               "--set", "train.max_steps=3", "--set", "train.val_every=3",
               "--set", "train.ckpt_every=3"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=env_one_thread())
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("Trained to step 3") == 1  # only rank 0 reports
    log_text = (run_dir / "train.log").read_text()
    assert "(2 process(es))" in log_text and "step 3/3 | loss" in log_text
    state = load(run_dir / "last.pt")
    assert state["step"] == 3
    # 8 training images shared by 2 ranks at batch 2: 2 batches per epoch and rank,
    # so 3 steps end one batch into the second epoch.
    assert state["data_position"] == {"epoch": 1, "batch": 1}
    assert (run_dir / "best.pt").is_file()
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def start(*argv: str, pause: str = "") -> subprocess.Popen:
    """train.py in the background; ``pause`` sets the PCONV_TEST_PAUSE test hook."""
    env = {**env_one_thread(), "PCONV_TEST_PAUSE": pause}
    return subprocess.Popen([sys.executable, str(TRAIN), *argv], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_log(process: subprocess.Popen, log: Path, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (log.exists() and text in log.read_text()):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, f"{text!r} not logged within {timeout} s"
        time.sleep(0.05)


def test_a_run_folder_in_use_is_refused_until_its_run_dies(tiny_config, tmp_path):
    run_dir, log = tmp_path / "run", tmp_path / "run" / "train.log"
    first = start("--config", str(tiny_config), "--set", "train.val_every=2", "--set",
                  "train.ckpt_every=1", pause="validation_batch:600")
    try:
        # step 1 saved, then it holds the folder while it validates step 2
        wait_for_log(first, log, "test hook: pausing at validation_batch")
        second = train("--resume", str(run_dir), "--set", "train.max_steps=4")
        assert second.returncode == 3, second.stderr
        line = one_line_error(second.stderr)
        assert f"run folder '{run_dir}' is in use by another run (pid {first.pid})" in line
    finally:
        first.kill()  # SIGKILL: the kernel drops its lock
        first.communicate()
    done = train("--resume", str(run_dir), "--set", "train.max_steps=2")
    assert done.returncode == 0, done.stderr
    assert load(run_dir / "last.pt")["step"] == 2


def one_line_error(stderr: str) -> str:
    """The one error line (the tiny config's random-VGG warning may precede it)."""
    lines = [line for line in stderr.strip().splitlines() if "error" in line]
    assert len(lines) == 1 and lines[0].startswith("train.py: error: "), stderr
    assert "Traceback" not in stderr, stderr
    return lines[0]


def test_sigterm_during_validation_stops_within_seconds_and_resumes_exactly(tiny_config,
                                                                            tmp_path):
    overrides = ["train.max_steps=4", "train.val_every=2", "train.ckpt_every=1000",
                 "masks.val_count=40"]
    torch.set_num_threads(1)  # as in the subprocesses, for equal float results
    run(tiny_config, [*overrides, f"train.run_dir={tmp_path / 'full'}"])
    common = ["--config", str(tiny_config), *(f"--set={o}" for o in overrides)]
    part = tmp_path / "part"
    # 20 validation batches of 0.5 s each: without the abort, the stop would take 10 s
    process = start(*common, "--set", f"train.run_dir={part}", pause="validation_batch:0.5")
    try:
        wait_for_log(process, part / "train.log", "test hook: pausing at validation_batch")
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
        stop_seconds = time.monotonic() - signalled
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert stop_seconds < 4, f"took {stop_seconds:.1f} s to stop"
    assert "Stopped by SIGTERM at step 2" in stdout
    assert load(part / "last.pt")["step"] == 2 and not (part / "best.pt").exists()
    assert "validation at step 2 aborted by SIGTERM" in (part / "train.log").read_text()

    done = train("--resume", str(part))
    assert done.returncode == 0, done.stderr
    expected, resumed = scalars(tmp_path / "full", "train/total"), scalars(part, "train/total")
    assert sorted(resumed) == [1, 2, 3, 4]
    assert [resumed[step] for step in range(1, 5)] == pytest.approx(
        [expected[step] for step in range(1, 5)], rel=0, abs=1e-6)


@pytest.mark.parametrize("command, prog", [
    ([str(TRAIN), "--config", "configs/demo.yaml"], "train.py"),
    ([str(ROOT / "evaluate.py"), "--checkpoint", "x.pt", "--images", "x"], "evaluate.py"),
    (["-m", "inpainting.predict", "--checkpoint", "x.pt", "--image", "x.png", "--mask", "m.png",
      "--out", "o.png"], "python -m inpainting.predict"),
])
def test_ctrl_c_while_torch_loads_is_one_line_with_exit_code_130(command, prog):
    """SIGINT half a second after start lands in the imports (torch takes seconds to load)."""
    process = subprocess.Popen([sys.executable, *command], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env_one_thread())
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    lines = err.strip().splitlines()
    assert process.returncode == 130 and len(lines) == 1, err
    assert lines[0].startswith(f"{prog}") and "interrupted" in lines[0], err


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error" in line]  # the log warns about VGG


def test_only_undecodable_training_images_are_refused_before_the_run_starts(tiny_config,
                                                                             tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    for index in range(5):
        (bad / f"bad_{index}.png").write_bytes(b"not an image")
    run_dir = tmp_path / "bad_run"
    code = _main()(["--config", str(tiny_config), "--set", f"data.train={bad}",
                    "--set", f"train.run_dir={run_dir}"])
    err = capsys.readouterr().err
    errors = _error_lines(err)
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert f"'{bad / 'bad_'}" in errors[0] and "data.train" in errors[0], errors
    assert "skipping" not in err and not run_dir.exists(), err  # nothing written


@pytest.mark.parametrize("workers", [0, 1])
def test_strict_data_with_a_bad_file_is_one_line_naming_it(tiny_config, tmp_path, workers):
    """The bad file is read during training, by a DataLoader worker with ``workers`` 1."""
    images, val = tmp_path / "images", tmp_path / "val"
    val.mkdir()
    shutil.copy(images / "image_00.png", val)  # nothing held out: image_09 is trained on
    (images / "image_09.png").write_bytes(b"not an image")  # last: the first ones decode
    done = train("--config", str(tiny_config), "--set", "data.strict=true", "--set",
                 f"data.val={val}", "--set", f"data.num_workers={workers}")
    errors = _error_lines(done.stderr)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(errors) == 1 and errors[0].startswith("train.py: error: "), errors
    assert f"'{images / 'image_09.png'}'" in errors[0] and "data.strict" in errors[0], errors
    assert not list((tmp_path / "run").glob("*.tmp"))


@pytest.mark.parametrize("blocked", ["file", "permission"])
def test_a_run_folder_that_cannot_be_written_is_one_line_with_exit_code_3(
        tiny_config, tmp_path, monkeypatch, capsys, blocked):
    run_dir = tmp_path / "runs" / "x"
    if blocked == "file":
        run_dir.parent.mkdir()
        run_dir.write_text("a file where the run folder should be")
    else:  # tests run as root, where chmod does not bite: refuse the folder as the OS would
        real_mkdir = Path.mkdir

        def refused_mkdir(self, *args, **kwargs):
            if self == run_dir:
                raise PermissionError(13, "Permission denied", str(self))
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", refused_mkdir)
    code = _main()(["--config", str(tiny_config), "--set", f"train.run_dir={run_dir}"])
    err = capsys.readouterr().err
    errors = _error_lines(err)
    assert code == 3 and len(errors) == 1 and "Traceback" not in err, err
    assert f"'{run_dir}'" in errors[0] and ("permissions" in errors[0]
                                           or "a file stands where" in errors[0]), errors


def test_help_says_what_happens_to_bad_images_and_unwritable_folders(capsys):
    with pytest.raises(SystemExit):
        _main()(["--help"])
    printed = " ".join(capsys.readouterr().out.split())
    assert "data.strict" in printed and "exit 2" in printed and "exit 3" in printed, printed


@pytest.mark.parametrize("argv, message", [
    (["--resume", "{tmp}/empty.pt"], "cannot read checkpoint '{tmp}/empty.pt': the file is empty"),
    (["--resume", "{tmp}/notes.pt"], "'{tmp}/notes.pt': not a file written by torch.save"),
    (["--config", "{tmp}"], "config file '{tmp}' is a folder; pass a YAML file"),
    (["--config", "{tmp}/model.pt"], "config file '{tmp}/model.pt' is not UTF-8 text"),
])
def test_a_file_of_the_wrong_kind_is_one_line_naming_it(tmp_path, capsys, argv, message):
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    torch.save({"model": torch.zeros(3)}, tmp_path / "model.pt")
    code = _main()([a.format(tmp=tmp_path) for a in argv])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message.format(tmp=tmp_path) in lines[0], lines


def test_help_says_what_resume_does_with_a_changed_config(capsys):
    with pytest.raises(SystemExit):
        _main()(["--help"])
    printed = " ".join(capsys.readouterr().out.split())
    assert "--resume logs each config key that differs" in printed, printed


def test_a_full_disk_while_the_run_folder_is_written_names_the_folder(tiny_config, tmp_path,
                                                                      monkeypatch, capsys):
    def full_disk(*args, **kwargs):  # image writers raise ENOSPC without a file name
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("inpainting.tasks.inpainting.setup.build_val_masks", full_disk)
    code = _main()(["--config", str(tiny_config)])
    errors = _error_lines(capsys.readouterr().err)
    assert code == 3 and len(errors) == 1, errors
    assert errors[0] == (f"train.py: error: no space left on device: '{tmp_path / 'run'}'; "
                         "free some space or choose another folder"), errors
