"""The one ``manifest.json`` of a mask folder: schema, reader and atomic writer.

Every mask set on disk describes itself with the same schema (version 2)::

    {
     "version": 2,
     "polarity": "known_white",
     "size": 512,                      # optional: every mask is size x size
     "bins": [[0.01, 0.1], ...],       # optional: the hole-ratio bins (lo, hi] the set was made for
     "border_px": 50,                  # optional: border width of the "border" masks
     "seed": 0,                        # optional: seed of the whole set
     "generator_version": 1,           # optional: masks.generator.GENERATOR_VERSION
     "source": "clip.mp4",             # optional: the video of a video set
     "frame_step": 1,                  # optional: its frame step
     "preset": "thick",                # optional: the LaMa preset of a preset set
     "preset_params": {...},           # optional: its parameters (masks.presets.PresetParams)
     "masks": [
      {"file": "border/0.01-0.1/00000.png", "hole_ratio": 0.05, "bin": [0.01, 0.1],
       "border": true, "seed": 123},   # only "file" is required
      ...
     ]
    }

``file`` is a POSIX path relative to the manifest's folder. ``python -m masks generate`` and
``video``, the training run's fixed validation masks (``FixedMaskSet``) and ``evaluate.py`` all
read and write it through :func:`read_manifest` and :func:`write_manifest`.

For a preset set, ``generator_version`` is ``masks.presets.PRESET_VERSION``, its masks have
no ``bin`` or ``border``, and ``preset_params`` holds plain JSON values (the LaMa config they
come from, the size they are scaled to, and every parameter).

Older files still read: those of ``python -m masks generate`` and ``video`` (no ``version``, the
same keys) and those of ``FixedMaskSet`` (``"version": 1``, whose mask entries give ``bin`` as
an index into the top-level ``bins``). Unknown keys are ignored, so that a newer writer's
additions do not make a set unreadable; that is why ``preset`` and ``preset_params`` came
without a version bump: a reader that predates them reads a preset set as a plain set.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inpainting.engine.errors import UserInputError
from inpainting.engine.files import atomic_write
from masks.io import check_polarity

__all__ = ["MANIFEST_NAME", "MANIFEST_VERSION", "Manifest", "MaskEntry", "read_manifest",
           "write_manifest"]

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 2
# Set-level keys besides "version", "polarity" and "masks", in the order they are written.
_HEADER_KEYS = ("size", "bins", "border_px", "seed", "generator_version", "source", "frame_step",
                "preset", "preset_params")


@dataclass(frozen=True)
class MaskEntry:
    """One mask file of a set.

    Attributes:
        file: Path relative to the manifest's folder, POSIX style.
        hole_ratio: Fraction of hole pixels (``masks.hole_ratio``), if recorded.
        bin: The hole-ratio bin ``(lo, hi]`` the mask was made for, if any.
        border: True if the mask was made with holes kept ``border_px`` away from the edge,
            False if made without, None if unknown.
        seed: The seed that reproduces the mask, if any.
    """

    file: str
    hole_ratio: float | None = None
    bin: tuple[float, float] | None = None
    border: bool | None = None
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this entry; fields that are None are left out."""
        content: dict[str, Any] = {"file": self.file}
        if self.hole_ratio is not None:
            content["hole_ratio"] = self.hole_ratio
        if self.bin is not None:
            content["bin"] = list(self.bin)
        if self.border is not None:
            content["border"] = self.border
        if self.seed is not None:
            content["seed"] = self.seed
        return content


