"""Demo data that needs no download: crops of the photographs scikit-image ships in its package.

The photos are read straight from the files inside ``skimage/data`` (never through
``skimage.data``'s fetchers, which may try the network for some images). Each photo gives a
fixed number of crops of 128-256 px per side taken at random (seeded) scales and positions, so
the train set has a few hundred images and a small model can learn something on a CPU. Two whole
photos are held out for validation, so validation never sees a training photo.

This is for trying the code, not for real results: a real run needs a real dataset such as
Places2 or CelebA-HQ.

Command line: ``python -m inpainting.data.demo ROOT`` prepares ``ROOT/train`` and ``ROOT/val``.
Exit codes (as every command of the project, ``inpainting.engine.errors``): 0 done; 2 ``ROOT`` is a
file, or scikit-image is missing or unusable; 3 ``ROOT`` cannot be written or the disk is full
(one line on stderr); 130 interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from inpainting.data.io import ImageDecodeError, load_image
from inpainting.engine.cli import OneLineParser, run_main
from inpainting.engine.errors import EnvironmentProblem, UserInputError
from inpainting.engine.files import atomic_write

__all__ = ["DEMO_VERSION", "TRAIN_PHOTOS", "VAL_PHOTOS", "prepare_demo_data", "skimage_photo_dir"]

logger = logging.getLogger(__name__)

PROG = "python -m inpainting.data.demo"

DEMO_VERSION = 1  # bump when the recipe changes, so old caches are rebuilt
# Files in skimage/data; colour photographs plus a few grey textures for variety. Only the
# left view of the stereo motorcycle pair is used: the right one is a near-duplicate.
TRAIN_PHOTOS = (
    "astronaut.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "brick.png",
    "grass.png",
    "gravel.png",
    "coins.png",
)
VAL_PHOTOS = ("chelsea.png", "camera.png")
TRAIN_CROPS_PER_PHOTO = 32
VAL_CROPS_PER_PHOTO = 12
CROP_SIDES = (128, 256)  # each crop side is drawn in this range (inclusive)
_SEED = 20180418
_MARKER = ".complete.json"


def skimage_photo_dir() -> Path:
    """Folder of the image files bundled with scikit-image.

    Raises:
        UserInputError: scikit-image is not installed; the message says how to get it.
    """
    try:
        import skimage
    except ImportError as error:
        raise UserInputError(
            "the demo data is built from scikit-image's bundled photos, but scikit-image is not "
            "installed: pip install scikit-image (or pip install -e '.[demo]')"
        ) from error
    return Path(skimage.__file__).parent / "data"


def _crops(photo: np.ndarray, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` crops with sides in ``CROP_SIDES``, each from a window 1-2x larger, resized."""
    height, width = photo.shape[:2]
    crops = []
    for _ in range(count):
        crop_h = int(rng.integers(CROP_SIDES[0], min(CROP_SIDES[1], height) + 1))
        crop_w = int(rng.integers(CROP_SIDES[0], min(CROP_SIDES[1], width) + 1))
        # Zoom out by up to 2x (less if the photo is too small) for scale variety.
        zoom = rng.uniform(1.0, max(1.0, min(2.0, height / crop_h, width / crop_w)))
        window_h, window_w = min(height, round(crop_h * zoom)), min(width, round(crop_w * zoom))
        top = int(rng.integers(0, height - window_h + 1))
        left = int(rng.integers(0, width - window_w + 1))
        window = photo[top : top + window_h, left : left + window_w]
        crops.append(cv2.resize(window, (crop_w, crop_h), interpolation=cv2.INTER_AREA))
    return crops


