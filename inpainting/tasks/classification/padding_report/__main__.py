"""``python -m inpainting.tasks.classification.padding_report RUN [RUN ...]``: print the padding
table, draw it."""

from __future__ import annotations

import sys
from pathlib import Path

from inpainting.engine.cli import OneLineParser, choice, run_main
from inpainting.engine.errors import UserInputError
from inpainting.tasks.classification.padding_report.plot import plot_format, save_plot
from inpainting.tasks.classification.padding_report.runs import (
    PUBLISHED_CSV,
    load_published,
    read_run,
)
from inpainting.tasks.classification.padding_report.table import format_padding_table, group_runs

PROG = "python -m inpainting.tasks.classification.padding_report"
METRICS = ("top1", "top1_shifted")


def build_parser() -> OneLineParser:
    """The command line of ``python -m inpainting.tasks.classification.padding_report``."""
    parser = OneLineParser(
        prog=PROG,
        description=(
            "The table of the 'Partial Convolution based Padding' report from classification "
            "runs:\nruns grouped by (arch, padding); per group the number of runs, the mean of "
            "each run's best,\nthe difference with zero padding of the same arch, the sample "
            "standard deviation and a\n95%% Welch t interval of the difference (n/a for a "
            "group of one run), beside NVIDIA's\npublished ImageNet top-1 figures."
        ),
    )
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="classification run folder (config.yaml + metrics.jsonl)")
    published = parser.add_mutually_exclusive_group()
    published.add_argument("--published", type=Path, default=None, metavar="FILE",
                           help=f"CSV of published figures (default: {PUBLISHED_CSV.name} "
                                "shipped with the package)")
    published.add_argument("--no-published", action="store_true",
                           help="leave NVIDIA's ImageNet figures out (runs on other data)")
    parser.add_argument("--plot", type=Path, default=None, metavar="FILE",
                        help="also draw the table to this image file (.png)")
    parser.add_argument("--metric", action="append", metavar="{top1,top1_shifted}",
                        type=choice({name: name for name in METRICS}),
                        help="the logged accuracy to compare (default: top1); repeat it for "
                             "one table per metric (the plot stacks them); NVIDIA's figures "
                             "are shown for top1 only")
    return parser


def _published(args, metric: str) -> dict | None:
    """NVIDIA's rows, or None where they do not apply (another metric, no shipped file) or are
    not wanted (``--no-published``)."""
    if metric != "top1" or args.no_published:
        return None
    if args.published is not None:
        return load_published(args.published)
    return load_published(PUBLISHED_CSV) if PUBLISHED_CSV.is_file() else None


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code (2: bad input, one line on stderr)."""
    args = build_parser().parse_args(argv)

    def body() -> int:
        if args.plot is not None:
            plot_format(args.plot)  # a bad --plot is refused before the runs are read
        folders = [Path(run) for run in args.runs]
        seen = {folder.resolve() for folder in folders}
        if len(seen) != len(folders):
            raise UserInputError("a run folder is given twice; each run counts once")
        sections = []  # every run read for every metric before anything is printed
        for metric in dict.fromkeys(args.metric or ["top1"]):  # each once, in order
            groups = group_runs([read_run(folder, metric) for folder in folders])
            sections.append((metric, groups, _published(args, metric)))
        for index, (metric, groups, published) in enumerate(sections):
            print(("\n" if index else "") + format_padding_table(groups, metric, published))
            if published is not None:
                source = args.published or PUBLISHED_CSV
                print(f"\nNVIDIA: ImageNet top-1 (%), mean of 5 runs each, from {source}")
        if args.plot is not None:
            save_plot(sections, args.plot)
            print(f"plot: {args.plot}")
        return 0

    return run_main(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
