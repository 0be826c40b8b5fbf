"""Irregular-hole mask sets: python -m masks generate | stats | video.

examples:
  python -m masks generate --out mask_sets/paper512 --size 512 --workers 2
  python -m masks generate --out mask_sets/lama_thick256 --preset thick --size 256 --count 1000
  python -m masks stats mask_sets/paper512
  python -m masks stats nvidia_test_masks --polarity hole-white
  python -m masks video clip.mp4 --out mask_sets/clip --size 512

Exit codes (``inpainting.engine.errors``, as for every command of the project): 0 done; 1 stats
found missing or changed files, or video found no mask in the hole range; 2 bad arguments or input
files (one line on stderr); 3 a folder cannot be written or the disk is full (one line);
130 interrupted (run the same command again to resume); a bug keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

from inpainting.engine.cli import OneLineParser, choice, parse_polarity, run_main, whole_number
from inpainting.engine.errors import EXIT_FAILED, EXIT_INTERRUPTED, UserInputError
from masks.dataset import MAX_MASKS, MAX_SIZE, MAX_WORKERS, check_writable, generate_mask_set
from masks.generator import MAX_BINS, PAPER_BINS, parse_bins
from masks.io import hole_ratio, save_mask
from masks.manifest import MANIFEST_NAME, Manifest, MaskEntry, write_manifest
from masks.preset_set import generate_preset_set
from masks.presets import MIN_PRESET_SIZE, PRESETS
from masks.stats import CONTACT_SHEET, collect_stats, format_table, write_contact_sheet
from masks.video import from_video

_BORDER_MODES = {"both": (True, False), "on": (True,), "off": (False,)}


_positive_int = whole_number(1)
_non_negative_int = whole_number(0)
MAX_SHEET_SAMPLES = 100  # stats --per-bin: a contact sheet row stays under 10,500 px wide


def _bounded(maximum: int):
    """An argparse ``type``: a whole number from 1 to ``maximum``, else a one-line error."""
    return whole_number(1, maximum)


# The options that describe a binned set, with why a preset set cannot take them.
_BINNED_ONLY = {
    "count_per_bin": ("--count-per-bin", "give the total with --count"),
    "bins": ("--bins", "a preset set has no hole-ratio bins"),
    "border": ("--border", "a preset set has no border constraint"),
    "border_px": ("--border-px", "a preset set has no border constraint"),
}


def _bins(text: str) -> list[tuple[float, float]]:
    try:
        return parse_bins(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _hole_range(text: str) -> tuple[float, float]:
    bins = _bins(text)
    if len(bins) != 1:
        raise argparse.ArgumentTypeError(f"expected one lo-hi range, got {text!r}")
    return bins[0]


def _add_generate(commands) -> None:
    about = "write a binned mask set, or a LaMa preset set, with manifest.json"
    epilog = (f"limits, checked before any work: --size <= {MAX_SIZE}; at most {MAX_MASKS} masks "
              "per set\n(--count, or bins x border modes x --count-per-bin); at most "
              f"{MAX_BINS} --bins; --workers <= {MAX_WORKERS}.")
    parser = commands.add_parser("generate", help=about, description=about, epilog=epilog)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--size", type=_bounded(MAX_SIZE), default=512, help=f"mask side, <= {MAX_SIZE} (512)"
    )
    parser.add_argument(
        "--preset",
        type=choice({name: name for name in PRESETS}),
        default=None,
        metavar="NAME",
        help=f"LaMa's random {'/'.join(PRESETS)} evaluation masks instead of bins (strokes "
             f"and boxes; --size >= {MIN_PRESET_SIZE})",
    )
    parser.add_argument(
        "--count",
        type=_bounded(MAX_MASKS),
        default=None,
        metavar="N",
        help=f"with --preset: masks in the set, <= {MAX_MASKS} (1000)",
    )
    parser.add_argument(
        "--count-per-bin",
        type=_bounded(MAX_MASKS),
        default=None,
        metavar="N",
        help="masks per bin and border mode (1000, as in the paper); not with --preset",
    )
    parser.add_argument(
        "--bins",
        type=_bins,
        default=None,
        help=f"'paper' = (0.01,0.1],(0.1,0.2],...,(0.5,0.6] (the default) or e.g. "
             f"0.01-0.1,0.3-0.4, at most {MAX_BINS}; not with --preset",
    )
    parser.add_argument(
        "--border",
        choices=sorted(_BORDER_MODES),
        default=None,
        help="with the paper's border constraint, without, or both (both); not with --preset",
    )
    parser.add_argument(
        "--border-px",
        type=_non_negative_int,
        default=None,
        metavar="PX",
        help="border width; default round(50 * size / 512); not with --preset",
    )
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="set seed (0)")
    parser.add_argument(
        "--workers", type=_bounded(MAX_WORKERS), default=1, help=f"processes, <= {MAX_WORKERS} (1)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=_run_generate)


def _add_stats(commands) -> None:
    about = "hole-ratio table and contact sheet of a folder"
    parser = commands.add_parser("stats", help=about, description=about)
    parser.add_argument("folder", type=Path, metavar="DIR", help="mask folder")
    parser.add_argument(
        "--polarity",
        type=parse_polarity,
        default=None,
        help="known-white or hole-white (plain folders; default known-white)",
    )
    parser.add_argument(
        "--bins", type=_bins, default="paper", help="bins for folders without manifest.json (paper)"
    )
    parser.add_argument(
        "--sheet", type=Path, default=None, help=f"contact sheet PNG (default DIR/{CONTACT_SHEET})"
    )
    parser.add_argument("--per-bin", type=_bounded(MAX_SHEET_SAMPLES), default=8,
                        help=f"sheet samples per bin, <= {MAX_SHEET_SAMPLES} (8)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=_run_stats)


def _add_video(commands) -> None:
    about = "occlusion masks from a video"
    parser = commands.add_parser("video", help=about, description=about)
    parser.add_argument("video", type=Path, metavar="VIDEO", help="video file")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--size",
        type=_bounded(MAX_SIZE),
        default=None,
        help=f"resize masks to SIZE x SIZE, <= {MAX_SIZE} (default: frame size, long side "
             "<= 512)",
    )
    parser.add_argument(
        "--frame-step", type=_positive_int, default=1, help="compare frames t and t + STEP (1)"
    )
    parser.add_argument(
        "--hole-range",
        type=_hole_range,
        default=(0.0, 1.0),
        metavar="LO-HI",
        help="keep masks whose hole ratio is in (LO, HI] (0-1)",
    )
    parser.add_argument("--max-masks", type=_bounded(MAX_MASKS), default=None,
                        help=f"stop after N, <= {MAX_MASKS} (default: the whole video, at most "
                             f"{MAX_MASKS})")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=_run_video)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m masks`` argument parser."""
    description = __doc__.split("\nExit codes")[0]  # OneLineParser adds the codes as epilog
    parser = OneLineParser(prog="python -m masks", description=description,
                           epilog="stats exits 1 when files are missing or changed; video exits 1 "
                                  "when no frame pair gives a mask in --hole-range.")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser
    )
    _add_generate(commands)
    _add_stats(commands)
    _add_video(commands)
    return parser


