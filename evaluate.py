"""Score a checkpoint per hole-ratio bin, as in Liu et al., ECCV 2018, Table 1.

    python evaluate.py --checkpoint RUN/best.pt --images DIR|LIST [--masks DIR] [--manifest FILE]
        [--out REPORT_DIR] [--baseline opencv-telea,opencv-ns,patchmatch] [--table paper]
        [--metrics l1,psnr,ssim,grad-ratio,lpips,fid,...] [--metric-weights NAME=PATH ...]
    python evaluate.py --checkpoint RUN/best.pt --images DIR --masks DIR --pair-by-name
    python evaluate.py --checkpoint RUN/best.pt --lama-dir DIR [--table lama]

Without --masks, masks are generated into REPORT_DIR/masks (--masks-per-bin per bin, with and
without border); a rerun with the same --out reuses them and scores exactly the requested ones.
With --pair-by-name or --lama-dir each image has its own mask, of its size, and each pair is
scored at that size unless --image-size is given. See inpainting/metrics/evaluation/ for
pairing rules and the report files.

Exit codes (``inpainting.engine.errors``): 0 done; 2 a problem with the arguments or the data (one
line on stderr); 3 a file or folder cannot be read or written, or the disk is full (one line);
130 Ctrl-C (generated masks are kept); a bug or a CUDA failure keeps its traceback.
"""

import argparse
import logging
import sys
from pathlib import Path

from inpainting.engine.cli import (
    OneLineParser,
    choice,
    exit_on_interrupt,
    parse_polarity,
    run_main,
    whole_number,
)
from inpainting.engine.errors import EXIT_INTERRUPTED

PROG = "evaluate.py"

with exit_on_interrupt(PROG):  # Ctrl-C while torch loads (seconds): one line, exit 130
    from inpainting.metrics.evaluation import TABLES, EvalOptions, evaluate_checkpoint
    from inpainting.metrics.suite import DEFAULT_METRICS, METRICS, parse_metric_names
    from inpainting.metrics.weights import WEIGHT_FILES
    from masks import parse_bins
    from masks.dataset import MAX_MASKS, MAX_SIZE, MAX_WORKERS

MAX_BATCH_SIZE = 256  # pairs per forward pass, as predict's tiles
MAX_GRID_ROWS = 32  # sample rows per bin in the grids

_fit = choice({"center-crop": "center_crop", "resize": "resize", "none": "none"})


