"""The padding demo (``make padding-demo``): its driver on fake Fashion-MNIST files, a run too
small for reflection padding, and the real Debian files where they are installed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image
from test_classification_data import write_fashion_mnist

from inpainting.tasks.classification.config import PADDINGS
from inpainting.tasks.classification.fashion_mnist import DEFAULT_ROOT
from inpainting.tasks.classification.padding_demo import (
    CONFIG,
    PLOT_NAME,
    main,
    seed_run_folder,
)
from inpainting.tasks.classification.padding_report.plot import PANEL_H, PANEL_W
from inpainting.tasks.classification.task import read_metrics

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import train  # noqa: E402 (the script)

# Two steps of the demo's config on 8 training and 4 test images.
TINY = ["classifier.train_images=8", "classifier.val_images=4", "data.batch_size=4",
        "train.max_steps=2", "train.val_every=1", "train.ckpt_every=2", "log.progress=false"]


def _sets(*overrides: str) -> list[str]:
    return [argument for override in overrides for argument in ("--set", override)]


def test_the_demo_trains_every_padding_and_seed_and_prints_both_tables(tmp_path, capsys):
    data = write_fashion_mnist(tmp_path / "fmnist", train=16, test=8)
    out = tmp_path / "demo"
    assert main(["--data", str(data), "--seeds", "2", "--out", str(out), *_sets(*TINY)]) == 0
    for padding in PADDINGS:
        for seed in range(2):
            run = seed_run_folder(out, padding, seed)
            config = yaml.safe_load((run / "config.yaml").read_text())
            assert config["classifier"]["padding"] == padding
            assert (config["train"]["seed"], config["classifier"]["arch"]) == (seed, "small_vgg")
            records = read_metrics(run)
            assert [r["step"] for r in records] == [1, 2]
            assert all(0 <= r["top1_shifted"] <= 100 for r in records)
    text = capsys.readouterr().out
    assert "best top1 per run (%)" in text and "best top1_shifted per run (%)" in text
    assert "NVIDIA" not in text  # ImageNet's figures do not belong beside Fashion-MNIST
    best_shifted = max(r["top1_shifted"] for r in read_metrics(seed_run_folder(out, "partial", 1)))
    partial_rows = [line.split() for line in text.splitlines()
                    if line.startswith("small_vgg  partial")]
    assert len(partial_rows) == 2 and partial_rows[1][2] == "2"
    assert f"{best_shifted:.2f}" in partial_rows[1][3:5]
    with Image.open(out / PLOT_NAME) as image:  # one row per metric
        assert image.size == (2 * PANEL_W, 2 * PANEL_H)


def test_the_demo_stops_at_bad_input_with_one_line(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"),
                 *_sets(*TINY)]) == 3  # a missing data folder: the environment's problem
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "apt-get install dataset-fashion-mnist" in err
    data = write_fashion_mnist(tmp_path / "fmnist", train=16, test=8)
    assert main(["--data", str(data), "--out", str(tmp_path / "out2"),
                 *_sets(*TINY, "classifier.shift=30")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "classifier.shift must be in [0, 28)" in err


def test_reflection_padding_on_too_small_inputs_is_one_line_exit_2(tmp_path, capsys):
    data = write_fashion_mnist(tmp_path / "fmnist", train=16, test=8)
    config = CONFIG
    argv = ["--config", str(config), *_sets(*TINY, f"data.train={data}", f"data.val={data}",
                                               "classifier.arch=resnet18",
                                               "classifier.padding=reflect",
                                               f"train.run_dir={tmp_path / 'run'}")]
    assert train.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    err = err.splitlines()[-1]  # after the set-up's log lines
    # torchvision's ResNets at Fashion-MNIST's 28 px: layer4 works on 1x1 maps
    assert err.startswith("train.py: error: 28 px inputs are too small for this network: "
                          "layer4.0.conv2 (Conv2d) pads 1 px by reflection")
    assert err.endswith("at least 33 px or use zero, replicate or partial padding")
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not (DEFAULT_ROOT / "train-images-idx3-ubyte.gz").is_file(),
                    reason=f"needs Debian's dataset-fashion-mnist ({DEFAULT_ROOT} is missing; "
                           "apt-get install dataset-fashion-mnist, or make padding-demo)")
def test_one_demo_run_on_the_real_files(tmp_path):
    config = CONFIG
    argv = ["--config", str(config), *_sets(*TINY, "classifier.padding=partial",
                                               f"train.run_dir={tmp_path / 'run'}")]
    assert train.main(argv) == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert len(records) == 2 and all("top1_shifted" in r for r in records)


def _fake_tools(folder: Path) -> dict[str, str]:
    """``apt-get`` (copies the files of ``$FAKE_APT_FILES`` into ``$FAKE_APT_TARGET``, or fails
    without them), ``sudo`` (runs its command) and a ``python`` that logs its arguments."""
    folder.mkdir()
    scripts = {
        "apt-get": 'case "$*" in *install*) [ -n "$FAKE_APT_FILES" ] || exit 100; mkdir -p '
                   '"$FAKE_APT_TARGET"; cp "$FAKE_APT_FILES"/* "$FAKE_APT_TARGET"/;; esac',
        "sudo": '[ "$1" = -n ] && shift; exec "$@"',
        "python": f'echo "$*" >> {folder / "python.log"}',
    }
    for name, body in scripts.items():
        (folder / name).write_text(f"#!/bin/sh\n{body}\n")
        (folder / name).chmod(0o755)
    return {"PATH": f"{folder}:{os.environ['PATH']}", "FAKE_APT_TARGET": "",
            "FAKE_APT_FILES": ""}


def test_make_padding_demo_installs_the_package_or_fails_in_one_line(tmp_path):
    tools = tmp_path / "bin"
    env = {**os.environ, **_fake_tools(tools)}
    target = tmp_path / "datasets" / "fashion-mnist"
    make = ["make", "-s", "-C", str(ROOT), "padding-demo", "PYTHON=python", "INSTALLED=true",
            f"FASHION_MNIST={target}", "PADDING_DEMO_ARGS=--seeds 1"]
    failed = subprocess.run(make, env=env, capture_output=True, text=True, timeout=60)
    assert failed.returncode != 0 and not (tools / "python.log").read_text().count("padding")
    [line] = [text for text in failed.stderr.splitlines() if not text.startswith("make")]
    assert line.startswith("padding-demo: cannot install Debian's dataset-fashion-mnist into")
    env.update(FAKE_APT_TARGET=str(target),
               FAKE_APT_FILES=str(write_fashion_mnist(tmp_path / "package")))
    done = subprocess.run(make, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (target / "t10k-labels-idx1-ubyte.gz").is_file()
    calls = (tools / "python.log").read_text().splitlines()
    assert calls[-1] == f"-m inpainting.tasks.classification.padding_demo --data {target} --seeds 1"
    assert "dataset-fashion-mnist" not in subprocess.run(  # installed: apt-get is not asked
        make, env={**env, "FAKE_APT_FILES": ""}, capture_output=True, text=True,
        timeout=60).stdout
