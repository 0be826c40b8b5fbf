"""Data pipeline: image files -> ``{"image": (3, S, S) in [0, 1], "mask": (1, S, S), ...}``.

Mask convention: 1 = known pixel, 0 = hole. See ``InpaintingDataset`` for the sample keys and
``inpainting.tasks.inpainting.data`` for how a run's config becomes paths, mask sources,
datasets and loaders.
"""

from typing import Any

from inpainting.data.dataset import (
    MAX_CONSECUTIVE_BAD_FILES,
    InpaintingDataset,
    MaskSource,
    sample_rngs,
)
from inpainting.data.file_lists import read_file_list, write_file_list
from inpainting.data.fixed_masks import FixedMaskSet
from inpainting.data.io import (
    ALPHA_BACKGROUND,
    IMAGE_EXTENSIONS,
    ImageDecodeError,
    list_images,
    load_image,
    split_holdout,
    split_paths,
)
from inpainting.data.transforms import (
    EVAL_MODES,
    TRAIN_RESIZE_MODES,
    EvalTransform,
    TrainTransform,
    center_crop,
    horizontal_flip,
    random_crop,
    random_resized_crop,
    resize,
    upscale_to_min_side,
)

__all__ = [
    "ALPHA_BACKGROUND",
    "EVAL_MODES",
    "IMAGE_EXTENSIONS",
    "MAX_CONSECUTIVE_BAD_FILES",
    "TRAIN_RESIZE_MODES",
    "EvalTransform",
    "FixedMaskSet",
    "ImageDecodeError",
    "InpaintingDataset",
    "MaskSource",
    "TrainTransform",
    "center_crop",
    "horizontal_flip",
    "list_images",
    "load_image",
    "prepare_demo_data",
    "random_crop",
    "random_resized_crop",
    "read_file_list",
    "resize",
    "sample_rngs",
    "split_holdout",
    "split_paths",
    "write_file_list",
    "upscale_to_min_side",
]


def __getattr__(name: str) -> Any:
    # Imported on first use so that ``python -m inpainting.data.demo`` does not find the module
    # already imported by this package (runpy warns about that).
    if name == "prepare_demo_data":
        from inpainting.data.demo import prepare_demo_data

        return prepare_demo_data
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
