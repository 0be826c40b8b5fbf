"""Config -> the data a training run reads: image paths, mask sources, datasets, loaders.

Each builder can be called on its own (tests, notebooks). Samples are ``{"image": (3, S, S) in
[0, 1], "mask": (1, S, S), 1 = known, 0 = hole, ...}`` (see ``InpaintingDataset``).

Nothing here knows about processes: the run set-up decides who builds the demo data and passes
that step in (``resolve_image_paths(..., prepare_demo=...)``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from torch.utils.data import DataLoader

from inpainting.config_parsing import ConfigError
from inpainting.data.dataset import (
    MAX_CONSECUTIVE_BAD_FILES,
    InpaintingDataset,
    MaskSource,
    StrictDecodeError,
)
from inpainting.data.file_lists import read_file_list
from inpainting.data.fixed_masks import FixedMaskSet
from inpainting.data.io import ImageDecodeError, list_images, load_image, split_holdout
from inpainting.errors import UserInputError
from masks import FolderMaskSource, MaskGenerator, VideoMaskSource, parse_bins

if TYPE_CHECKING:  # config imports this module for MASK_SOURCES
    from inpainting.config import Config, DataConfig, MasksConfig

__all__ = [
    "MASK_SOURCES",
    "VAL_MASK_SEED",
    "build_datasets",
    "build_mask_source",
    "build_val_loader",
    "build_val_masks",
    "check_images_decode",
    "resolve_image_paths",
]

logger = logging.getLogger(__name__)

# Validation masks depend only on size, count, bins and border, never on train.seed, so that
# runs with different seeds are compared on the same masks.
VAL_MASK_SEED = 0


def _generated_masks(masks: MasksConfig, image_size: int) -> MaskSource:
    return MaskGenerator(image_size, image_size, hole_range=tuple(masks.hole_range),
                         border=masks.border or None)


def _folder_masks(masks: MasksConfig, image_size: int) -> MaskSource:
    return FolderMaskSource(Path(masks.folder).expanduser(), image_size, image_size,
                            polarity=masks.polarity, augment=masks.augment)


def _video_masks(masks: MasksConfig, image_size: int) -> MaskSource:
    return VideoMaskSource(Path(masks.folder).expanduser(), image_size, image_size,
                           augment=masks.augment)


# name -> (masks section, image size) -> training mask source; ``masks.source`` names one.
MASK_SOURCES: dict[str, Callable[[MasksConfig, int], MaskSource]] = {
    "generator": _generated_masks,
    "folder": _folder_masks,
    "video": _video_masks,
}


def _paths_of(spec: str, file_list_root: str) -> list[Path]:
    """A folder (recursive) or a ``.txt`` file list -> image paths."""
    path = Path(spec).expanduser()
    if path.is_file():
        root = Path(file_list_root).expanduser() if file_list_root else path.parent
        return read_file_list(path, root)
    return list_images(path)


def resolve_image_paths(
    data: DataConfig, seed: int,
    prepare_demo: Callable[[Path], tuple[Path, Path]] | None = None,
) -> tuple[list[Path], list[Path], list[Path]]:
    """Train, validation and test image paths from ``data.train`` / ``val`` / ``test``.

    ``demo`` uses the embedded demo data under ``data.demo_root``. An empty ``data.val`` holds
    out ``data.val_fraction`` of ``data.train`` and ``data.test_fraction`` > 0 holds out test
    images too, with one permutation seeded by ``seed`` (``split_holdout``). The trainer never
    reads the test images; they are recorded for ``evaluate.py``.

    Args:
        data: the ``data`` config section.
        seed: seed of the hold-out permutation (``train.seed``).
        prepare_demo: ``root -> (train_dir, val_dir)`` building the demo data when missing;
            default ``prepare_demo_data`` (one process). Several processes pass a step that
            builds once per node and waits for the others.

    Returns:
        ``(train, val, test)`` lists of image paths.

    Raises:
        ConfigError: ``data.train`` is empty.
        UserInputError: a folder or list is missing or empty (``list_images``,
            ``read_file_list``).
    """
    spec = data.train.strip()
    if not spec:
        raise ConfigError("data.train is empty; set it to an image folder, a file list (.txt) "
                          "or 'demo'")
    if spec.lower() == "demo":
        if prepare_demo is None:
            # Imported here so that ``python -m inpainting.data.demo`` runs a fresh module.
            from inpainting.data.demo import prepare_demo_data as prepare_demo
        train_dir, val_dir = prepare_demo(Path(data.demo_root).expanduser())
        return list_images(train_dir), list_images(val_dir), []
    paths = _paths_of(spec, data.file_list_root)
    val_spec, test_spec = data.val.strip(), data.test.strip()
    val_fraction = 0.0 if val_spec else data.val_fraction
    if val_fraction or data.test_fraction:
        train, val, test = split_holdout(paths, seed, val_fraction, data.test_fraction)
    else:  # nothing held out: keep the list's order, no sort of (possibly millions of) paths
        train, val, test = paths, [], []
    if val_spec:
        val = _paths_of(val_spec, data.file_list_root)
    if test_spec:
        test = _paths_of(test_spec, data.file_list_root)
    return train, val, test


def check_images_decode(paths: list[Path], key: str, strict: bool = False,
                        split: str = "training") -> None:
    """Decode the first images of ``paths`` until one succeeds, before a run writes anything.

    A list whose first files all fail (a wrong folder, an unsupported format) would otherwise
    stop the run at its first batch, after the run folder is made; a few bad files further on
    are left to the dataset (skipped, or refused with ``strict``). Usually one decode.

    Args:
        paths: the images of one split.
        key: the config key that names them (``data.train``), for the message.
        strict: refuse the first undecodable file too (``data.strict``).
        split: ``"training"`` or ``"validation"``, for the message. An empty list passes (a
            run without validation images).

    Raises:
        UserInputError: none of the first ``MAX_CONSECUTIVE_BAD_FILES + 1`` files decodes
            (``StrictDecodeError`` with ``strict`` at the first bad one); names a file.
    """
    attempts = min(len(paths), MAX_CONSECUTIVE_BAD_FILES + 1)
    first_error: ImageDecodeError | None = None
    for path in paths[:attempts]:
        try:
            load_image(path)
            return
        except ImageDecodeError as error:
            if strict:
                raise StrictDecodeError.of(error) from error
            first_error = first_error or error
    if first_error is not None:
        raise UserInputError(f"none of the first {attempts} {split} images of {key} can be "
                             f"decoded ({first_error}); point {key} at image files (PNG, JPEG, "
                             "...)")


def build_mask_source(config: Config) -> MaskSource:
    """The training masks named by ``masks.source`` (a key of ``MASK_SOURCES``).

    Returns:
        A callable ``(rng) -> uint8 (S, S)`` mask, 1 = known, 0 = hole, S = ``data.image_size``.

    Raises:
        UserInputError: the mask (or video mask) folder is missing or holds no mask images.
    """
    return MASK_SOURCES[config.masks.source](config.masks, config.data.image_size)


def build_val_masks(config: Config, run_dir: Path | None = None) -> FixedMaskSet:
    """The fixed validation masks, read from ``run_dir/val_masks`` when a run already has them.

    A new set is generated (and saved there when ``run_dir`` is given); a resumed run reuses
    its saved masks, so its numbers stay comparable even if the generator changes.

    Returns:
        ``masks.val_count`` masks of ``data.image_size`` squared, 1 = known, 0 = hole.
    """
    folder = run_dir / "val_masks" if run_dir is not None else None
    if folder is not None and folder.is_dir():
        fixed = FixedMaskSet.load(folder)
        if fixed.size == config.data.image_size and len(fixed) == config.masks.val_count:
            return fixed
        logger.warning("val masks in %s do not match the config; making new ones", folder)
    fixed = FixedMaskSet(config.masks.val_count, config.data.image_size,
                         bins=parse_bins(config.masks.val_bins),
                         border=config.masks.border or None, seed=VAL_MASK_SEED)
    if folder is not None:
        fixed.save(folder)
    return fixed


def build_datasets(
    config: Config, train_paths: list[Path], val_paths: list[Path],
    val_masks: FixedMaskSet | None, mask_source: MaskSource | None = None,
) -> tuple[InpaintingDataset, InpaintingDataset | None]:
    """Training set (``data.train_resize`` framing, generated/folder/video masks, a decode cache)
    and validation set (fixed masks).

    The validation set has ``masks.val_count`` pairs: image ``i % len(val_paths)`` with fixed
    mask ``i``, so its size (and cost) does not grow with the validation folder.

    Args:
        config: the whole config (``data``, ``masks`` and ``train.seed``).
        train_paths, val_paths: from ``resolve_image_paths``.
        val_masks: from ``build_val_masks``, or None for no validation set.
        mask_source: the training masks; default ``build_mask_source(config)``.

    Returns:
        ``(train_set, val_set or None)``.
    """
    data = config.data
    train = InpaintingDataset(
        train_paths, data.image_size, train=True,
        mask_source=mask_source if mask_source is not None else build_mask_source(config),
        seed=config.train.seed, train_resize=data.train_resize, rrc_scale=data.rrc_scale,
        hflip=data.hflip, strict=data.strict, decode_cache_mb=data.decode_cache_mb)
    if val_masks is None:
        return train, None
    pairs = [val_paths[i % len(val_paths)] for i in range(len(val_masks))]
    val = InpaintingDataset(pairs, data.image_size, train=False, mask_source=val_masks,
                            seed=config.train.seed, eval_mode=data.eval_mode, strict=data.strict)
    return train, val


def build_val_loader(data: DataConfig, dataset: InpaintingDataset, pin_memory: bool = False
                     ) -> DataLoader:
    """Validation batches of ``data.batch_size`` in a fixed order.

    Args:
        data: the ``data`` config section.
        dataset: the validation set from ``build_datasets``.
        pin_memory: page-locked batches, for a CUDA device.
    """
    return DataLoader(dataset, batch_size=data.batch_size, shuffle=False,
                      num_workers=data.num_workers, pin_memory=pin_memory)
