"""A disk cache of the ground truth's Inception features, so a test set is run through Inception
once: the model, each baseline, each checkpoint and each later run reuse them.

An entry is keyed by everything the features depend on: the test images (each file's resolved
path, size and modification time, so an edited, replaced or touched image is a miss), how they
are brought to the evaluation size (height, width, fit, channels), the network's preprocessing,
the weight file's sha256 and the device type. The key's sha256 names the file and the key itself
is stored beside the features and compared on load, so a stale or foreign file is never used.

Entries are written with ``inpainting.engine.files.atomic_write``, so an interrupted run leaves no
torn entry; a cache that cannot be written only costs the next run the time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from inpainting.engine.files import atomic_write

__all__ = ["FORMAT_VERSION", "FeatureCache", "default_cache_dir", "image_list_key"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/pconv-inpainting/features`` (``~/.cache/...`` without it)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pconv-inpainting" / "features"


def image_list_key(images: Sequence[Path]) -> list[list[Any]]:
    """``[[resolved path, size, mtime_ns], ...]`` of the images, sorted by path.

    Raises:
        OSError: an image cannot be read (stat).
    """
    entries = []
    for image in images:
        status = os.stat(image)
        entries.append([str(Path(image).resolve()), status.st_size, status.st_mtime_ns])
    return sorted(entries)


class FeatureCache:
    """Features by key in one folder.

    Args:
        folder: Where the entries live (created on the first save).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, key: dict[str, Any]) -> Path:
        """The entry's file: ``<folder>/<sha256 of the key>.pt``."""
        digest = hashlib.sha256(_canonical(key).encode("utf-8")).hexdigest()
        return self.folder / f"{digest[:32]}.pt"

    def load(self, key: dict[str, Any]) -> Tensor | None:
        """The features stored under ``key``, or None (absent, unreadable or another key)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # a torn or foreign file is only a miss: no common type
            logger.warning("ignoring unreadable feature cache %s (%s)", path, error)
            return None
        if not isinstance(entry, dict) or entry.get("key") != _canonical(key):
            return None
        features = entry.get("features")
        return features if isinstance(features, Tensor) else None

    def save(self, key: dict[str, Any], features: Tensor) -> Path | None:
        """Store ``features`` under ``key`` atomically; a failure is logged, not raised.

        Returns:
            The entry's path, or None when it could not be written.
        """
        path = self.path(key)
        entry = {"key": _canonical(key), "features": features.cpu()}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda handle: torch.save(entry, handle))
        except OSError as error:  # EnvironmentProblem included
            logger.warning("could not write the feature cache %s (%s); the next run computes "
                           "the ground truth's features again", path, error)
            return None
        return path


def _canonical(key: dict[str, Any]) -> str:
    return json.dumps({"version": FORMAT_VERSION, **key}, sort_keys=True)
