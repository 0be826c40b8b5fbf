"""Inpaint images with a trained checkpoint: ``python -m inpainting.predict``.

Usage::

    python -m inpainting.predict --checkpoint RUN/best.pt --image photo.jpg --mask hole.png \
        --out result.png
    python -m inpainting.predict --checkpoint RUN/best.pt --image photos/ --mask masks/ --out out/

``--image``, ``--mask`` and ``--out`` may be folders: masks are paired with images by relative
path without extension (``photos/a/x.jpg`` <-> ``masks/a/x.png``) and results are written as
``out/a/x.png``. Results are always lossless PNG: an ``--out`` ending in ``.png`` is a file, one
ending in another image suffix (``.jpg``, ``.webp``, ...) is refused, anything else is a
folder. A single mask file is applied to every image. Without ``--mask`` each image must
be a PNG with an alpha channel, whose fully transparent pixels (alpha 0) are the holes; with
``--mask``, such pixels are holes too (the union, with a line saying so). Mask files
are white = known by default; ``--polarity hole-white`` reads white = hole. Any image size works
(see :mod:`inpainting.predict.inference`); known pixels are written back unchanged.

With a folder, an image that cannot be used (an undecodable image or mask, no alpha channel, a
mask of another size) is named on stderr and skipped; the others are still inpainted, and the
command ends with a line ``N of M images failed: ...`` and exit code 1.

Exit codes (as every command of the project, ``inpainting.engine.errors``): 0 done; 1 some
images of a folder failed (each named on stderr); 2 bad arguments or input files (one line on
stderr); 3 a
file or folder cannot be read or written, or the disk is full (one line); 130 interrupted; a bug
or a CUDA failure keeps its traceback.

The Python API is :class:`inpainting.predict.inference.Inpainter`, re-exported here.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from inpainting.data import IMAGE_EXTENSIONS, list_images
from inpainting.engine.cli import (
    OneLineParser,
    parse_polarity,
    run_main,
    whole_number,
)
from inpainting.engine.errors import EXIT_FAILED, EXIT_OK, UserInputError, one_line
from inpainting.engine.files import atomic_write, check_output_file
from inpainting.engine.images import load_image_and_alpha
from inpainting.predict.inference import DEFAULT_TILE_OVERLAP, DEFAULT_TILE_SIZE, Inpainter
from masks import load_mask
from masks.io import iter_mask_files

__all__ = ["Inpainter", "main"]

logger = logging.getLogger(__name__)

PROG = "python -m inpainting.predict"

# --out suffixes that name an image file of another format than the PNG written (refused rather
# than silently taken as a folder name).
OTHER_IMAGE_SUFFIXES = tuple(ext for ext in IMAGE_EXTENSIONS if ext != ".png")


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python -m inpainting.predict``."""
    parser = OneLineParser(
        prog=PROG,
        description="Inpaint the holes of images with a trained partial-convolution model.",
        epilog="With a folder, unusable images are named and skipped, and the exit code is 1.",
    )
    parser.add_argument("--checkpoint", required=True, help="checkpoint .pt file of a run")
    parser.add_argument("--image", required=True, help="image file or folder of images")
    parser.add_argument(
        "--mask",
        help="mask file or folder (paired by file name); omit to use the alpha channel of PNGs",
    )
    parser.add_argument(
        "--out", required=True,
        help="output .png file, or folder (results are always lossless PNG)",
    )
    parser.add_argument(
        "--polarity", type=parse_polarity, default="known_white",
        help="mask files: known-white (white = known, default) or hole-white (white = hole)",
    )
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    parser.add_argument("--tile-size", type=whole_number(1), default=DEFAULT_TILE_SIZE,
                        help="inpaint images larger than this in overlapping tiles (pixels)")
    parser.add_argument("--tile-overlap", type=whole_number(0), default=DEFAULT_TILE_OVERLAP,
                        help="overlap of neighbouring tiles (pixels)")
    parser.add_argument("--batch-size", type=whole_number(1), default=4,
                        help="tiles per forward pass")
    return parser


