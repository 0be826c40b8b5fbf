"""Train an inpainting model from a YAML config.

    python train.py --config configs/demo.yaml [--set optim.lr=1e-4 ...]
    python train.py --resume runs/demo-20240101-120000        # continue at the exact step
    python train.py --config configs/finetune.yaml --init-from runs/x/best.pt  # weights only
    torchrun --nproc_per_node 4 train.py --config configs/places2_512.yaml   # several GPUs

Exit codes (``inpainting.engine.errors``): 0 done, or stopped by Ctrl-C / SIGTERM after saving
``last.pt`` (resume with --resume); 1 the loss became NaN/inf, or a bug or a CUDA/NCCL failure
(with its traceback); 2 a problem with the command line, config or data (one line on stderr);
3 a file or folder cannot be read or written, or the disk is full (one line); 130 a second
Ctrl-C, or one during set-up: stopped at once, without saving.
"""

from __future__ import annotations

import argparse
import sys

from inpainting.engine.cli import OneLineParser, exit_on_interrupt, run_main

PROG = "train.py"

with exit_on_interrupt(PROG):  # Ctrl-C while torch loads (seconds): one line, exit 130
    from inpainting.engine.run import fit_and_report, setup_training

_EPILOG = """\
During training, Ctrl-C or SIGTERM finishes the step, saves last.pt and exits 0;
a second Ctrl-C stops at once (130). A NaN/inf loss exits 1.
Undecodable images are skipped with a warning; with data.strict: true the first one
stops the run (exit 2), as does a data.train whose first images all fail to decode.
A run folder that cannot be created or written: exit 3.
--resume logs each config key that differs from the checkpoint's (old -> new) and warns
when the change makes the run differ from an uninterrupted one; a changed model section
or another train.run_dir is refused (exit 2)."""


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``train.py``."""
    parser = OneLineParser(prog=PROG, description="Train a partial-convolution inpainting model.",
                           epilog=_EPILOG)
    parser.add_argument("--config", help="YAML config, e.g. configs/demo.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config key, e.g. optim.lr=1e-4")
    parser.add_argument("--resume", metavar="RUN_DIR|CKPT", help="continue a run")
    parser.add_argument("--init-from", metavar="CKPT", help="start a new run from these weights")
    return parser


def train(args: argparse.Namespace) -> int:
    """Set up the run, fit it and print the summary; returns the exit code."""
    session = setup_training(args.config, args.overrides, args.resume, args.init_from)
    return fit_and_report(session, PROG)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(PROG, lambda: train(args))


if __name__ == "__main__":
    sys.exit(main())
