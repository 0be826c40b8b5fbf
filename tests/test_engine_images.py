"""One image reader (issue 20, rule 1): every entry point reads a file as the same pixels.

One parametrized test per format and orientation: the expected upright RGB array is built by
hand, and every reader of the project (the loader itself, ``predict``'s inputs, the app's
upload, the classification folders, mask files and the evaluation's size check) must give it.
A second test checks the sources: no module but ``inpainting.engine.images`` opens image files.
"""

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpainting.app.logic import load_photo
from inpainting.data.transforms import center_crop
from inpainting.engine.images import (
    ImageDecodeError,
    image_size,
    load_gray,
    load_image,
    load_image_and_alpha,
    open_image,
)
from inpainting.metrics.evaluation.pairs import MaskRecord, check_mask_sizes
from inpainting.predict.cli import read_inputs
from inpainting.tasks.classification.data import ImageFolderDataset, normalize_image
from masks import load_mask

ROOT = Path(__file__).resolve().parents[1]
WHITE = np.uint8(255)


def blocks(height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8 of four flat colour quadrants: JPEG keeps them within a few levels,
    and any rotation or flip moves them visibly."""
    image = np.zeros((height, width, 3), np.uint8)
    top, left = height // 2, width // 2
    image[:top, :left], image[:top, left:] = (230, 30, 30), (30, 230, 30)
    image[top:, :left], image[top:, left:] = (30, 30, 230), (230, 230, 30)
    return image


def gray3(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[:, :, None], 3, axis=2)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _rgb8(path):
    image = blocks(12, 16)
    Image.fromarray(image).save(path)
    return image


def _rgba(path):
    rgba = np.dstack([blocks(12, 16), np.full((12, 16), 255, np.uint8)])
    rgba[:, 8:, 3] = 0  # the right half fully transparent: white
    rgba[0, 0, 3] = 128  # half transparent: half way to white
    Image.fromarray(rgba, "RGBA").save(path)
    expected = blocks(12, 16)
    expected[:, 8:] = WHITE
    expected[0, 0] = np.rint(np.array([230, 30, 30]) * (128 / 255) + 255 * (127 / 255))
    return expected


def _la(path):
    gray = np.tile(np.arange(0, 160, 10, dtype=np.uint8), (12, 1))
    alpha = np.full((12, 16), 255, np.uint8)
    alpha[6:] = 0
    Image.fromarray(np.dstack([gray, alpha]), "LA").save(path)
    expected = gray3(gray)
    expected[6:] = WHITE
    return expected


def _palette(path):
    index = np.tile(np.arange(16, dtype=np.uint8), (12, 1))
    image = Image.fromarray(index, "P")
    image.putpalette([value for i in range(256) for value in (i, 255 - i, 7 * i % 256)])
    image.save(path)
    return np.stack([index, 255 - index, 7 * index.astype(int) % 256], -1).astype(np.uint8)


def _gray16(path):
    values = np.tile(np.array([0, 257 * 128, 40000, 65535], np.uint16), (12, 4))
    Image.fromarray(values).save(path)  # Pillow's own convert("L") would clip 40000 to 255
    return gray3(np.rint(values / 65535 * 255).astype(np.uint8))


def _float_tiff(path):
    values = np.tile(np.linspace(0.0, 1.0, 16, dtype=np.float32), (12, 1))
    Image.fromarray(values, "F").save(path)  # [0, 1]: a plain cast to 8 bits is black
    return gray3(np.rint(values.astype(np.float64) * 255).astype(np.uint8))


def _exif_jpeg(orientation: int, turns: int):
    def write(path):
        stored = blocks(16, 24)  # stored 24 wide, 16 high; displayed 16 wide, 24 high
        Image.fromarray(stored).save(path, exif=_exif(orientation), quality=100, subsampling=0)
        return np.rot90(stored, turns).copy()

    return write


def _exif_png(path):
    stored = blocks(12, 16)
    Image.fromarray(stored).save(path, exif=_exif(6))  # a phone photo saved as PNG
    return np.rot90(stored, -1).copy()


# name -> (file name, writer returning the expected upright RGB, largest error allowed)
CASES = {
    "rgb8_png": ("rgb8.png", _rgb8, 0),
    "rgba_png": ("rgba.png", _rgba, 0),
    "la_png": ("la.png", _la, 0),
    "palette_png": ("palette.png", _palette, 0),
    "gray16_png": ("gray16.png", _gray16, 0),
    "float32_tiff": ("float32.tif", _float_tiff, 0),
    "exif6_jpeg": ("exif6.jpg", _exif_jpeg(6, -1), 12),  # "rotate 90 clockwise to display"
    "exif8_jpeg": ("exif8.jpg", _exif_jpeg(8, 1), 12),  # "rotate 90 counter-clockwise"
    "exif6_png": ("exif6.png", _exif_png, 0),
}


def _close(actual: np.ndarray, expected: np.ndarray, tolerance: int) -> bool:
    if actual.shape != expected.shape:
        return False
    return int(np.abs(actual.astype(int) - expected.astype(int)).max()) <= tolerance


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_reader_gives_the_same_upright_pixels(case, tmp_path):
    filename, write, tolerance = CASES[case]
    folder = tmp_path / "class_a"
    folder.mkdir()
    path = folder / filename
    expected = write(path)
    height, width = expected.shape[:2]
    white_mask = tmp_path / "known.png"
    Image.fromarray(np.full((height, width), 255, np.uint8)).save(white_mask)
    luma = np.asarray(Image.fromarray(expected).convert("L"))

    readers = {
        "load_image": load_image(path),
        "load_image_and_alpha": load_image_and_alpha(path)[0],
        "app upload": load_photo(path)[0],
        "predict --image --mask": read_inputs(path, white_mask, "known_white")[0],
    }
    for reader, actual in readers.items():
        assert _close(actual, expected, tolerance), reader
    assert image_size(path) == open_image(path).size == (width, height)
    assert _close(load_gray(path), luma, tolerance + 1)
    assert load_mask(path).shape == (height, width)  # a mask painted on the upright photo
    check_mask_sizes([MaskRecord(path, filename)], height, width)  # evaluate's header check
    side = min(height, width)
    sample = ImageFolderDataset(tmp_path, train=False, crop_size=side, resize_size=side)[0]
    reference = normalize_image(center_crop(expected, side))
    assert (sample["image"] - reference).abs().max() <= tolerance / 255 / 0.224 + 1e-4


def test_alpha_is_returned_beside_the_composite_and_none_without_it(tmp_path):
    _rgba(tmp_path / "rgba.png")
    _rgb8(tmp_path / "rgb.png")
    _, alpha = load_image_and_alpha(tmp_path / "rgba.png")
    assert alpha.shape == (12, 16) and alpha[:, 8:].max() == 0 and alpha[1, 0] == 255
    assert load_image_and_alpha(tmp_path / "rgb.png")[1] is None


def test_a_broken_file_is_a_decode_error_naming_it_in_every_reader(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    for reader in (load_image, load_gray, load_image_and_alpha, image_size, load_mask):
        with pytest.raises(ImageDecodeError, match="broken.png"):
            reader(broken)


# Opening an image file anywhere else would be a second decoder with its own idea of
# orientation, bit depth and transparency.
OPENERS = re.compile(r"Image\.open\(|cv2\.imread|cv2\.imdecode|exif_transpose|"
                     r"torchvision\.io|imageio|skimage\.io")


def test_no_module_but_the_one_reader_opens_image_files():
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    sources = [name for name in files if not name.startswith(("tests/", "benchmarks/"))]
    opening = sorted(name for name in sources
                     if OPENERS.search((ROOT / name).read_text(encoding="utf-8")))
    assert opening == ["inpainting/engine/images.py"]
