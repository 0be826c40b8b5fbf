"""Train an inpainting model from a YAML config.

    python train.py --config configs/demo.yaml [--set optim.lr=1e-4 ...]
    python train.py --resume runs/demo-20240101-120000        # continue at the exact step
    python train.py --config configs/finetune.yaml --init-from runs/x/best.pt  # weights only
    torchrun --nproc_per_node 4 train.py --config configs/places2_512.yaml   # several GPUs

Exit codes: 0 done (or stopped by Ctrl-C / SIGTERM after saving), 1 the loss became NaN/inf,
2 a problem with the command line, config or data (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys

from inpainting.engine import NonFiniteLossError
from inpainting.run_setup import USER_ERRORS, setup_training


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a partial-convolution inpainting model.")
    parser.add_argument("--config", help="YAML config, e.g. configs/demo.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config key, e.g. optim.lr=1e-4")
    parser.add_argument("--resume", metavar="RUN_DIR|CKPT", help="continue a run")
    parser.add_argument("--init-from", metavar="CKPT", help="start a new run from these weights")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        session = setup_training(args.config, args.overrides, args.resume, args.init_from)
    except USER_ERRORS as error:
        message = " ".join(str(error).split())
        print(f"error: {message or type(error).__name__}", file=sys.stderr)
        return 2
    try:
        result = session.trainer.fit()
    except NonFiniteLossError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        session.close()
    if session.dist.is_main:
        print(session.summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
