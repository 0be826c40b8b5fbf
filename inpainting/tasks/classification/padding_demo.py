"""``python -m inpainting.tasks.classification.padding_demo``: the padding report's four-way
comparison, offline, on a CPU, in minutes (``make padding-demo``).

Trains ``padding_demo.yaml`` (package data beside this module: a small VGG on a subset of
Fashion-MNIST, read from Debian's ``dataset-fashion-mnist`` idx files) once per padding scheme
(zero, partial, reflect, replicate) and seed, each run through ``train.py``'s set-up and engine,
into ``OUT/{padding}-seed{seed}/``; then prints the report's table (``.padding_report``) for
clean test accuracy and for accuracy on the test images shifted toward the border, and draws
both into ``OUT/padding_demo.png``.

    python -m inpainting.tasks.classification.padding_demo          # 4 paddings x 3 seeds
    python -m inpainting.tasks.classification.padding_demo --data DIR --seeds 5 \
        --set train.max_steps=600

An interrupted demo is started again from scratch (each invocation writes a new ``OUT``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import resources
from pathlib import Path

from inpainting.engine.cli import OneLineParser, exit_on_interrupt, run_main, whole_number

PROG = "python -m inpainting.tasks.classification.padding_demo"

with exit_on_interrupt(PROG, active=__name__ == "__main__"):
    from inpainting.engine.errors import EXIT_OK
    from inpainting.engine.run import fit_and_report, setup_training
    from inpainting.tasks.classification.fashion_mnist import DEFAULT_ROOT
    from inpainting.tasks.classification.models import PADDINGS
    from inpainting.tasks.classification.padding_report.__main__ import main as padding_report

__all__ = ["CONFIG", "PLOT_NAME", "build_parser", "main", "seed_run_folder"]

# package data, installed with the wheel (setup.cfg's package_data)
CONFIG = resources.files(__package__) / "padding_demo.yaml"
PLOT_NAME = "padding_demo.png"
METRICS = ("top1", "top1_shifted")
MAX_SEEDS = 100  # runs per padding: 4 x 100 runs is days on a CPU already


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m inpainting.tasks.classification.padding_demo``."""
    parser = OneLineParser(
        prog=PROG,
        description="Train one classifier per padding scheme (zero, partial, reflect, "
                    "replicate) and seed on Fashion-MNIST, then print the padding report's "
                    "table for clean and border-shifted test accuracy and draw it.")
    parser.add_argument("--data", default=str(DEFAULT_ROOT), metavar="DIR",
                        help=f"folder of Fashion-MNIST's idx files (default: {DEFAULT_ROOT}, "
                             "Debian's dataset-fashion-mnist)")
    parser.add_argument("--config", default=str(CONFIG), metavar="YAML",
                        help="the run config; the demo sets its padding, seed and run folder "
                             "(default: the demo's own, padding_demo.yaml in this package)")
    parser.add_argument("--seeds", type=whole_number(1, MAX_SEEDS), default=3, metavar="N",
                        help=f"runs per padding, seeds 0..N-1, <= {MAX_SEEDS} (default: 3)")
    parser.add_argument("--out", default="runs/padding_demo-{time}", metavar="DIR",
                        help="folder of the runs, the table's plot; {time} becomes the start "
                             "time (default: runs/padding_demo-{time})")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config key of every run, e.g. "
                                                  "train.max_steps=100")
    return parser


def seed_run_folder(out: Path, padding: str, seed: int) -> Path:
    """The folder of one run of the demo."""
    return out / f"{padding}-seed{seed}"


def _train_all(args: argparse.Namespace, out: Path) -> tuple[list[Path], int]:
    """Train every (padding, seed); the run folders and the exit code (non-zero: stop)."""
    runs = []
    for padding in PADDINGS:
        for seed in range(args.seeds):
            folder = seed_run_folder(out, padding, seed)
            print(f"== {padding} padding, seed {seed}: {folder}", flush=True)
            # JSON is YAML: paths with any characters stay strings
            data, run_dir = json.dumps(str(args.data)), json.dumps(str(folder))
            overrides = [f"data.train={data}", f"data.val={data}", *args.overrides,
                         f"classifier.padding={padding}", f"train.seed={seed}",
                         f"train.run_dir={run_dir}"]
            session = setup_training(args.config, overrides)
            code = fit_and_report(session, PROG)
            if code != EXIT_OK or session.trainer.step < session.config.train.max_steps:
                return runs, code  # a failed or stopped run ends the demo (its line is out)
            runs.append(folder)
    return runs, EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code (2: bad input, one line on stderr)."""
    args = build_parser().parse_args(argv)

    def body() -> int:
        started = time.perf_counter()
        out = Path(args.out.replace("{time}", time.strftime("%Y%m%d-%H%M%S"))).expanduser()
        runs, code = _train_all(args, out)
        if code != EXIT_OK or len(runs) < len(PADDINGS) * args.seeds:
            return code
        print(f"\n== {len(runs)} runs in {(time.perf_counter() - started) / 60:.1f} min; "
              "best top-1 per run on the clean test images (top1) and on the same images "
              "shifted toward a corner (top1_shifted)\n", flush=True)
        report_args = [str(run) for run in runs] + ["--plot", str(out / PLOT_NAME),
                                                     "--no-published"]  # ImageNet's figures
        for metric in METRICS:
            report_args += ["--metric", metric]
        code = padding_report(report_args)
        print(f"total: {(time.perf_counter() - started) / 60:.1f} min", flush=True)
        return code

    return run_main(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
