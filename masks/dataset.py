"""A reproducible mask set on disk (``python -m masks generate``), and what every set shares.

Layout under the output folder of a binned set (:func:`generate_mask_set`)::

    manifest.json
    border/0.01-0.1/00000.png       # holes at least border_px pixels from the edge
    no_border/0.01-0.1/00000.png    # holes anywhere

Every mask has its own seed, derived from (set seed, border flag, bin, index) only, so the
result does not depend on the number of workers, on the order of the bins, or on how often the
run was interrupted; ``MaskGenerator(size, size, bin, border=..., rng=seed)()`` reproduces it.
Files are written atomically, so a killed run never leaves a partial PNG, and a rerun with the
same arguments writes only what is missing.

:func:`write_set` does the writing and resuming for binned sets and for the LaMa preset sets
of ``masks.preset_set``; sizes and counts are bounded (:data:`MAX_SIZE`, :data:`MAX_MASKS`) so
that a typo cannot start hours of work or fill a disk.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from inpainting.engine.errors import EnvironmentProblem, UserInputError
from inpainting.engine.files import atomic_write
from masks.generator import GENERATOR_VERSION, MaskGenerator
from masks.io import encode_mask, load_mask, remove_stale_temporaries
from masks.manifest import MANIFEST_NAME, Manifest, MaskEntry, read_manifest, write_manifest
from masks.presets import PresetGenerator

logger = logging.getLogger(__name__)

PAPER_BORDER, PAPER_SIZE = 50, 512
# Largest mask side and number of masks in one set: 8 times the paper's 12,000 masks still fit.
# One 4096 x 4096 mask takes about 0.1 s to make and encode on one core, so the largest set
# is hours of work, not days; a 100000-pixel side would need 10 GB per canvas.
MAX_SIZE = 4096
MAX_MASKS = 100_000
MAX_WORKERS = 256  # processes; more than the cores only costs memory
# The options of ``python -m masks generate`` that set the size, border width, seed and preset
# of a set, named when a folder holding another set is resumed.
GENERATE_FLAGS: dict[str, str | None] = {
    "size": "--size", "border_px": "--border-px", "seed": "--seed", "preset": "--preset",
    "count": "--count", "count_per_bin": "--count-per-bin",
}
_CHECKPOINT_SECONDS = 30.0


def default_border(size: int) -> int:
    """The paper's 50-pixel border at 512x512, scaled to ``size``: round(50 * size / 512)."""
    return round(PAPER_BORDER * size / PAPER_SIZE)


@dataclass(frozen=True)
class MaskJob:
    """One mask of the set: where it goes and how it is made."""

    file: str  # relative POSIX path under the output folder
    bin: tuple[float, float] | None  # None for a preset set
    border: bool | None  # None for a preset set
    seed: int


@dataclass(frozen=True)
class GenerationReport:
    """What a :func:`generate_mask_set` run did."""

    written: int
    kept: int
    manifest: Path


def mask_seed(seed: int, border: bool, bin_range: tuple[float, float], index: int) -> int:
    """The 32-bit seed of one mask, a function of its identity only."""
    keys = [seed, int(border), round(bin_range[0] * 1e6), round(bin_range[1] * 1e6), index]
    return int(np.random.SeedSequence(keys).generate_state(1)[0])


def plan_jobs(
    bins: list[tuple[float, float]], count_per_bin: int, borders: tuple[bool, ...], seed: int
) -> list[MaskJob]:
    """All masks of a set, border mode by border mode, bin by bin."""
    digits = max(5, len(str(count_per_bin - 1)))
    jobs = []
    for border in borders:
        for bin_range in bins:
            folder = f"{'border' if border else 'no_border'}/{bin_range[0]:g}-{bin_range[1]:g}"
            for index in range(count_per_bin):
                jobs.append(
                    MaskJob(
                        file=f"{folder}/{index:0{digits}d}.png",
                        bin=bin_range,
                        border=border,
                        seed=mask_seed(seed, border, bin_range, index),
                    )
                )
    return jobs


@lru_cache(maxsize=64)
def _generator(size: int, bin_range: tuple[float, float], border_px: int | None) -> MaskGenerator:
    return MaskGenerator(size, size, bin_range, border=border_px, rng=0)


@lru_cache(maxsize=8)
def _preset_generator(preset: str, size: int) -> PresetGenerator:
    return PresetGenerator(preset, size)


def make_mask(job: MaskJob, size: int, border_px: int | None,
              preset: str | None = None) -> np.ndarray:
    """The uint8 (size, size) mask of ``job``, 1 = known, 0 = hole.

    ``preset`` names the preset of a preset set's job, whose ``bin`` and ``border`` are None.
    """
    if preset is not None:
        return _preset_generator(preset, size)(np.random.default_rng(job.seed))
    generator = _generator(size, job.bin, border_px if job.border else None)
    return generator(np.random.default_rng(job.seed))


def _entry(job: MaskJob, mask: np.ndarray) -> MaskEntry:
    ratio = np.count_nonzero(mask == 0) / mask.size
    return MaskEntry(job.file, ratio, job.bin, job.border, job.seed)


