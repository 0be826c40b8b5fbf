"""Train or evaluate an ImageNet-style classifier with NVIDIA's command line (the padding report).

    python classify.py -a pdresnet50 --data_train /path/ILSVRC/Data/CLS-LOC/train \\
        --data_val /path/ILSVRC/Data/CLS-LOC/perfolder_val --batch-size 192 --workers 32 \\
        --prefix multigpu_b192 --ckptdirprefix experiment_1/
    torchrun --nproc_per_node 8 classify.py -a resnet50 --padding reflect ...   # several GPUs
    python classify.py -a pdresnet50 --data_val VAL -e --resume model_best.pth.tar

The flags and defaults are those of NVIDIA's ``main.py``; ``-b`` is the global batch, divided
over the processes. The run goes through the same config and engine as ``train.py`` (``task:
classification``), into ``{ckptdirprefix}checkpoint_{arch}_{prefix}/`` with NVIDIA's
``checkpoint.pth.tar`` / ``model_best.pth.tar``, ``config.yaml``, ``metrics.jsonl``, ``train.log``
and TensorBoard; each validation prints `` * Prec@1 X Prec@5 Y``.

Exit codes: 0 done (or stopped by Ctrl-C / SIGTERM after saving; continue with --resume);
1 the loss became NaN/inf, or a bug; 2 a bad flag, folder or checkpoint (one line); 3 a file
cannot be read or written (one line); 130 a second Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys

from inpainting.engine.cli import (
    OneLineParser,
    exit_on_interrupt,
    given_options,
    run_main,
    whole_number,
)
from inpainting.engine.errors import EXIT_OK

PROG = "classify.py"

with exit_on_interrupt(PROG):  # Ctrl-C while torch loads (seconds): one line, exit 130
    from inpainting.engine.run import fit_and_report, setup_training
    from inpainting.tasks.classification.cli import (
        evaluate_classifier_checkpoint,
        training_settings,
    )
    from inpainting.tasks.classification.models import CLASSIFIER_NAMES, PADDINGS


# Limits of the sizes and counts a user sets, checked as the flags are read: generous for
# ImageNet on many GPUs, small enough that a typo cannot start endless work.
MAX_SIDE = 4096  # --crop-size, --resize-size (pixels), as the masks' largest side
MAX_BATCH = 65536  # -b, the global batch
MAX_EPOCHS = 10000
MAX_WORKERS = 256  # -j, loader processes


def build_parser() -> argparse.ArgumentParser:
    """NVIDIA's flags with NVIDIA's defaults, and this project's additions."""
    parser = OneLineParser(prog=PROG, description="Train or evaluate a classifier with a "
                           "padding scheme (NVIDIA's ImageNet script's flags).",
                           epilog=f"limits, checked before any work: --crop-size and "
                           f"--resize-size <= {MAX_SIDE}; -b <= {MAX_BATCH}; --epochs <= "
                           f"{MAX_EPOCHS}; -j <= {MAX_WORKERS}.")
    add = parser.add_argument
    add("--data_train", metavar="DIRTRAIN", help="training class folders")
    add("--data_val", metavar="DIRVAL", help="validation class folders")
    add("-a", "--arch", metavar="ARCH", default="resnet50",
        help=f"architecture (default: resnet50): {' | '.join(CLASSIFIER_NAMES)}")
    add("-j", "--workers", type=whole_number(0, MAX_WORKERS), default=4, metavar="N",
        help=f"loader processes, <= {MAX_WORKERS}")
    add("--epochs", type=whole_number(1, MAX_EPOCHS), default=100, metavar="N",
        help=f"epochs to train, <= {MAX_EPOCHS}")
    add("--start-epoch", type=int, default=0, metavar="N",
        help="accepted as 0 only: --resume continues at the checkpoint's exact step")
    add("-b", "--batch-size", type=whole_number(1, MAX_BATCH), default=192, metavar="N",
        help=f"global batch, divided over the processes, <= {MAX_BATCH} (default: 192)")
    add("--lr", "--learning-rate", type=float, default=0.1, metavar="LR",
        help="initial lr, x0.1 every 30 epochs")
    add("--momentum", type=float, default=0.9, metavar="M")
    add("--weight-decay", "--wd", type=float, default=1e-4, metavar="W")
    add("-p", "--print-freq", type=whole_number(1), default=10, metavar="N",
        help="log every N steps")
    add("--resume", default="", metavar="PATH", help="checkpoint (or its folder; ours or NVIDIA "
        "main.py's) to continue, or with -e to evaluate; flags not given keep the checkpoint's "
        "values (NVIDIA's: the arch only)")
    add("-e", "--evaluate", action="store_true", help="print Prec@1 / Prec@5 on --data_val")
    add("--pretrained", action="store_true", help="start from torchvision's ImageNet weights")
    add("--seed", type=int, default=None, help="seed (default: 0; runs are always seeded)")
    add("--prefix", default="", help="run name part of the checkpoint folder")
    add("--ckptdirprefix", default="", help="folder prefix of the checkpoint folder")
    add("--world-size", type=int, default=1, help="use torchrun; checked against WORLD_SIZE")
    add("--dist-url", default="tcp://224.66.41.62:23456", help="use torchrun instead")
    add("--dist-backend", default="gloo", help="chosen by the device (NCCL on CUDA, else gloo)")
    add("--gpu", type=int, default=None, help="train on this one GPU")
    add("--padding", choices=PADDINGS, default=None,
        help="padding scheme (default: the arch's own; pd* names are partial)")
    add("--finetune-from", metavar="CKPT", default="",
        help="start from these weights (any padding; e.g. zero-padding weights into partial)")
    add("--crop-size", type=whole_number(8, MAX_SIDE), default=224,
        help=f"train/val crop, 8 to {MAX_SIDE} (default: 224)")
    add("--resize-size", type=whole_number(8, MAX_SIDE), default=256,
        help=f"val short side, 8 to {MAX_SIDE} (default: 256)")
    add("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    add("--channels-last", action="store_true")
    add("--device", choices=("auto", "cpu", "cuda"), default="auto")
    add("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override any config key, e.g. train.val_every=500")
    return parser


def classify(args: argparse.Namespace) -> int:
    """Evaluate, or set up, fit and summarise a run; returns the exit code."""
    if args.evaluate:
        result, is_main = evaluate_classifier_checkpoint(args)
        if is_main:
            print(result.summary())
        return EXIT_OK
    overrides, resume, state = training_settings(args)
    session = setup_training(None, overrides, resume=resume, values={}, resume_state=state)
    return fit_and_report(session, PROG)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.given = given_options(parser, argv)  # --resume fills the others from the checkpoint
    return run_main(PROG, lambda: classify(args))


if __name__ == "__main__":
    sys.exit(main())