def read_inputs(image_path: Path, mask_path: Path | None,
                polarity: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode one image and its mask (a mask file, or else the image's alpha channel).

    Both go through the project's one image reader, so an EXIF-rotated photo and a mask
    painted on it (in the app, say) are read upright alike. With a mask file, the image's
    fully transparent pixels (alpha 0) are holes too: the holes are the union of both, and a
    line says so.

    Returns:
        ``(rgb, known)``: (H, W, 3) uint8 and bool (H, W), True = known.

    Raises:
        UserInputError: an undecodable file, no mask and no alpha channel, or a mask of
            another size than the image.
    """
    rgb, alpha = load_image_and_alpha(image_path)
    if mask_path is None:
        if alpha is None:
            raise UserInputError(
                f"no --mask given and '{image_path}' has no alpha channel; pass --mask "
                "FILE|DIR (white = known) or a PNG whose transparent pixels are the holes"
            )
        return rgb, alpha > 0
    known = load_mask(mask_path, polarity).astype(bool)
    if known.shape != rgb.shape[:2]:
        raise UserInputError(
            f"mask '{mask_path}' is {known.shape[1]}x{known.shape[0]} but image '{image_path}' "
            f"is {rgb.shape[1]}x{rgb.shape[0]}; use a mask of the image's size"
        )
    transparent = int(np.count_nonzero(alpha == 0)) if alpha is not None else 0
    if transparent:  # their colour is unknown: holes too, beside the mask's
        logger.info("'%s': its %d fully transparent pixels are holes too, with the holes of "
                    "the mask '%s'", image_path, transparent, mask_path)
        known &= alpha > 0
    return rgb, known


def plan_jobs(image: Path, mask: Path | None, out: Path) -> list[tuple[Path, Path | None, Path]]:
    """Pair inputs, masks and outputs: a list of ``(image, mask or None, output)`` paths.

    Raises:
        UserInputError: If a path is missing, ``out`` names a non-PNG image file or is a
            folder named ``*.png``, or a folder of masks lacks one for an image.
    """
    if out.suffix.lower() in OTHER_IMAGE_SUFFIXES:
        raise UserInputError(
            f"--out '{out}': outputs are written as lossless PNG; use a .png file name "
            "or a folder"
        )
    if out.suffix.lower() == ".png":
        check_output_file(out, "--out")  # a folder named x.png is not replaced by a file
    if not image.exists():
        raise UserInputError(f"--image '{image}' does not exist")
    if mask is not None and not mask.exists():
        raise UserInputError(f"--mask '{mask}' does not exist")
    if image.is_file():
        if mask is not None and mask.is_dir():
            found = [p for p in iter_mask_files(mask) if p.stem == image.stem]
            if not found:
                raise UserInputError(f"no mask named '{image.stem}.*' in --mask folder '{mask}'")
            mask = found[0]
        target = out if out.suffix.lower() == ".png" else out / f"{image.stem}.png"
        return [(image, mask, target)]
    if out.suffix.lower() == ".png":
        raise UserInputError(f"--image '{image}' is a folder, so --out must be a folder, not "
                             f"'{out}'")
    images = list_images(image)
    by_name = {}
    if mask is not None and mask.is_dir():
        by_name = {p.relative_to(mask).with_suffix(""): p for p in iter_mask_files(mask)}
    jobs = []
    for path in images:
        relative = path.relative_to(image).with_suffix("")
        paired = mask
        if mask is not None and mask.is_dir():
            paired = by_name.get(relative)
            if paired is None:
                raise UserInputError(f"no mask for image '{path}' in '{mask}' (expected "
                                     f"'{mask / relative}.png'; masks are paired by file "
                                     "name)")
        jobs.append((path, paired, out / relative.with_suffix(".png")))
    return jobs


def run_job(inpainter: Inpainter, job: tuple[Path, Path | None, Path], polarity: str) -> None:
    """Inpaint one image file and write the PNG result."""
    image_path, mask_path, out_path = job
    rgb, known = read_inputs(image_path, mask_path, polarity)
    image = np.asarray(Image.fromarray(rgb).convert("L")) if inpainter.channels == 1 else rgb
    result = inpainter(image, known)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(result)
    atomic_write(out_path, lambda handle: picture.save(handle, format="PNG"))


def inpaint_files(args: argparse.Namespace) -> int:
    """Plan the jobs, load the checkpoint and inpaint every image.

    A single ``--image`` file that cannot be used raises (exit 2). In a folder, an image that
    cannot be used (undecodable, no mask, wrong mask size) is named on stderr and skipped, and
    the others are still written.

    Returns:
        ``EXIT_OK``, or ``EXIT_FAILED`` when some images of a folder failed.

    Raises:
        UserInputError: bad arguments, checkpoint or single input file.
        OSError: a result cannot be written (permissions, full disk): the run stops there.
    """
    mask = Path(args.mask) if args.mask else None
    jobs = plan_jobs(Path(args.image), mask, Path(args.out))
    inpainter = Inpainter.from_checkpoint(
        args.checkpoint, device=args.device, tile_size=args.tile_size,
        tile_overlap=args.tile_overlap, batch_size=args.batch_size,
    )
    if Path(args.image).is_file():
        run_job(inpainter, jobs[0], args.polarity)
        logger.info("wrote %s", jobs[0][2])
        return EXIT_OK
    failed = []
    for job in tqdm(jobs, desc="inpainting", unit="image", disable=len(jobs) < 2):
        try:
            run_job(inpainter, job, args.polarity)
        except (UserInputError, FileNotFoundError) as error:
            # One unusable input must not cost the others; a write error (disk, permissions)
            # would fail every later image too, so it stops the run instead.
            failed.append(job[0])
            message = one_line(error)
            named = f": {message}" if str(job[0]) in message else f" '{job[0]}': {message}"
            tqdm.write(f"{PROG}: skipped{named}", file=sys.stderr)
    logger.info("wrote %d image(s) to %s", len(jobs) - len(failed), args.out)
    if not failed:
        return EXIT_OK
    print(f"{PROG}: error: {len(failed)} of {len(jobs)} images failed: "
          f"{_name_some(failed)}", file=sys.stderr)
    return EXIT_FAILED


def _name_some(paths: list[Path], shown: int = 5) -> str:
    """``'a, b, c'``, or the first ``shown`` paths and ``'and N more'`` for a long list."""
    names = ", ".join(str(path) for path in paths[:shown])
    return names if len(paths) <= shown else f"{names} and {len(paths) - shown} more"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (see the module docstring)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_main(PROG, lambda: inpaint_files(args))


if __name__ == "__main__":
    sys.exit(main())
