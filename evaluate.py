"""Score a checkpoint per hole-ratio bin, as in Liu et al., ECCV 2018, Table 1.

    python evaluate.py --checkpoint RUN/best.pt --images DIR|LIST [--masks DIR] [--manifest FILE]
        [--out REPORT_DIR] [--baseline opencv-telea,opencv-ns] [--batch-size N] [--device auto]

Without --masks, masks are generated into REPORT_DIR/masks (--masks-per-bin per bin, with and
without border). See inpainting/evaluation/ for pairing rules and the report files.
"""

import argparse
import logging
import sys
from pathlib import Path

from inpainting.evaluation import EvalOptions, evaluate_checkpoint
from inpainting.predict import OneLineParser, fail, parse_polarity
from masks import parse_bins


def _fit(text: str) -> str:
    value = text.replace("-", "_")
    if value not in ("center_crop", "resize", "none"):
        raise argparse.ArgumentTypeError(f"unknown fit {text!r} (valid: center-crop, resize, none)")
    return value


def _bins(text: str) -> tuple:
    try:
        return tuple(parse_bins(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="evaluate.py", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True, help="checkpoint .pt of a run")
    p.add_argument("--images", type=Path, required=True, help="folder of test images or a list")
    p.add_argument("--image-root", type=Path, help="folder a --images list is relative to")
    p.add_argument("--masks", type=Path, help="folder of masks (its manifest.json is used)")
    p.add_argument("--manifest", type=Path, help="manifest.json of `python -m masks generate`")
    p.add_argument("--polarity", type=parse_polarity, help="known-white (default) | hole-white")
    p.add_argument("--masks-per-bin", type=int, default=100, help="generated masks per bin/border")
    p.add_argument("--mask-seed", type=int, default=0, help="seed of mask making and pairing")
    p.add_argument("--bins", type=_bins, default=parse_bins("paper"), help="paper | lo-hi,...")
    p.add_argument("--image-size", type=int, help="evaluation size (default: the checkpoint's)")
    p.add_argument("--fit", type=_fit, help="center-crop | resize | none (default: checkpoint's)")
    p.add_argument("--out", type=Path, help="report folder (default: RUN_DIR/eval_<name>)")
    p.add_argument("--baseline", default="", help="comma-separated: opencv-telea,opencv-ns")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--workers", type=int, default=2, help="image-decoding processes")
    p.add_argument("--grid-rows", type=int, default=4, help="sample rows per bin in the grids")
    return p


def default_out(checkpoint: Path) -> Path:
    """``RUN/best.pt`` -> ``RUN/eval_best``; a run folder (its last.pt) -> ``RUN/eval_last``."""
    if checkpoint.is_dir():
        return checkpoint / "eval_last"
    return checkpoint.parent / f"eval_{checkpoint.stem}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        options = EvalOptions(
            checkpoint=args.checkpoint, images=args.images, image_root=args.image_root,
            out=args.out or default_out(args.checkpoint), masks=args.masks,
            manifest=args.manifest, polarity=args.polarity, masks_per_bin=args.masks_per_bin,
            mask_seed=args.mask_seed, image_size=args.image_size, fit=args.fit, bins=args.bins,
            baselines=tuple(name.strip() for name in args.baseline.split(",") if name.strip()),
            batch_size=args.batch_size, device=args.device, workers=args.workers,
            grid_rows=args.grid_rows,
        )
        report = evaluate_checkpoint(options)
    except (ValueError, OSError) as error:
        return fail(error)
    print(report.table)
    print(f"\nreport written to {report.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
