"""Convert a published checkpoint of another project into one of this project's.

    python -m inpainting.convert --from mmagic pconv_places.pth --out pconv_places.pt

``--from mmagic``: OpenMMLab mmagic's PConv generators (``configs/partial_conv``; Places365 and
CelebA-HQ at 256 px). The result works wherever a checkpoint of ``train.py`` does:
``evaluate.py --checkpoint``, ``python -m inpainting.predict``, ``python -m inpainting.app``,
``python -m inpainting.export`` and ``train.py --init-from`` (``configs/finetune_mmagic.yaml``).

Exit codes (``inpainting.engine.errors``): 0 done; 2 the file is not a checkpoint of that
format, or a bad argument (one line saying what was found); 3 a file cannot be read or written,
or the disk is full (one line); 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inpainting.engine.cli import OneLineParser, exit_on_interrupt, run_main
from inpainting.engine.errors import EXIT_OK, UserInputError

PROG = "python -m inpainting.convert"

with exit_on_interrupt(PROG):  # Ctrl-C while torch loads (seconds): one line, exit 130
    from inpainting.engine.checkpoint import save_checkpoint
    from inpainting.tasks.inpainting.mmagic import convert_mmagic_checkpoint

# format -> (its converter, what it reads)
FORMATS = {"mmagic": (convert_mmagic_checkpoint, "an mmagic PConv checkpoint (.pth)")}


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m inpainting.convert``."""
    parser = OneLineParser(prog=PROG, description="Convert another project's checkpoint into "
                           "one of this project's.")
    parser.add_argument("--from", dest="source", required=True, choices=sorted(FORMATS),
                        help="the checkpoint's project: mmagic (its PConv generators)")
    parser.add_argument("checkpoint", type=Path, metavar="CKPT", help="the file to convert")
    parser.add_argument("--out", type=Path, required=True, metavar="OUT.pt",
                        help="the checkpoint to write (replaced atomically)")
    return parser


def convert(args: argparse.Namespace) -> int:
    """Convert ``args.checkpoint`` and write it to ``args.out``; returns the exit code."""
    if args.out.is_dir():
        raise UserInputError(f"--out '{args.out}' is a folder; name the .pt file to write")
    converter, _ = FORMATS[args.source]
    state = converter(args.checkpoint)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(state, args.out)
    source = state["source"]
    print(f"{args.out}: {source['format']} ({source['file']}, sha256 {source['sha256'][:12]}...)"
          f" as a {state['config']['model']['depth']}-level PConvUNet; weights: "
          f"{source['licences']['weights']}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(PROG, lambda: convert(args))


if __name__ == "__main__":
    sys.exit(main())
