"""Bounded work on bad input: every size the user controls has a limit, checked before the
work starts and named in ``--help`` and in the one-line refusal."""

import os
import subprocess
import sys
import time
from pathlib import Path

from test_config import billion_laughs

ROOT = Path(__file__).resolve().parents[1]


def run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """A command of the project as users run it (``python X.py ...`` or ``python -m ...``)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_a_yaml_alias_bomb_as_config_is_refused_at_once(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(billion_laughs(), encoding="utf-8")  # ~650 bytes for 9**9 values
    started = time.monotonic()
    done = run("train.py", "--config", str(bomb), "--set", "optim.lr=1e-4")
    assert time.monotonic() - started < 60
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f"train.py: error: config file '{bomb}' uses the alias *a (line 2); "
                           "write the values out (configs take no YAML aliases)\n")
