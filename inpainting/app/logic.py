"""What the app does, as plain functions: read a photo, take the mask from the painted layers,
run the methods. No Gradio here, so every step is testable without a browser.

Images are ``(H, W, 3) uint8``; masks are ``(H, W) bool``, True = known pixel, False = hole.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from inpainting.engine.errors import UserInputError
from inpainting.engine.files import atomic_write
from inpainting.engine.images import ImageDecodeError, image_size, load_image
from inpainting.metrics.baselines import opencv_ns, opencv_telea
from inpainting.predict.inference import Inpainter

__all__ = [
    "MAX_PIXELS",
    "MAX_SIDE",
    "MODEL_METHOD",
    "SAMPLE_PHOTOS",
    "known_from_layers",
    "load_photo",
    "new_request_folder",
    "run_methods",
    "sample_photos",
    "save_png",
]

logger = logging.getLogger(__name__)

MAX_SIDE = 2048  # longer sides are downscaled to this (pixels)
MAX_PIXELS = 50_000_000  # larger files are refused before they are decoded
MODEL_METHOD = "Model"
# Photos bundled with scikit-image (the demo extra): CC0, by Stefan van der Walt and Rachel
# Michetti. chelsea.png is one of the demo run's held-out validation photos.
SAMPLE_PHOTOS = ("chelsea.png", "coffee.png")


def sample_photos() -> list[Path]:
    """The sample photos that are present (none when scikit-image is not installed)."""
    try:
        from inpainting.data.demo import skimage_photo_dir

        folder = skimage_photo_dir()
    except ModuleNotFoundError:
        return []
    return [folder / name for name in SAMPLE_PHOTOS if (folder / name).is_file()]


def load_photo(path: str | os.PathLike, max_side: int = MAX_SIDE,
               max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, str]:
    """Read an uploaded photo as RGB, downscaled so that its longer side is <= ``max_side``.

    The photo is decoded by the project's one image reader (``load_image``), as ``predict``
    and training read it: upright by its EXIF orientation, 16-bit and float files rescaled,
    transparency over white. So the downloaded mask fits the same photo in ``predict --mask``.

    Args:
        path: the uploaded file (a server-side copy; messages name only its file name).
        max_side: longer sides are downscaled to this (aspect ratio kept).
        max_pixels: files with more pixels than this are refused without decoding them.

    Returns:
        ``(image, note)``: (H, W, 3) uint8, and a sentence for the page ("" when nothing
        changed).

    Raises:
        UserInputError: the file is not a readable image, or it is too large.
    """
    name = Path(path).name
    try:
        width, height = image_size(path)
        if width * height > max_pixels:
            raise UserInputError(
                f"'{name}' is {width}x{height} = {width * height / 1e6:.0f} megapixels; the "
                f"limit is {max_pixels / 1e6:g} megapixels, so downscale it first")
        # decode reduced (JPEG: while decoding) but keep the longer side >= max_side
        reduce_to = -(-max_side * min(width, height) // max(width, height))
        array = load_image(path, reduce_to=reduce_to)
    except ImageDecodeError as error:
        # Pillow's reasons name the server's copy of the upload; the page names the user's file
        reason = " ".join(error.reason.replace(str(path), name).split())
        raise UserInputError(f"cannot read '{name}' as an image ({reason}); upload a PNG, JPEG, "
                             "WebP, BMP or TIFF photo") from None
    if max(width, height) <= max_side:
        return array, ""
    scale = max_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if (array.shape[1], array.shape[0]) != size:  # the reduced decode is still larger
        array = np.asarray(Image.fromarray(array).resize(size, Image.Resampling.LANCZOS)).copy()
    return array, (f"The photo was {width}x{height}; it was downscaled to {size[0]}x{size[1]} "
                   f"(the limit is {max_side} px on the longer side).")


def known_from_layers(layers: Sequence[np.ndarray | None], shape: tuple[int, int]) -> np.ndarray:
    """The known-pixel mask from the editor's paint layers: every painted pixel is a hole.

    Args:
        layers: (h, w, 4) RGBA (or (h, w) alpha-less grey) arrays; a pixel with alpha > 0 (or a
            non-zero value without alpha) in any layer was painted. Layers of another size than
            the photo (a scaled canvas) are resized by nearest neighbour.
        shape: (H, W) of the photo.

    Returns:
        (H, W) bool, True = known, False = hole.

    Raises:
        UserInputError: nothing is painted, or everything is.
    """
    height, width = shape
    painted = np.zeros((height, width), bool)
    for layer in layers:
        if layer is None:
            continue
        layer = np.asarray(layer)
        ink = layer[..., 3] > 0 if layer.ndim == 3 and layer.shape[2] == 4 else (
            layer.reshape(layer.shape[0], layer.shape[1], -1).max(axis=2) > 0)
        if ink.shape != (height, width):
            ink = np.asarray(Image.fromarray(ink).resize((width, height), Image.Resampling.NEAREST))
        painted |= ink
    if not painted.any():
        raise UserInputError("nothing is painted: paint over the part of the photo to fill in "
                             "with the brush, then press Inpaint")
    if painted.all():
        raise UserInputError("the whole photo is painted over: leave some pixels unpainted for "
                             "the methods to fill from (use the eraser or undo)")
    return ~painted


def _baseline(method, image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Run an OpenCV baseline on uint8 arrays."""
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255  # (1, 3, H, W)
    mask = torch.from_numpy(known)[None, None].float()  # (1, 1, H, W), 1 = known
    output = method(tensor, mask)[0].permute(1, 2, 0).numpy()  # (H, W, 3) in [0, 1]
    return np.rint(output * 255).astype(np.uint8)


def run_methods(image: np.ndarray, known: np.ndarray,
                inpainter: Inpainter | None) -> dict[str, np.ndarray]:
    """Fill the holes with the model (when there is one) and the two OpenCV baselines.

    Args:
        image: (H, W, 3) uint8.
        known: (H, W) bool, True = known.
        inpainter: the loaded model, or None for the classical methods only.

    Returns:
        method name -> (H, W, 3) uint8 result, the model first; known pixels are ``image``'s.
    """
    results = {}
    if inpainter is not None:
        results[MODEL_METHOD] = inpainter(image, known)
    results["OpenCV Telea"] = _baseline(opencv_telea, image, known)
    results["OpenCV Navier-Stokes"] = _baseline(opencv_ns, image, known)
    return results


def new_request_folder(workdir: str | os.PathLike, keep_seconds: float = 3600) -> Path:
    """A new folder under ``workdir`` for one request's files, so downloads never collide.

    Folders of earlier requests older than ``keep_seconds`` are removed, so a server that runs
    for days does not fill the disk.
    """
    now = time.time()
    for old in Path(workdir).iterdir():
        if old.is_dir() and now - old.stat().st_mtime > keep_seconds:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=workdir))


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a (H, W, 3) or (H, W) uint8 array as a lossless PNG, atomically; returns the path.

    Raises:
        EnvironmentProblem: the server cannot write the file (a full disk); nothing is left.
    """
    picture = Image.fromarray(image)
    return atomic_write(path, lambda handle: picture.save(handle, format="PNG"))
