"""Bounded work on bad input: every size the user controls has a limit, checked before the
work starts and named in ``--help`` and in the one-line refusal."""

import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
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


def parsers():
    """command name -> (its parser, the arguments it needs besides the one under test)."""
    sys.path.insert(0, str(ROOT))
    import classify
    import evaluate
    from inpainting.predict.cli import build_parser as predict_parser
    from inpainting.tasks.classification.padding_demo import build_parser as padding_demo_parser
    from masks.__main__ import build_parser as masks_parser

    return {
        "predict": (predict_parser(), ["--checkpoint", "c.pt", "--image", "i.png", "--out",
                                       "o.png"]),
        "evaluate.py": (evaluate.build_parser(), ["--checkpoint", "c.pt", "--images", "d"]),
        "classify.py": (classify.build_parser(), []),
        "masks video": (masks_parser(), ["video", "clip.mp4", "--out", "o"]),
        "masks stats": (masks_parser(), ["stats", "d"]),
        "padding_demo": (padding_demo_parser(), []),
    }


@pytest.mark.parametrize(("command", "option", "limit"), [
    ("predict", "--tile-size", 16384),
    ("predict", "--batch-size", 256),
    ("evaluate.py", "--image-size", 4096),
    ("evaluate.py", "--masks-per-bin", 100_000),
    ("evaluate.py", "--batch-size", 256),
    ("evaluate.py", "--workers", 256),
    ("evaluate.py", "--grid-rows", 32),
    ("classify.py", "--crop-size", 4096),
    ("classify.py", "--resize-size", 4096),
    ("classify.py", "-b", 65536),
    ("classify.py", "--epochs", 10000),
    ("classify.py", "-j", 256),
    ("masks video", "--size", 4096),
    ("masks video", "--max-masks", 100_000),
    ("masks stats", "--per-bin", 100),
    ("padding_demo", "--seeds", 100),
])
def test_every_size_a_user_sets_has_a_limit_named_in_help_and_refusal(command, option, limit,
                                                                      capsys):
    parser, needed = parsers()[command]
    words = needed[:1] if command.startswith("masks") else []  # the subcommand
    with pytest.raises(SystemExit):
        parser.parse_args([*words, "--help"])
    assert f"{limit}" in " ".join(capsys.readouterr().out.split())
    assert parser.parse_args([*needed, option, str(limit)])  # the limit itself is taken
    with pytest.raises(SystemExit) as info:
        parser.parse_args([*needed, option, str(limit + 1)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"must be <= {limit}, got {limit + 1}" in err, err
    assert option in err or option == "-b" and "--batch-size" in err


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says ``width x height``, with a few bytes of pixel data: the size is
    read from the header, and decoding it would fail (or, with real data, take seconds)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def test_predict_refuses_an_image_over_50_megapixels_from_its_header(tmp_path):
    huge = png_header_only(tmp_path / "huge.png", 7100, 7100)  # 50.41 MP, 200 bytes
    checkpoint = ROOT / "tests" / "fixtures" / "checkpoints_v1" / "inpainting_last.pt"
    done = run("-m", "inpainting.predict", "--checkpoint", str(checkpoint), "--image",
               str(huge), "--out", str(tmp_path / "out.png"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"python -m inpainting.predict: error: '{huge}' is 7100x7100 = 50.4 megapixels; the "
        "limit is 50 megapixels, so downscale it first")
    assert not (tmp_path / "out.png").exists()