def _write_job(task: tuple[str, int, int | None, str | None, MaskJob]) -> MaskEntry:
    """Make one mask and write it atomically; runs in worker processes too."""
    out, size, border_px, preset, job = task
    mask = make_mask(job, size, border_px, preset)
    path = Path(out, job.file)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, encode_mask(mask))
    return _entry(job, mask)


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core; OpenCV threads would only compete
    # Ctrl-C is handled by the parent, which stops the pool; workers must not print tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pool_context():
    """Worker start method: a fork server where available, else spawn.

    Plain fork is unsafe when the caller has threads (OpenMP, OpenCV, tqdm); spawn re-imports
    numpy and OpenCV in every worker. A fork server imports them once and forks clean workers.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["masks.dataset"])
        return context
    return multiprocessing.get_context("spawn")


def check_limits(size: int, masks: int, flags: dict[str, str | None], count_key: str,
                 breakdown: str = "") -> None:
    """Refuse a mask side ``size`` over :data:`MAX_SIZE` or ``masks`` in the set over
    :data:`MAX_MASKS` (``UserInputError``, one line naming the option of ``flags`` for ``size``
    or ``count_key``, the value and the limit; ``breakdown`` says how ``masks`` comes about,
    e.g. ``"6 bins x 2 border modes x 1000"``)."""
    if size > MAX_SIZE:
        flag = flags.get("size") or "size"
        raise UserInputError(f"{flag} {size} is over the limit of {MAX_SIZE} pixels; choose a "
                             "smaller size")
    if masks > MAX_MASKS:
        flag = flags.get(count_key) or count_key
        made = f" ({breakdown})" if breakdown else ""
        raise UserInputError(f"{masks} masks{made} are over the limit of {MAX_MASKS} per set; "
                             f"lower {flag}")


def check_writable(out: Path) -> None:
    """Create ``out`` if needed and make sure files can be written there.

    Raises:
        EnvironmentProblem: If the folder cannot be created or written, naming the reason.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test.{os.getpid()}.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or str(error)
        raise EnvironmentProblem(
            f"cannot write to {str(out)!r}: {reason}; choose a writable folder"
        ) from error


def _old_manifest(out: Path) -> Manifest | None:
    """The manifest of an earlier run into ``out``, or None if there is none.

    Raises:
        UserInputError: If the file exists but cannot be read as a manifest.
    """
    if not (out / MANIFEST_NAME).exists():
        return None
    try:
        return read_manifest(out / MANIFEST_NAME)
    except UserInputError as error:
        raise UserInputError(f"{error}; delete it to rebuild it") from error


def _check_same_set(
    old: Manifest, header: Manifest, out: Path, flags: dict[str, str | None]
) -> None:
    """Refuse to resume a set made with another generator, preset, size, border width or seed.

    A value the old manifest does not record counts as the same, except the preset: a preset
    set only resumes one of the same preset, and a binned set never resumes a preset set.
    """
    if old.preset != header.preset:
        flag = flags.get("preset") or "preset"
        if old.preset is None:
            raise UserInputError(f"{str(out)!r} holds a mask set made without {flag}; drop "
                                 f"{flag} to resume or choose a new --out")
        raise UserInputError(f"{str(out)!r} holds a mask set made with {flag} {old.preset}; "
                             f"use {flag} {old.preset} to resume or choose a new --out")
    version = old.generator_version
    if version is not None and version != header.generator_version:
        raise UserInputError(
            f"{str(out)!r} was made by mask generator version {version}, this is version "
            f"{header.generator_version}; choose a new --out"
        )
    for key in ("size", "border_px", "seed"):
        value, wanted = getattr(old, key), getattr(header, key)
        if value is not None and value != wanted:
            flag = flags.get(key)
            if flag is None:  # the caller has no option for it: only a new folder helps
                raise UserInputError(
                    f"{str(out)!r} holds a mask set made with {key} {value}, not "
                    f"{wanted}; choose a new --out"
                )
            raise UserInputError(
                f"{str(out)!r} holds a mask set made with {flag} {value}, not "
                f"{wanted}; use the same {flag} to resume or choose a new --out"
            )


def _reuse_existing(
    out: Path, jobs: list[MaskJob], old: Manifest | None, header: Manifest
) -> tuple[dict[str, MaskEntry], list[MaskJob]]:
    """Split jobs into finished ones (their manifest entries) and pending ones.

    A file with a matching manifest entry is trusted. A file without one (the run stopped
    before the manifest was saved) is kept only if it equals the mask its seed makes.
    """
    known = {entry.file: entry for entry in old.masks} if old is not None else {}
    entries: dict[str, MaskEntry] = {}
    pending: list[MaskJob] = []
    for job in jobs:
        path = out / job.file
        if not path.exists():
            pending.append(job)
            continue
        entry = known.get(job.file)
        if entry is not None and (entry.bin, entry.border, entry.seed) == (
            job.bin, job.border, job.seed
        ):
            entries[job.file] = entry
            continue
        mask = make_mask(job, header.size, header.border_px, header.preset)
        try:
            same = np.array_equal(load_mask(path), mask)
        except ValueError:
            same = False
        if same:
            entries[job.file] = _entry(job, mask)
        else:
            pending.append(job)
    planned = {job.file for job in jobs}
    for file, entry in known.items():  # masks of earlier runs with other bins or counts
        if file not in planned and (out / file).exists():
            entries[file] = entry
    return entries, pending


