"""Mask generator speed: masks per second per core for every paper bin.

Three measurements, each the median of interleaved repetitions:

1. ``MaskGenerator`` in memory, one OpenCV thread, without and with the paper's border;
2. ``generate_mask_set`` (the code behind ``python -m masks generate``) for one bin at a time,
   no border, PNG encoding and atomic writing included, one process;
3. the real command line, ``python -m masks generate`` over all paper bins and both border
   modes, with ``--workers 1`` and ``--workers 2`` (process start-up included).

Rates are given per wall-clock second and per CPU second (user + system time of this process,
or of the single-process command). On a machine shared with other jobs the wall-clock rate drops
with the load, while the CPU rate is what one core delivers.

Run: ``python benchmarks/masks.py`` (about a minute on a 2-core VM; ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from masks import PAPER_BINS, MaskGenerator  # noqa: E402
from masks.dataset import default_border, generate_mask_set  # noqa: E402


def _timed(work) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) spent in ``work()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def _generator_run(size: int, bin_range, border, count: int, seed: int) -> tuple[float, float]:
    generator = MaskGenerator(size, size, bin_range, border=border, rng=seed)
    return _timed(lambda: [generator() for _ in range(count)])


def _set_run(size: int, bin_range, count: int, seed: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        return _timed(
            lambda: generate_mask_set(
                folder, size, [bin_range], count, borders=(False,), seed=seed, progress=False
            )
        )


def _cli_run(size: int, count: int, workers: int) -> tuple[float, float]:
    """(wall, CPU) seconds of one ``python -m masks generate`` run, workers included."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    arguments = ["--size", str(size), "--count-per-bin", str(count), "--workers", str(workers)]
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "masks", "generate", "--out", folder, *arguments]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([*command, "--no-progress"], env=env, check=True, capture_output=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _rates(runs: list[tuple[float, float]], count: int) -> tuple[float, float]:
    """Median (masks per wall second, masks per CPU second)."""
    return (
        statistics.median(count / wall for wall, _ in runs),
        statistics.median(count / cpu for _, cpu in runs),
    )


def _bin_table(size: int, count: int, repeats: int) -> None:
    border = default_border(size)
    print(f"\nPer paper bin, {size}x{size}, 1 thread, median of {repeats} x {count} masks")
    print("masks/s per wall-clock second | per CPU second")
    header = f"{'bin':<13}{'no border':>16}{f'border {border}':>16}{'PNG set':>16}"
    print(header + "\n" + "-" * len(header))
    for bin_range in PAPER_BINS:
        runs: dict[str, list] = {"free": [], "border": [], "png": []}
        for seed in range(repeats):  # interleaved, so background load hits all alike
            runs["free"].append(_generator_run(size, bin_range, None, count, seed))
            runs["border"].append(_generator_run(size, bin_range, border, count, seed))
            runs["png"].append(_set_run(size, bin_range, count, seed))
        cells = [_rates(r, count) for r in runs.values()]
        text = "".join(f"{f'{wall:.0f} | {cpu:.0f}':>16}" for wall, cpu in cells)
        print(f"({bin_range[0]:g}, {bin_range[1]:g}]".ljust(13) + text)


def _cli_table(size: int, count: int, repeats: int) -> None:
    total = 2 * len(PAPER_BINS) * count
    print(
        f"\npython -m masks generate --size {size} --count-per-bin {count} "
        f"(paper bins x 2 border modes = {total} masks), median of {repeats}"
    )
    runs: dict[int, list] = {1: [], 2: []}
    for _ in range(repeats):
        for workers in runs:
            runs[workers].append(_cli_run(size, count, workers))
    (wall_1, cpu_1), (wall_2, _) = (_rates(runs[w], total) for w in (1, 2))
    # Workers run under a fork server that outlives the command, so their CPU time is not
    # charged to it: only the single-process run has a CPU rate.
    print(f"--workers 1: {wall_1:.0f} masks/s wall, {cpu_1:.0f} masks/s per CPU second")
    print(f"--workers 2: {wall_2:.0f} masks/s wall")
    print(f"speed-up with --workers 2 (wall clock): {wall_2 / wall_1:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--count", type=int, default=100, help="masks per measurement")
    parser.add_argument("--cli-count", type=int, default=100, help="--count-per-bin for the CLI")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny run to check the script")
    args = parser.parse_args()
    if args.quick:
        args.count, args.cli_count, args.repeats = 10, 5, 1
    cv2.setNumThreads(1)
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    _bin_table(args.size, args.count, args.repeats)
    _cli_table(args.size, args.cli_count, args.repeats)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
