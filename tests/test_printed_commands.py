"""Every command the project prints runs as printed: each test takes the line from the output,
splits it as a shell would (``shlex.split``) and runs it in a subprocess from the repository
root. A command that would train for long is stopped with SIGTERM once it has resumed."""

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from test_checkpoint_errors import classify_flags
from test_limits import ROOT, run

from inpainting.engine.checkpoint import load_checkpoint

TRAIN = str(ROOT / "train.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def printed(output: str, label: str) -> list[str]:
    """The command after ``label`` in ``output``, split as a shell would; ``python`` is this
    interpreter."""
    [line] = [line for line in output.splitlines() if line.startswith(label)]
    argv = shlex.split(line[len(label):])
    assert argv[0] == "python", line
    return [sys.executable, *argv[1:]]


def start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)


def stop_after(process: subprocess.Popen, log: Path, text: str) -> tuple[str, str]:
    """Wait for ``text`` in ``log``, then SIGTERM; the process's (stdout, stderr)."""
    deadline = time.monotonic() + 180
    try:
        while not (log.exists() and text in log.read_text()):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"no {text!r} in {log} within 180 s"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "Stopped by SIGTERM" in stdout, stdout
    return stdout, stderr


def test_the_resume_line_of_train_py_runs_as_printed(tiny_config, tmp_path):
    run_dir = tmp_path / "my run"  # a space: the printed path must be quoted
    first = start([sys.executable, TRAIN, "--config", str(tiny_config), "--set",
                   f"train.run_dir={run_dir}", "--set", "train.max_steps=100000", "--set",
                   "train.val_every=100000"])
    stdout, _ = stop_after(first, run_dir / "train.log", "step 3/")
    stopped_at = load_checkpoint(run_dir)["step"]
    again = start(printed(stdout, "Resume with: "))
    stop_after(again, run_dir / "train.log", f"resumed at step {stopped_at}")
    assert load_checkpoint(run_dir)["step"] >= stopped_at


def test_the_resume_line_of_classify_py_runs_as_printed_with_the_runs_settings(tmp_path):
    """It used to ask for the data folders, then the arch, then name a --set never given;
    with the data flags alone the defaults replaced the run's crop (32 -> 224) and epochs."""
    flags = classify_flags(tmp_path, "--epochs", "5000", "-p", "1", "--lr", "0.05")
    flags[flags.index("--ckptdirprefix") + 1] = f"{tmp_path}/my runs/"  # quoted when printed
    first = start([sys.executable, str(ROOT / "classify.py"), *flags])
    folder = tmp_path / "my runs" / "checkpoint_small_vgg_"
    stdout, _ = stop_after(first, folder / "train.log", "step 3/")
    saved = yaml.safe_load((folder / "config.yaml").read_text())
    stopped_at = load_checkpoint(folder)["step"]
    again = start(printed(stdout, "Resume with: "))
    _, stderr = stop_after(again, folder / "train.log", f"resumed at step {stopped_at}")
    assert "changed" not in stderr  # nothing of the run's config was replaced
    assert yaml.safe_load((folder / "config.yaml").read_text()) == saved
    assert saved["classifier"]["crop_size"] == 32 and saved["train"]["max_steps"] == 5000 * 2


def test_the_evaluate_line_of_the_training_summary_runs_as_printed(tiny_config, tmp_path):
    run_dir = tmp_path / "a run"
    done = run(TRAIN, "--config", str(tiny_config), "--set", f"train.run_dir={run_dir}",
               "--set", "data.test_fraction=0.2", timeout=300)
    assert done.returncode == 0, done.stderr
    argv = printed(done.stdout, "Evaluate:     ")
    started = time.monotonic()
    evaluated = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600,
                               env=ENV)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "report written to" in evaluated.stdout
    assert time.monotonic() - started < 600


def test_the_apps_hint_parses_with_a_real_checkpoint():
    """The page without a model names the command that adds one; its placeholder path aside,
    the command's options are the app's."""
    from inpainting.app.__main__ import build_parser

    note = (ROOT / "inpainting" / "app" / "page.py").read_text()
    [command] = re.findall(r"`(python -m inpainting\.app [^`]*)`", note)
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "inpainting.app"] and "runs/demo-.../best.pt" in argv
    args = build_parser().parse_args(argv[3:])
    assert args.checkpoint == "runs/demo-.../best.pt"