def _bins(text: str) -> tuple:
    try:
        return tuple(parse_bins(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _metrics(text: str) -> tuple[str, ...]:
    try:
        return parse_metric_names(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True, metavar="CKPT",
                   help="checkpoint .pt of a run, or a run folder (its last.pt)")
    p.add_argument("--images", type=Path, metavar="DIR|LIST",
                   help="folder of test images, or a text file listing them")
    p.add_argument("--lama-dir", type=Path, metavar="DIR",
                   help="LaMa's evaluation folder: x.png beside x_mask000.png, ... (white = "
                   "hole); instead of --images/--masks")
    p.add_argument("--pair-by-name", action="store_true",
                   help="score each image with the mask of its name in --masks, at its size")
    p.add_argument("--image-root", type=Path, metavar="DIR",
                   help="folder a --images list is relative to (default: the list's folder)")
    p.add_argument("--masks", type=Path, metavar="DIR",
                   help="folder of masks (its manifest.json is used if present)")
    p.add_argument("--manifest", type=Path, metavar="FILE",
                   help="manifest.json of `python -m masks generate`")
    p.add_argument("--polarity", type=parse_polarity, metavar="P",
                   help="mask files: known-white (default) | hole-white")
    p.add_argument("--masks-per-bin", type=whole_number(1, MAX_MASKS), default=100, metavar="N",
                   help="masks generated per bin and border mode (100); at most "
                   f"{MAX_MASKS} masks in all")
    p.add_argument("--mask-seed", type=whole_number(0), default=0, metavar="S",
                   help="seed of mask generation and image/mask pairing (0)")
    p.add_argument("--bins", type=_bins, default=parse_bins("paper"), metavar="BINS",
                   help="paper (default) or lo-hi,lo-hi,...")
    p.add_argument("--image-size", type=whole_number(11, MAX_SIZE), metavar="S",
                   help=f"evaluation size, 11 (the SSIM window) to {MAX_SIZE} (default: the "
                   "checkpoint's data.image_size; each image's own with --pair-by-name or "
                   "--lama-dir)")
    p.add_argument("--fit", type=_fit, metavar="MODE",
                   help="center-crop | resize | none (default: the checkpoint's data.eval_mode)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="report folder (default: RUN_DIR/eval_<checkpoint name>)")
    p.add_argument("--baseline", default="", metavar="NAMES",
                   help="comma-separated baselines: opencv-telea,opencv-ns,patchmatch "
                   "(patchmatch: pip install '.[patchmatch]')")
    p.add_argument("--table", type=choice({t: t for t in TABLES}), default="default",
                   metavar="LAYOUT", help="default (rows per bin) | paper (Liu et al.'s Table 1) "
                   "| lama (mean ± std per 10 %% hole-ratio bucket)")
    p.add_argument("--batch-size", type=whole_number(1, MAX_BATCH_SIZE), default=8,
                   metavar="N", help=f"pairs per batch, <= {MAX_BATCH_SIZE} (8)")
    p.add_argument("--device", default="auto", help="auto (default) | cpu | cuda")
    p.add_argument("--workers", type=whole_number(0, MAX_WORKERS), default=2, metavar="N",
                   help=f"image-decoding processes, <= {MAX_WORKERS} (2)")
    p.add_argument("--grid-rows", type=whole_number(0, MAX_GRID_ROWS), default=4, metavar="N",
                   help=f"sample rows per bin in the grids, <= {MAX_GRID_ROWS} (4); 0 writes "
                   "no grids")
    p.add_argument("--metrics", type=_metrics, default=DEFAULT_METRICS, metavar="NAMES",
                   help=f"comma-separated: {', '.join(METRICS)} (default "
                   f"{','.join(DEFAULT_METRICS)}); see docs/evaluation.md")
    p.add_argument("--metric-weights", action="append", default=[], metavar="NAME=PATH",
                   help=f"a local weight file ({', '.join(WEIGHT_FILES)}); repeatable; "
                   "default: the torch hub cache / the lpips package")
    p.add_argument("--feature-cache", type=Path, metavar="DIR",
                   help="cache of the ground truth's Inception features "
                   "(default ~/.cache/pconv-inpainting/features)")
    return p


def default_out(checkpoint: Path) -> Path:
    """``RUN/best.pt`` -> ``RUN/eval_best``; a run folder (its last.pt) -> ``RUN/eval_last``."""
    if checkpoint.is_dir():
        return checkpoint / "eval_last"
    return checkpoint.parent / f"eval_{checkpoint.stem}"


def evaluate(args: argparse.Namespace) -> int:
    """Score the checkpoint as the arguments say and print the table; returns 0."""
    options = EvalOptions(
        checkpoint=args.checkpoint, images=args.images, image_root=args.image_root,
        out=args.out or default_out(args.checkpoint), masks=args.masks,
        manifest=args.manifest, polarity=args.polarity, masks_per_bin=args.masks_per_bin,
        mask_seed=args.mask_seed, image_size=args.image_size, fit=args.fit, bins=args.bins,
        baselines=tuple(name.strip() for name in args.baseline.split(",") if name.strip()),
        batch_size=args.batch_size, device=args.device, workers=args.workers,
        grid_rows=args.grid_rows, lama_dir=args.lama_dir, pair_by_name=args.pair_by_name,
        table=args.table, metrics=args.metrics, metric_weights=tuple(args.metric_weights),
        feature_cache=args.feature_cache,
    )
    report = evaluate_checkpoint(options)
    print(report.table)
    print(f"\nreport written to {report.out}")
    return 0


def _interrupted() -> int:
    print(f"{PROG}: interrupted (generated masks are kept for the next run)", file=sys.stderr)
    return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_main(PROG, lambda: evaluate(args), interrupted=_interrupted)


if __name__ == "__main__":
    sys.exit(main())
