"""A LaMa evaluation-preset mask set on disk (``python -m masks generate --preset``).

Layout under the output folder::

    manifest.json       # with "preset" and "preset_params" (masks.presets.PresetParams)
    00000.png           # white = known, like every set

Each mask's seed derives from (set seed, preset, index) only, so a set does not depend on the
number of workers or on interruptions, and ``PresetGenerator(preset, size)`` reproduces any
one mask from its manifest entry: ``generator(np.random.default_rng(entry.seed))``. Writing,
resuming and the limits are those of every set (``masks.dataset``).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from masks.dataset import (
    GENERATE_FLAGS,
    GenerationReport,
    MaskJob,
    check_limits,
    write_set,
)
from masks.manifest import Manifest
from masks.presets import PRESET_VERSION, PresetGenerator


def preset_mask_seed(seed: int, preset: str, index: int) -> int:
    """The 32-bit seed of one mask of a preset set, a function of its identity only."""
    keys = [seed, zlib.crc32(preset.encode("utf-8")), index]
    return int(np.random.SeedSequence(keys).generate_state(1)[0])


def plan_preset_jobs(preset: str, count: int, seed: int) -> list[MaskJob]:
    """All masks of a preset set: ``00000.png`` and on."""
    digits = max(5, len(str(count - 1)))
    return [MaskJob(f"{index:0{digits}d}.png", None, None, preset_mask_seed(seed, preset, index))
            for index in range(count)]


def generate_preset_set(
    out: str | os.PathLike,
    preset: str,
    size: int,
    count: int,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    flags: dict[str, str | None] | None = None,
) -> GenerationReport:
    """Write ``count`` masks of a LaMa evaluation preset and the ``manifest.json``, resuming.

    Args:
        out: Output folder (created if missing).
        preset: One of :data:`masks.presets.PRESETS` (thin, medium, thick).
        size: Masks are (size, size), at least :data:`masks.presets.MIN_PRESET_SIZE`.
        count: Masks in the set.
        seed: Seed of the whole set; each mask's own seed is derived from it.
        workers: Processes writing masks; the result does not depend on it.
        progress: Show a tqdm progress bar.
        flags: The caller's option names, as for
            :func:`masks.dataset.generate_mask_set`.

    Returns:
        How many masks were written and kept, and the manifest path.

    Raises:
        ValueError: For a count or worker number below 1 (the command line checks them first).
        UserInputError: For an unknown preset, a size or count over the limits, or a folder
            holding another set.
        EnvironmentProblem: For an unwritable folder.
    """
    for name, value in (("count", count), ("workers", workers)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    flags = GENERATE_FLAGS if flags is None else flags
    check_limits(size, count, flags, "count")
    generator = PresetGenerator(preset, size)  # fails early on a bad name or size
    header = Manifest(masks=(), size=size, seed=seed, generator_version=PRESET_VERSION,
                      preset=preset, preset_params=generator.params.to_json())
    jobs = plan_preset_jobs(preset, count, seed)
    return write_set(Path(out), header, jobs, flags, workers, progress)
