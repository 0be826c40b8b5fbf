"""The ``data`` and ``masks`` config sections and what is built from them: image paths, mask
sources, datasets, loaders.

``data.train: demo`` selects the embedded demo data (see ``inpainting.data.prepare_demo_data``),
cached under ``data.demo_root``.

Each builder can be called on its own (tests, notebooks). Samples are ``{"image": (3, S, S) in
[0, 1], "mask": (1, S, S), 1 = known, 0 = hole, ...}`` (see ``InpaintingDataset``).

Nothing here knows about processes: the run set-up decides who builds the demo data and passes
that step in (``resolve_image_paths(..., prepare_demo=...)``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import DataLoader

from inpainting.data import EVAL_MODES, TRAIN_RESIZE_MODES
from inpainting.data.dataset import (
    MAX_CONSECUTIVE_BAD_FILES,
    InpaintingDataset,
    MaskSource,
    StrictDecodeError,
)
from inpainting.data.file_lists import read_file_list
from inpainting.data.fixed_masks import FixedMaskSet
from inpainting.data.io import ImageDecodeError, list_images, load_image, split_holdout
from inpainting.engine.config_parsing import ConfigError, check, check_choice
from inpainting.engine.errors import UserInputError
from masks import POLARITIES, FolderMaskSource, MaskGenerator, VideoMaskSource, parse_bins
from masks.dataset import MAX_MASKS, MAX_SIZE, MAX_WORKERS
from masks.paired import PairedMaskSource

__all__ = [
    "MASK_SOURCES",
    "DataConfig",
    "MasksConfig",
    "VAL_MASK_SEED",
    "build_datasets",
    "build_mask_source",
    "build_val_loader",
    "build_val_masks",
    "check_images_decode",
    "resolve_image_paths",
]

logger = logging.getLogger(__name__)

MAX_BATCH = 65_536  # images per process and step: far beyond any memory, a typo's bound

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


def _paired_masks(masks: MasksConfig, image_size: int) -> PairedMaskSource:
    return PairedMaskSource(Path(masks.folder).expanduser(), polarity=masks.polarity)


# name -> (masks section, image size) -> training mask source; ``masks.source`` names one.
MASK_SOURCES: dict[str, Callable[[MasksConfig, int], MaskSource | PairedMaskSource]] = {
    "generator": _generated_masks,
    "folder": _folder_masks,
    "video": _video_masks,
    "paired": _paired_masks,
}


@dataclass(frozen=True)
class DataConfig:
    """``data``: where images come from and how they are cropped."""

    train: str = ""  # image folder, file list (.txt), or "demo"
    val: str = ""  # folder or file list; empty: a seeded split of train (val_fraction)
    test: str = ""  # folder or file list for evaluate.py; recorded in RUN/splits/test.txt
    file_list_root: str = ""  # folder the paths in .txt lists are relative to (default: its folder)
    val_fraction: float = 0.05
    test_fraction: float = 0.0  # > 0: also hold out this share of train for testing (seeded)
    image_size: int = 256
    batch_size: int = 6  # per process (per GPU under torchrun)
    num_workers: int = 4
    eval_mode: str = "center_crop"  # validation crop, a key of inpainting.data.EVAL_MODES
    train_resize: str = "crop"  # training framing: crop | resize | random_resized_crop
    rrc_scale: tuple[float, float] = (0.5, 1.0)  # area fractions [lo, hi] of random_resized_crop
    random_resized_crop: bool = False  # older switch: true is train_resize: random_resized_crop
    hflip: bool = True
    decode_cache_mb: int = 256  # decoded training images kept per loader process; 0: off
    strict: bool = False  # an undecodable image stops the run instead of being skipped
    demo_root: str = "~/.cache/pconv-inpainting/demo"  # cache of the demo data

    def __post_init__(self) -> None:
        check(0.0 < self.val_fraction < 1.0, "data.val_fraction", "in (0, 1)", self.val_fraction)
        check(0.0 <= self.test_fraction < 1.0, "data.test_fraction", "in [0, 1) (0: off)",
              self.test_fraction)
        held_out = self.test_fraction + (0.0 if self.val.strip() else self.val_fraction)
        check(held_out < 1.0, "data.val_fraction + data.test_fraction", "< 1 (some images must "
              "stay for training)", round(held_out, 6))
        if self.test.strip() and self.test_fraction > 0:
            raise ConfigError("set either data.test (a test folder or list) or "
                              "data.test_fraction (hold out part of data.train), not both")
        check(8 <= self.image_size <= MAX_SIZE, "data.image_size", f"in [8, {MAX_SIZE}]",
              self.image_size)
        check(1 <= self.batch_size <= MAX_BATCH, "data.batch_size", f"in [1, {MAX_BATCH}]",
              self.batch_size)
        check(0 <= self.num_workers <= MAX_WORKERS, "data.num_workers", f"in [0, {MAX_WORKERS}]",
              self.num_workers)
        check_choice("data.eval_mode", self.eval_mode, EVAL_MODES)
        self._check_train_resize()
        check(self.decode_cache_mb >= 0, "data.decode_cache_mb", ">= 0 (0: off)",
              self.decode_cache_mb)
        if self.train.strip().lower() == "demo" and self.val not in ("", "demo"):
            raise ConfigError("data.val must be empty when data.train is 'demo' (it has its own)")
        if self.train.strip().lower() == "demo" and (self.test.strip() or self.test_fraction):
            raise ConfigError("data.test and data.test_fraction do not apply to the demo data "
                              "(it has no test images); leave them unset")


    def _check_train_resize(self) -> None:
        check_choice("data.train_resize", self.train_resize, TRAIN_RESIZE_MODES)
        lo, hi = self.rrc_scale
        check(0.0 < lo <= hi <= 1.0, "data.rrc_scale", "[lo, hi] with 0 < lo <= hi <= 1",
              list(self.rrc_scale))
        if self.random_resized_crop and self.train_resize == "resize":
            raise ConfigError("data.random_resized_crop: true contradicts data.train_resize: "
                              "resize; set only data.train_resize")
        # One meaning, two spellings (configs and checkpoints of older runs use the switch):
        # resolve both so that a saved config compares equal on resume.
        rrc = self.random_resized_crop or self.train_resize == "random_resized_crop"
        object.__setattr__(self, "random_resized_crop", rrc)
        if rrc:
            object.__setattr__(self, "train_resize", "random_resized_crop")


@dataclass(frozen=True)
class MasksConfig:
    """``masks``: training masks (generated, from a folder or from videos' object masks) and the
    fixed validation set."""

    # generator | folder (mask images) | video (a folder per video of frames' object masks) |
    # paired (each training image's own mask, found by name: masks.paired)
    source: str = "generator"
    folder: str = ""  # for source: folder, video or paired
    polarity: str = "known_white"  # of folder and paired files: known_white | hole_white
    augment: bool = True  # random rotation/crop/translation/dilation of folder and video masks
    hole_range: tuple[float, float] = (0.01, 0.6)  # training hole ratios (generator)
    border: int = 0  # keep holes this many pixels from the edge (0: anywhere)
    val_count: int = 60  # validation pairs: image i % len(val images) with fixed mask i
    val_bins: str = "paper"  # hole-ratio bins of the validation masks: paper | "lo-hi,..."

    def __post_init__(self) -> None:
        check_choice("masks.source", self.source, MASK_SOURCES)
        check_choice("masks.polarity", self.polarity, POLARITIES)
        if self.source in ("folder", "video", "paired") and not self.folder.strip():
            raise ConfigError(f"masks.folder must be set when masks.source is '{self.source}'")
        lo, hi = self.hole_range
        check(0.0 <= lo < hi <= 1.0, "masks.hole_range", "[lo, hi] with 0 <= lo < hi <= 1",
               list(self.hole_range))
        check(self.border >= 0, "masks.border", ">= 0", self.border)
        check(1 <= self.val_count <= MAX_MASKS, "masks.val_count", f"in [1, {MAX_MASKS}]",
              self.val_count)
        try:
            parse_bins(self.val_bins)
        except ValueError as error:
            raise ConfigError(f"masks.val_bins: {error}") from None



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


def build_mask_source(masks: MasksConfig, image_size: int) -> MaskSource | PairedMaskSource:
    """The training masks named by ``masks.source`` (a key of ``MASK_SOURCES``).

    Returns:
        A callable ``(rng) -> uint8 (S, S)`` mask, 1 = known, 0 = hole, S = ``image_size``;
        for ``paired``, the ``PairedMaskSource`` the dataset asks for each image's mask.

    Raises:
        UserInputError: the mask (or video mask) folder is missing or holds no mask images.
    """
    return MASK_SOURCES[masks.source](masks, image_size)


def build_val_masks(masks: MasksConfig, image_size: int, run_dir: Path | None = None
                    ) -> FixedMaskSet:
    """The fixed validation masks of ``image_size`` squared, read from ``run_dir/val_masks`` when
    a run already has them.

    A new set is generated (and saved there when ``run_dir`` is given); a resumed run reuses
    its saved masks, so its numbers stay comparable even if the generator changes.

    Returns:
        ``masks.val_count`` masks, 1 = known, 0 = hole.
    """
    folder = run_dir / "val_masks" if run_dir is not None else None
    if folder is not None and folder.is_dir():
        fixed = FixedMaskSet.load(folder)
        if fixed.size == image_size and len(fixed) == masks.val_count:
            return fixed
        logger.warning("val masks in %s do not match the config; making new ones", folder)
    fixed = FixedMaskSet(masks.val_count, image_size, bins=parse_bins(masks.val_bins),
                         border=masks.border or None, seed=VAL_MASK_SEED)
    if folder is not None:
        fixed.save(folder)
    return fixed


def build_datasets(
    data: DataConfig, masks: MasksConfig, seed: int, train_paths: list[Path],
    val_paths: list[Path], val_masks: FixedMaskSet | None,
    mask_source: MaskSource | PairedMaskSource | None = None,
) -> tuple[InpaintingDataset, InpaintingDataset | None]:
    """Training set (``data.train_resize`` framing, generated/folder/video masks, a decode cache)
    and validation set (fixed masks).

    The validation set has ``masks.val_count`` pairs: image ``i % len(val_paths)`` with fixed
    mask ``i``, so its size (and cost) does not grow with the validation folder.

    Args:
        data, masks: the config sections.
        seed: ``train.seed``.
        train_paths, val_paths: from ``resolve_image_paths``.
        val_masks: from ``build_val_masks``, or None for no validation set.
        mask_source: the training masks; default ``build_mask_source(masks, ...)``.

    Returns:
        ``(train_set, val_set or None)``.
    """
    if mask_source is None:
        mask_source = build_mask_source(masks, data.image_size)
    train = InpaintingDataset(
        train_paths, data.image_size, train=True, mask_source=mask_source, seed=seed,
        train_resize=data.train_resize, rrc_scale=data.rrc_scale,
        hflip=data.hflip, strict=data.strict, decode_cache_mb=data.decode_cache_mb)
    if val_masks is None:
        return train, None
    pairs = [val_paths[i % len(val_paths)] for i in range(len(val_masks))]
    val = InpaintingDataset(pairs, data.image_size, train=False, mask_source=val_masks,
                            seed=seed, eval_mode=data.eval_mode, strict=data.strict)
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