def _check_generate(args: argparse.Namespace) -> None:
    """Refuse option combinations that contradict each other; fill the binned defaults.

    Raises:
        UserInputError: ``--count`` without ``--preset``, or ``--preset`` with an option of
            binned sets; one line naming the fix.
    """
    if args.preset is None:
        if args.count is not None:
            raise UserInputError(f"--count needs --preset ({', '.join(PRESETS)}); a binned set "
                                 "takes --count-per-bin")
        args.count_per_bin = 1000 if args.count_per_bin is None else args.count_per_bin
        args.bins = list(PAPER_BINS) if args.bins is None else args.bins
        args.border = "both" if args.border is None else args.border
        return
    if args.size < MIN_PRESET_SIZE:
        raise UserInputError(f"--preset {args.preset} needs --size >= {MIN_PRESET_SIZE}, got "
                             f"{args.size}")
    for key, (flag, reason) in _BINNED_ONLY.items():
        if getattr(args, key) is not None:
            raise UserInputError(f"--preset {args.preset} contradicts {flag} ({reason}); drop "
                                 f"{flag}")
    args.count = 1000 if args.count is None else args.count


def _run_generate(args: argparse.Namespace) -> int:
    _check_generate(args)
    cv2.setNumThreads(1)  # parallelism comes from --workers, one process per core
    if args.preset is not None:
        report = generate_preset_set(
            args.out,
            preset=args.preset,
            size=args.size,
            count=args.count,
            seed=args.seed,
            workers=args.workers,
            progress=not args.no_progress,
        )
    else:
        report = generate_mask_set(
            args.out,
            size=args.size,
            bins=args.bins,
            count_per_bin=args.count_per_bin,
            borders=_BORDER_MODES[args.border],
            border_px=args.border_px,
            seed=args.seed,
            workers=args.workers,
            progress=not args.no_progress,
        )
    print(f"wrote {report.written} masks, kept {report.kept} already on disk; {report.manifest}")
    return 0


def _run_stats(args: argparse.Namespace) -> int:
    stats = collect_stats(args.folder, args.polarity, args.bins, progress=not args.no_progress)
    print(format_table(stats))
    if stats.groups:
        sheet = write_contact_sheet(stats, args.sheet or args.folder / CONTACT_SHEET, args.per_bin)
        print(f"contact sheet: {sheet}")
    for problem in stats.problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if stats.problems else 0


def _run_video(args: argparse.Namespace) -> int:
    # FFmpeg prints its own decoder complaints to stderr; our error line says what went wrong.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read on first use
    size = {} if args.size is None else {"height": args.size, "width": args.size}
    masks = from_video(
        args.video,
        hole_range=args.hole_range,
        frame_step=args.frame_step,
        max_masks=args.max_masks or MAX_MASKS,  # a set holds at most MAX_MASKS
        **size,
    )
    existed = args.out.exists()
    check_writable(args.out)
    entries = []
    for index, mask in enumerate(tqdm(masks, unit="mask", disable=args.no_progress)):
        file = f"{index:05d}.png"
        save_mask(args.out / file, mask)
        entries.append(MaskEntry(file, hole_ratio(mask)))
    if not entries:  # the work ran and found nothing: say so, leave no empty set behind
        if not existed:
            args.out.rmdir()
        lo, hi = args.hole_range
        print(f"python -m masks video: error: no frame pair of '{args.video}' gave a mask with "
              f"a hole ratio in ({lo:g}, {hi:g}]; widen --hole-range or change --frame-step",
              file=sys.stderr)
        return EXIT_FAILED
    write_manifest(args.out, Manifest(tuple(entries), source=str(args.video),
                                      frame_step=args.frame_step))
    print(f"wrote {len(entries)} masks to {args.out}; {args.out / MANIFEST_NAME}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (see ``--help``)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"{parser.prog} {args.command}"

    def interrupted() -> int:
        print(f"{prog}: interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED

    return run_main(prog, lambda: args.run(args), interrupted=interrupted)


if __name__ == "__main__":
    sys.exit(main())
