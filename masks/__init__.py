"""Irregular-hole masks for inpainting: generator, file I/O, folder and video sources.

Convention: a mask is ``uint8 (H, W)`` with 1 = known pixel and 0 = hole; mask files are
single-channel PNGs with 255 = known. A mask folder describes itself with one
``manifest.json`` schema (``masks.manifest``). See ``python -m masks --help`` for the dataset CLI.
"""

from masks.augment import Augmentation
from masks.folder import FolderMaskSource, VideoMaskSource, load_object_mask
from masks.generator import PAPER_BINS, MaskGenerator, derive_rng, parse_bins
from masks.io import POLARITIES, hole_ratio, load_mask, resize_mask, save_mask
from masks.manifest import MANIFEST_NAME, Manifest, MaskEntry, read_manifest, write_manifest
from masks.presets import PRESETS, PresetGenerator
from masks.video import OcclusionSettings, from_video, occlusion_mask

__all__ = [
    "MANIFEST_NAME",
    "PAPER_BINS",
    "POLARITIES",
    "PRESETS",
    "Augmentation",
    "FolderMaskSource",
    "Manifest",
    "MaskEntry",
    "MaskGenerator",
    "OcclusionSettings",
    "PresetGenerator",
    "VideoMaskSource",
    "derive_rng",
    "from_video",
    "hole_ratio",
    "load_mask",
    "load_object_mask",
    "occlusion_mask",
    "parse_bins",
    "read_manifest",
    "resize_mask",
    "save_mask",
    "write_manifest",
]