def _write_split(
    photo_dir: Path, names: tuple[str, ...], per_photo: int, out_dir: Path, bar: tqdm
) -> int:
    out_dir.mkdir(parents=True)
    written = 0
    for name in names:
        try:
            photo = load_image(photo_dir / name)
        except ImageDecodeError as error:
            logger.warning("demo data: skipping scikit-image photo (%s)", error)
            bar.update(1)
            continue
        rng = np.random.default_rng([_SEED, DEMO_VERSION, zlib.crc32(name.encode())])
        stem = Path(name).stem
        for crop_index, crop in enumerate(_crops(photo, per_photo, rng)):
            path = out_dir / f"{stem}_{crop_index:03d}.png"
            if not cv2.imwrite(str(path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)):
                raise EnvironmentProblem(f"could not write demo image '{path}'; check the "
                                         "folder's permissions and free space")
            written += 1
        bar.update(1)
    if written == 0:
        raise UserInputError(
            f"none of the scikit-image photos {', '.join(names)} could be read from "
            f"'{photo_dir}'; reinstall scikit-image"
        )
    return written


def _cached(root: Path) -> bool:
    marker = root / _MARKER
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if info.get("version") != DEMO_VERSION:
        return False
    return all(
        len(list((root / split).glob("*.png"))) == info.get(split) for split in ("train", "val")
    )


def prepare_demo_data(root: str | os.PathLike, progress: bool = False) -> tuple[Path, Path]:
    """Build (once) the demo train and val folders of PNG crops under ``root``.

    Work happens in a temporary folder inside ``root``; the finished ``train`` and ``val``
    folders are then moved into place and a marker file is written last, so an interrupted
    call leaves no half-built set that looks complete. A later call with a complete, current
    set returns at once. Call it from one process at a time (rank 0 under DDP).

    Args:
        root: folder to hold ``train/`` and ``val/`` (created if missing).
        progress: show a tqdm bar over the photos.

    Returns:
        ``(train_dir, val_dir)``.

    Raises:
        UserInputError: ``root`` is a file, scikit-image is missing (``pip install
            scikit-image``), or none of a split's photos could be read.
        OSError: ``root`` cannot be written (``EnvironmentProblem`` when OpenCV says so).
    """
    root = Path(root)
    train_dir, val_dir = root / "train", root / "val"
    if _cached(root):
        return train_dir, val_dir
    if root.exists() and not root.is_dir():
        raise UserInputError(f"demo data folder '{root}' is a file; choose a writable folder")
    photo_dir = skimage_photo_dir()
    root.mkdir(parents=True, exist_ok=True)
    (root / _MARKER).unlink(missing_ok=True)
    logger.info("building demo data from scikit-image photos in %s", root)
    counts = {}
    with tempfile.TemporaryDirectory(prefix=".building-", dir=root) as tmp:
        total = len(TRAIN_PHOTOS) + len(VAL_PHOTOS)
        with tqdm(total=total, desc="demo data", unit="photo", disable=not progress) as bar:
            counts["train"] = _write_split(
                photo_dir, TRAIN_PHOTOS, TRAIN_CROPS_PER_PHOTO, Path(tmp) / "train", bar
            )
            counts["val"] = _write_split(
                photo_dir, VAL_PHOTOS, VAL_CROPS_PER_PHOTO, Path(tmp) / "val", bar
            )
        for split, final in (("train", train_dir), ("val", val_dir)):
            if final.exists():  # a stale or partial set from an older or interrupted call
                shutil.rmtree(final)
            os.replace(Path(tmp) / split, final)
    atomic_write(root / _MARKER, json.dumps({"version": DEMO_VERSION, **counts}) + "\n")
    return train_dir, val_dir


def main(argv: list[str] | None = None) -> int:
    """``python -m inpainting.data.demo ROOT``: prepare the demo data and print its folders."""
    parser = OneLineParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="folder to hold train/ and val/")
    args = parser.parse_args(argv)

    def body() -> int:
        train_dir, val_dir = prepare_demo_data(args.root, progress=sys.stderr.isatty())
        print(f"train: {train_dir}\nval: {val_dir}")
        return 0

    return run_main(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
