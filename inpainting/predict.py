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
be a PNG with an alpha channel, whose fully transparent pixels (alpha 0) are the holes. Mask files
are white = known by default; ``--polarity hole-white`` reads white = hole. Any image size works
(see :mod:`inpainting.inference`); known pixels are written back unchanged.

The Python API is :class:`inpainting.inference.Inpainter`, re-exported here.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from inpainting.data import IMAGE_EXTENSIONS, list_images, load_image
from inpainting.inference import DEFAULT_TILE_OVERLAP, DEFAULT_TILE_SIZE, Inpainter
from masks import load_mask
from masks.io import iter_mask_files

__all__ = ["Inpainter", "OneLineParser", "UsageError", "fail", "main", "parse_polarity"]

logger = logging.getLogger(__name__)

# --out suffixes that name an image file of another format than the PNG written (refused rather
# than silently taken as a folder name).
OTHER_IMAGE_SUFFIXES = tuple(ext for ext in IMAGE_EXTENSIONS if ext != ".png")


class UsageError(Exception):
    """Bad command-line input; the message is printed as one line and the exit code is 2."""


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (no usage block), exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def fail(error: BaseException) -> int:
    """Print ``error`` as one ``error: ...`` line on stderr and return exit code 2."""
    print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
    return 2


def parse_polarity(text: str) -> str:
    """Map ``known-white``/``hole-white`` (or the underscore spelling) to the ``masks`` name.

    Raises:
        argparse.ArgumentTypeError: For any other value.
    """
    value = text.strip().lower().replace("-", "_")
    if value not in ("known_white", "hole_white"):
        raise argparse.ArgumentTypeError(
            f"unknown polarity {text!r} (valid: known-white, hole-white)"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python -m inpainting.predict``."""
    parser = OneLineParser(
        prog="python -m inpainting.predict",
        description="Inpaint the holes of images with a trained partial-convolution model.",
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
    parser.add_argument("--tile-size", type=int, default=DEFAULT_TILE_SIZE,
                        help="inpaint images larger than this in overlapping tiles (pixels)")
    parser.add_argument("--tile-overlap", type=int, default=DEFAULT_TILE_OVERLAP,
                        help="overlap of neighbouring tiles (pixels)")
    parser.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass")
    return parser


def alpha_mask(path: Path) -> np.ndarray:
    """Known-pixel mask from the alpha channel of an image file (alpha 0 = hole).

    Raises:
        UsageError: If the file has no alpha channel.
    """
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened)
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        if not has_alpha:
            raise UsageError(
                f"no --mask given and '{path}' has no alpha channel; pass --mask FILE|DIR "
                "(white = known) or a PNG whose transparent pixels are the holes"
            )
        return np.asarray(image.convert("RGBA"))[:, :, 3] > 0


def plan_jobs(image: Path, mask: Path | None, out: Path) -> list[tuple[Path, Path | None, Path]]:
    """Pair inputs, masks and outputs: a list of ``(image, mask or None, output)`` paths.

    Raises:
        UsageError: If a path is missing, ``out`` names a non-PNG image file, or a folder of
            masks lacks one for an image.
    """
    if out.suffix.lower() in OTHER_IMAGE_SUFFIXES:
        raise UsageError(
            f"--out '{out}': outputs are written as lossless PNG; use a .png file name "
            "or a folder"
        )
    if not image.exists():
        raise UsageError(f"--image '{image}' does not exist")
    if mask is not None and not mask.exists():
        raise UsageError(f"--mask '{mask}' does not exist")
    if image.is_file():
        if mask is not None and mask.is_dir():
            found = [p for p in iter_mask_files(mask) if p.stem == image.stem]
            if not found:
                raise UsageError(f"no mask named '{image.stem}.*' in --mask folder '{mask}'")
            mask = found[0]
        target = out if out.suffix.lower() == ".png" else out / f"{image.stem}.png"
        return [(image, mask, target)]
    if out.suffix.lower() == ".png":
        raise UsageError(f"--image '{image}' is a folder, so --out must be a folder, not '{out}'")
    try:
        images = list_images(image)
    except ValueError as error:
        raise UsageError(str(error)) from error
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
                raise UsageError(f"no mask for image '{path}' in '{mask}' (expected "
                                 f"'{mask / relative}.png'; masks are paired by file name)")
        jobs.append((path, paired, out / relative.with_suffix(".png")))
    return jobs


def run_job(inpainter: Inpainter, job: tuple[Path, Path | None, Path], polarity: str) -> None:
    """Inpaint one image file and write the PNG result."""
    image_path, mask_path, out_path = job
    rgb = load_image(image_path)
    if mask_path is None:
        known = alpha_mask(image_path)
    else:
        known = load_mask(mask_path, polarity).astype(bool)
    if known.shape != rgb.shape[:2]:
        raise UsageError(
            f"mask '{mask_path}' is {known.shape[1]}x{known.shape[0]} but image '{image_path}' "
            f"is {rgb.shape[1]}x{rgb.shape[0]}; use a mask of the image's size"
        )
    image = np.asarray(Image.fromarray(rgb).convert("L")) if inpainter.channels == 1 else rgb
    result = inpainter(image, known)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(result).save(out_path, format="PNG")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 success, 2 bad input)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        mask = Path(args.mask) if args.mask else None
        jobs = plan_jobs(Path(args.image), mask, Path(args.out))
        inpainter = Inpainter.from_checkpoint(
            args.checkpoint, device=args.device, tile_size=args.tile_size,
            tile_overlap=args.tile_overlap, batch_size=args.batch_size,
        )
        for job in tqdm(jobs, desc="inpainting", unit="image", disable=len(jobs) < 2):
            run_job(inpainter, job, args.polarity)
    except (UsageError, ValueError, OSError) as error:
        return fail(error)
    logger.info("wrote %d image(s) to %s", len(jobs), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