@dataclass(frozen=True)
class Manifest:
    """A mask set's description; see the module docstring for each field's meaning.

    Masks are ``known_white`` (255 = known) files unless ``polarity`` says ``hole_white``.
    """

    masks: tuple[MaskEntry, ...]
    polarity: str = "known_white"
    size: int | None = None
    bins: tuple[tuple[float, float], ...] | None = None
    border_px: int | None = None
    seed: int | None = None
    generator_version: int | None = None
    source: str | None = None
    frame_step: int | None = None
    preset: str | None = None
    preset_params: dict[str, Any] | None = None

    def to_json(self) -> str:
        """The file's text: the header keys, then one mask entry per line (diff-friendly)."""
        header: dict[str, Any] = {"version": MANIFEST_VERSION, "polarity": self.polarity}
        for key in _HEADER_KEYS:
            value = getattr(self, key)
            if value is not None:
                header[key] = [list(b) for b in value] if key == "bins" else value
        lines = ["{"] + [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in header.items()]
        entries = ",\n".join(f"  {json.dumps(entry.to_json())}" for entry in self.masks)
        lines += [' "masks": [', entries, " ]", "}"] if entries else [' "masks": []', "}"]
        return "\n".join(lines) + "\n"


def write_manifest(folder: str | os.PathLike, manifest: Manifest) -> bool:
    """Write ``folder/manifest.json`` atomically (tmp file + ``os.replace``).

    Args:
        folder: The mask set's folder; it must exist.
        manifest: What to write; masks are written in their order.

    Returns:
        Whether the file was written (False when it already held exactly this text).
    """
    data = manifest.to_json().encode("utf-8")
    path = Path(folder) / MANIFEST_NAME
    if path.is_file() and path.read_bytes() == data:
        return False
    atomic_write(path, data)
    return True


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Read a ``manifest.json`` of any of the formats in the module docstring.

    Args:
        path: The manifest file, or the folder holding it.

    Returns:
        The manifest, masks in file order.

    Raises:
        UserInputError: The file is missing, is not JSON, or does not follow the schema; the
            message names the file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise UserInputError(f"manifest '{path}' does not exist")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:  # an OSError stays one (exit 3)
        raise UserInputError(f"cannot read manifest '{path}': {error}") from error
    try:
        return _parse(content)
    except (TypeError, ValueError, IndexError, KeyError) as error:
        raise UserInputError(f"manifest '{path}': {error}") from error


def _parse(content: Any) -> Manifest:
    if not isinstance(content, dict) or not isinstance(content.get("masks"), list):
        raise ValueError("no 'masks' list")
    version = content.get("version", 0)
    if not isinstance(version, int) or version > MANIFEST_VERSION:
        raise ValueError(f"unknown version {version!r} (this reader knows up to "
                         f"{MANIFEST_VERSION})")
    bins = content.get("bins")
    bins = None if bins is None else tuple(_bin(b) for b in bins)
    masks = tuple(_entry(entry, bins) for entry in content["masks"])
    return Manifest(
        masks=masks,
        polarity=check_polarity(content.get("polarity", "known_white")),
        size=_optional(content, "size", int),
        bins=bins,
        border_px=_optional(content, "border_px", int),
        seed=_optional(content, "seed", int),
        generator_version=_optional(content, "generator_version", int),
        source=_optional(content, "source", str),
        frame_step=_optional(content, "frame_step", int),
        preset=_optional(content, "preset", str),
        preset_params=_optional(content, "preset_params", dict),
    )


def _entry(entry: Any, bins: tuple[tuple[float, float], ...] | None) -> MaskEntry:
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        raise ValueError("every mask entry needs a 'file' string")
    bin_value = entry.get("bin")
    if isinstance(bin_value, int) and not isinstance(bin_value, bool):
        if bins is None or not 0 <= bin_value < len(bins):
            raise ValueError(f"mask '{entry['file']}' has bin index {bin_value} but the "
                             "manifest's 'bins' list has no such bin")
        bin_value = bins[bin_value]  # FixedMaskSet files of version 1
    ratio = entry.get("hole_ratio")
    border = entry.get("border")
    return MaskEntry(
        file=entry["file"],
        hole_ratio=None if ratio is None else float(ratio),
        bin=None if bin_value is None else _bin(bin_value),
        border=None if border is None else bool(border),
        seed=_optional(entry, "seed", int),
    )


def _bin(value: Any) -> tuple[float, float]:
    lo, hi = (float(v) for v in value)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"bin {value!r} is not a pair of numbers")
    return lo, hi


def _optional(content: dict, key: str, kind: type) -> Any:
    value = content.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"'{key}' must be {kind.__name__}, got {value!r}")
    return value
