"""Irregular-hole masks for inpainting: generator, file I/O, folder and video sources.

Convention: a mask is ``uint8 (H, W)`` with 1 = known pixel and 0 = hole; mask files are
single-channel PNGs with 255 = known. See ``python -m masks --help`` for the dataset CLI.
"""

from masks.augment import Augmentation
from masks.folder import FolderMaskSource
from masks.generator import PAPER_BINS, MaskGenerator, derive_rng, parse_bins
from masks.io import POLARITIES, hole_ratio, load_mask, resize_mask, save_mask
from masks.video import OcclusionSettings, from_video, occlusion_mask

__all__ = [
    "PAPER_BINS",
    "POLARITIES",
    "Augmentation",
    "FolderMaskSource",
    "MaskGenerator",
    "OcclusionSettings",
    "derive_rng",
    "from_video",
    "hole_ratio",
    "load_mask",
    "occlusion_mask",
    "parse_bins",
    "resize_mask",
    "save_mask",
]