def _save(out: Path, header: Manifest, entries: dict[str, MaskEntry]) -> None:
    """Write the manifest of ``entries``, sorted by file, under the set's ``header``."""
    write_manifest(out, replace(header, masks=tuple(entries[file] for file in sorted(entries))))


def _run_jobs(
    out: Path, pending: list[MaskJob], entries: dict[str, MaskEntry], header: Manifest,
    workers: int, progress: bool,
) -> None:
    """Write the pending masks, saving the manifest every half minute and at the end."""
    tasks = [(str(out), header.size, header.border_px, header.preset, job) for job in pending]
    last_save = time.monotonic()
    pool = None
    try:
        if workers > 1 and len(tasks) > 1:
            pool = _pool_context().Pool(workers, initializer=_init_worker)
            chunk = max(1, min(32, len(tasks) // (8 * workers)))
            results = pool.imap_unordered(_write_job, tasks, chunksize=chunk)
        else:
            results = map(_write_job, tasks)
        bar = tqdm(results, total=len(tasks), unit="mask", disable=not progress or not tasks)
        for entry in bar:
            entries[entry.file] = entry
            if time.monotonic() - last_save > _CHECKPOINT_SECONDS:
                _save(out, header, entries)
                last_save = time.monotonic()
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        _save(out, header, entries)


def generate_mask_set(
    out: str | os.PathLike,
    size: int,
    bins: list[tuple[float, float]],
    count_per_bin: int,
    borders: tuple[bool, ...] = (True, False),
    border_px: int | None = None,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    flags: dict[str, str | None] | None = None,
) -> GenerationReport:
    """Write a binned mask set and its ``manifest.json``, resuming any earlier run.

    Args:
        out: Output folder (created if missing).
        size: Masks are (size, size).
        bins: Hole-ratio bins (lo, hi]; see :func:`masks.parse_bins`.
        count_per_bin: Masks per bin and border mode.
        borders: Which border modes to make: True = border constraint, False = none.
        border_px: Border width for the constrained masks; ``None``: round(50 * size / 512).
        seed: Seed of the whole set; each mask's own seed is derived from it.
        workers: Processes writing masks; the result does not depend on it.
        progress: Show a tqdm progress bar.
        flags: The caller's option for each of ``size``, ``border_px`` and ``seed`` (``None``:
            it has none), named when ``out`` holds a set made with other values; default
            :data:`GENERATE_FLAGS`, those of ``python -m masks generate``.

    Returns:
        How many masks were written and kept, and the manifest path.

    Raises:
        ValueError: For bad arguments (the command line checks them first).
        UserInputError: For impossible bins, a size or number of masks over :data:`MAX_SIZE`
            or :data:`MAX_MASKS`, or a folder holding a set made with another size, border
            width, seed or a preset.
        EnvironmentProblem: For an unwritable folder.
    """
    for name, value in (("size", size), ("count_per_bin", count_per_bin), ("workers", workers)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if not bins or not borders:
        raise ValueError("need at least one bin and one border mode")
    flags = GENERATE_FLAGS if flags is None else flags
    breakdown = (f"{len(bins)} bin{'s' * (len(bins) > 1)} x {len(borders)} border "
                 f"mode{'s' * (len(borders) > 1)} x {count_per_bin}")
    check_limits(size, len(bins) * len(borders) * count_per_bin, flags, "count_per_bin",
                 breakdown)
    border_px = default_border(size) if border_px is None else border_px
    for bin_range in bins:  # fails early, with the generator's message, on impossible bins
        for border in borders:
            _generator(size, tuple(bin_range), border_px if border else None)
    header = Manifest(masks=(), size=size, border_px=border_px, seed=seed,
                      generator_version=GENERATOR_VERSION)
    jobs = plan_jobs([tuple(b) for b in bins], count_per_bin, tuple(borders), seed)
    return write_set(Path(out), header, jobs, flags, workers, progress)


def write_set(out: Path, header: Manifest, jobs: list[MaskJob], flags: dict[str, str | None],
               workers: int, progress: bool) -> GenerationReport:
    """Write the masks of ``jobs`` into ``out`` under ``header``, resuming an earlier run.

    Checks the folder, keeps what an earlier run of the same set wrote, and writes the rest.
    """
    check_writable(out)
    old = _old_manifest(out)
    if old is not None:
        _check_same_set(old, header, out, flags)
    removed = remove_stale_temporaries(out)
    if removed:
        logger.info("removed %d temporary files of an interrupted run", removed)
    entries, pending = _reuse_existing(out, jobs, old, header)
    kept = len(jobs) - len(pending)
    logger.info("%d masks planned, %d already on disk, %d to write", len(jobs), kept, len(pending))
    _run_jobs(out, pending, entries, header, workers, progress)
    return GenerationReport(written=len(pending), kept=kept, manifest=out / MANIFEST_NAME)
