"""Tests for inpainting.data.io and .file_lists: decoding odd files, listing folders, file lists,
splits."""

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from inpainting.data import (
    ImageDecodeError,
    list_images,
    load_image,
    read_file_list,
    split_paths,
    write_file_list,
)
from inpainting.engine.errors import UserInputError

RED, BLUE = (255, 0, 0), (0, 0, 255)


def gradient_rgb(height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8 image whose every pixel differs from its neighbours."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([rows * 7 % 256, cols * 5 % 256, (rows + cols) * 3 % 256], -1).astype(
        np.uint8
    )


def write_image_zoo(folder: Path) -> dict[str, Path]:
    """Write one file per awkward case into ``folder``; returns name -> path.

    Good files: rgb, gray, rgba, palette, palette_alpha, gray16_png, gray16_tif, rgb16_png,
    cmyk, exif, tiny (10 wide, 7 high), upper (".PNG"), webp, bmp, nested tiff.
    Bad files: corrupt (random bytes), truncated (half a PNG).
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sub" / "deeper").mkdir(parents=True, exist_ok=True)
    paths = {}

    def put(name: str, filename: str, image: Image.Image, **kwargs) -> None:
        paths[name] = folder / filename
        image.save(paths[name], **kwargs)

    put("rgb", "rgb.jpg", Image.fromarray(gradient_rgb(30, 40)), quality=95)
    put("gray", "gray.png", Image.fromarray(np.full((20, 24), 77, np.uint8), "L"))
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :8, 3] = 255  # left half opaque red, right half fully transparent
    put("rgba", "rgba.png", Image.fromarray(rgba, "RGBA"))
    palette = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8), "L").convert("P")
    put("palette", "palette.png", palette)
    palette_alpha = Image.fromarray(np.zeros((8, 8, 3), np.uint8)).convert("P")
    put("palette_alpha", "palette_alpha.png", palette_alpha, transparency=0)
    gray16 = np.array([[0, 257 * 128, 40000, 65535]] * 4, np.uint16)
    put("gray16_png", "gray16.png", Image.fromarray(gray16))
    put("gray16_tif", "sub/gray16.tif", Image.fromarray(gray16))
    rgb16 = np.zeros((4, 4, 3), np.uint16)
    rgb16[..., 0] = 40000  # red channel; written by OpenCV in BGR order
    paths["rgb16_png"] = folder / "rgb16.png"
    cv2.imwrite(str(paths["rgb16_png"]), rgb16[..., ::-1])
    put("cmyk", "cmyk.jpg", Image.new("CMYK", (12, 10), (0, 255, 255, 0)), quality=95)
    stored = np.zeros((10, 20, 3), np.uint8)
    stored[:, :10], stored[:, 10:] = RED, BLUE
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    put("exif", "exif.jpg", Image.fromarray(stored), exif=exif, quality=95)
    put("tiny", "tiny.png", Image.fromarray(gradient_rgb(7, 10)))
    put("upper", "UPPER.PNG", Image.fromarray(gradient_rgb(12, 12)))
    put("webp", "sub/deeper/photo.webp", Image.fromarray(gradient_rgb(12, 12)), lossless=True)
    put("bmp", "sub/photo.bmp", Image.fromarray(gradient_rgb(12, 12)))
    put("tiff", "sub/deeper/photo.tiff", Image.fromarray(gradient_rgb(12, 12)))
    paths["corrupt"] = folder / "corrupt.jpg"
    paths["corrupt"].write_bytes(np.random.default_rng(0).bytes(500))
    whole = folder / "whole.png"
    Image.fromarray(gradient_rgb(64, 64)).save(whole)
    paths["truncated"] = folder / "truncated.png"
    paths["truncated"].write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    whole.unlink()
    (folder / "notes.txt").write_text("not an image")
    (folder / "._hidden.jpg").write_bytes(b"macOS resource fork")
    return paths


GOOD = [
    "rgb", "gray", "rgba", "palette", "palette_alpha", "gray16_png", "gray16_tif", "rgb16_png",
    "cmyk", "exif", "tiny", "upper", "webp", "bmp", "tiff",
]


@pytest.fixture
def zoo(tmp_path: Path) -> dict[str, Path]:
    return write_image_zoo(tmp_path / "images")


@pytest.mark.parametrize("name", GOOD)
def test_every_good_file_loads_as_uint8_rgb(zoo, name):
    image = load_image(zoo[name])
    assert image.dtype == np.uint8
    assert image.ndim == 3 and image.shape[2] == 3
    assert image.flags["C_CONTIGUOUS"]


def test_grayscale_is_repeated_over_channels(zoo):
    image = load_image(zoo["gray"])
    assert image.shape == (20, 24, 3)
    assert np.all(image == 77)


def test_sixteen_bit_gray_is_rescaled_not_clipped(zoo):
    expected = [0, 128, round(40000 * 255 / 65535), 255]  # clipping would give 255 for 40000
    for name in ("gray16_png", "gray16_tif"):
        image = load_image(zoo[name])
        assert image.shape == (4, 4, 3)
        assert image[0, :, 0].tolist() == expected, name
        assert np.all(image[..., 0] == image[..., 2])


def test_sixteen_bit_rgb_keeps_its_channels(zoo):
    image = load_image(zoo["rgb16_png"])
    assert abs(int(image[0, 0, 0]) - round(40000 / 257)) <= 1
    assert image[0, 0, 1] == 0 and image[0, 0, 2] == 0


def test_alpha_is_composited_over_white(zoo):
    image = load_image(zoo["rgba"])
    assert image[0, 0].tolist() == [200, 0, 0]  # opaque: its own colour
    assert image[0, 15].tolist() == [255, 255, 255]  # transparent: the background


def test_palette_images_are_expanded(zoo):
    palette = load_image(zoo["palette"])
    assert palette.shape == (8, 8, 3)
    assert palette[0, 5].tolist() == [5, 5, 5]
    transparent = load_image(zoo["palette_alpha"])
    assert np.all(transparent == 255)  # the transparent index becomes the white background


def test_cmyk_becomes_rgb(zoo):
    image = load_image(zoo["cmyk"])
    assert image.shape == (10, 12, 3)
    red, green, blue = image[5, 6].astype(int)
    assert red > 200 and green < 60 and blue < 60


def test_exif_orientation_is_applied(zoo):
    image = load_image(zoo["exif"]).astype(int)
    assert image.shape == (20, 10, 3)  # stored 20 wide x 10 high, displayed rotated
    top, bottom = image[2, 5], image[17, 5]
    assert top[0] > 200 and top[2] < 60  # the stored left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_tiny_image_keeps_its_size(zoo):
    assert load_image(zoo["tiny"]).shape == (7, 10, 3)


@pytest.mark.parametrize("name", ["corrupt", "truncated"])
def test_bad_files_raise_decode_error_naming_the_file(zoo, name):
    with pytest.raises(ImageDecodeError, match="cannot decode image") as caught:
        load_image(zoo[name])
    assert caught.value.path == zoo[name]
    assert zoo[name].name in str(caught.value)


def test_missing_file_is_a_decode_error(tmp_path):
    with pytest.raises(ImageDecodeError, match="nope.png"):
        load_image(tmp_path / "nope.png")


def test_list_images_is_recursive_sorted_and_filters_names(zoo, tmp_path):
    found = list_images(tmp_path / "images")
    names = {p.name for p in found}
    assert found == sorted(found)
    assert {"UPPER.PNG", "photo.webp", "photo.bmp", "photo.tiff", "gray16.tif"} <= names
    assert "notes.txt" not in names and "._hidden.jpg" not in names
    assert len(found) == len(GOOD) + 2  # the good files plus the two bad ones


def test_list_images_follows_folder_symlinks_without_looping(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    Image.fromarray(gradient_rgb(8, 8)).save(real / "a.png")
    (real / "loop").symlink_to(real)  # a cycle must not hang or duplicate
    root = tmp_path / "root"
    root.mkdir()
    (root / "linked").symlink_to(real)
    assert [p.name for p in list_images(root)] == ["a.png"]


def test_list_images_skips_looping_and_dangling_symlinks_naming_them(tmp_path, caplog):
    root = tmp_path / "images"
    root.mkdir()
    Image.fromarray(gradient_rgb(8, 8)).save(root / "a.png")
    (root / "loop.png").symlink_to("loop.png")  # a self-referencing link
    (root / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    (root / "alias.png").symlink_to("a.png")  # a working link is an image like any other
    with caplog.at_level(logging.WARNING, logger="inpainting.data.io"):
        found = list_images(root)
    assert [p.name for p in found] == ["a.png", "alias.png"]
    assert "loop.png" in caplog.text and "gone.jpg" in caplog.text
    assert len(caplog.records) == 2 and "alias.png" not in caplog.text
    with pytest.raises(ImageDecodeError, match="loop.png"):  # read directly: a decode error
        load_image(root / "loop.png")


def test_a_folder_of_looping_symlinks_only_has_no_images(tmp_path):
    (tmp_path / "loop.png").symlink_to("loop.png")
    with pytest.raises(UserInputError, match="no images found"):
        list_images(tmp_path)


def test_write_file_list_keeps_symlinks_and_survives_a_loop(tmp_path):
    """A listed symlink is written as the link, and a looping one does not crash the writer."""
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(gradient_rgb(8, 8)).save(folder / "a.png")
    (folder / "alias.png").symlink_to("a.png")
    (folder / "loop.png").symlink_to("loop.png")
    paths = [folder / "a.png", folder / "alias.png", folder / "loop.png"]
    write_file_list(paths, tmp_path / "splits" / "val.txt")
    assert read_file_list(tmp_path / "splits" / "val.txt", tmp_path / "splits") == [
        tmp_path / "splits" / ".." / "images" / name for name in ("a.png", "alias.png", "loop.png")
    ]


def test_list_images_errors_name_the_folder(tmp_path):
    with pytest.raises(ValueError, match=r"'.*missing' does not exist"):
        list_images(tmp_path / "missing")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no images found under '.*empty'"):
        list_images(tmp_path / "empty")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(ValueError, match="is not a folder"):
        list_images(tmp_path / "file.png")


def test_read_file_list_places2_format(tmp_path):
    root = tmp_path / "places"
    (root / "a" / "abbey").mkdir(parents=True)
    for name in ("0001.jpg", "0002.jpg"):
        (root / "a" / "abbey" / name).write_bytes(b"")
    list_file = tmp_path / "train.txt"
    list_file.write_text(
        "# comment line\n/a/abbey/0001.jpg 0\n\n   \na/abbey/0002.jpg\t12 extra\n"
    )
    assert read_file_list(list_file, root) == [
        root / "a" / "abbey" / "0001.jpg",
        root / "a" / "abbey" / "0002.jpg",
    ]


def test_read_file_list_errors(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(UserInputError, match=r"file list '.*absent.txt' does not exist"):
        read_file_list(tmp_path / "absent.txt", root)
    list_file = tmp_path / "list.txt"
    list_file.write_text("# only a comment\n\n")
    with pytest.raises(UserInputError, match="lists no images"):
        read_file_list(list_file, root)
    with pytest.raises(UserInputError, match=r"image root '.*elsewhere'"):
        read_file_list(list_file, tmp_path / "elsewhere")
    list_file.write_text("x/missing.jpg\n")
    with pytest.raises(UserInputError, match=r"first entry .* does not exist"):
        read_file_list(list_file, root)
    list_file.write_bytes(b"\xff\xfe binary, not a list\n")
    with pytest.raises(UserInputError, match=r"file list '.*list.txt' is not UTF-8 text"):
        read_file_list(list_file, root)


AWKWARD_NAMES = [
    "a.png b.png", "a.png\tb.png", "new\nline.png", "carriage\rreturn.png", "#hash.png",
    "# spaced.png", " leading space.png", "trailing space.png ", "tab\tinside.png",
    '"quoted".png', '"a" b.png', 'back\\slash".png', "\u00e9t\u00e9 \u65e5\u672c.png",
    "line\u2028separator.png", "next\x85line.png", "wide\u3000space.jpg", "\ufeffbom.png",
    "no_extension", "two words", "x.JPG 0", "\udcff\udcfe undecodable bytes.png", "plain.png",
]


def _random_names(count: int, seed: int) -> list[str]:
    """File names built from the characters that file lists find hard."""
    rng = np.random.default_rng(seed)
    alphabet = list("ab.# \t\n\r\"\\'0") + ["\u00e9", "\u2028", "\x85", "\u3000", "\x0b"]
    names = set()
    while len(names) < count:
        stem = "".join(rng.choice(alphabet, size=int(rng.integers(1, 9))))
        ext = str(rng.choice([".png", ".jpg", ".PNG", ".png .jpg", ""]))
        name = stem + ext + str(rng.choice(["", " ", " 3", "\t"]))
        if name not in (".", "..") and not name.startswith("."):
            names.add(name)
    return sorted(names)


@pytest.mark.parametrize("names", [AWKWARD_NAMES, _random_names(60, seed=0)],
                         ids=["awkward", "random"])
def test_write_file_list_reads_back_exactly_for_any_name(tmp_path, names):
    folder = tmp_path / "images"
    (folder / "sub dir").mkdir(parents=True)
    paths = [folder / name for name in names] + [folder / "sub dir" / "#x y.png 1"]
    for path in paths:
        path.write_bytes(b"")
    list_file = tmp_path / "run" / "splits" / "val.txt"
    write_file_list(paths, list_file)
    read = read_file_list(list_file, list_file.parent)
    assert [p.resolve() for p in read] == [p.resolve() for p in paths]
    assert [p.name for p in read] == [p.name for p in paths]


def test_write_file_list_keeps_plain_names_plain(tmp_path):
    """Names that read back as they are stay readable (and greppable) as they are."""
    folder = tmp_path / "images"
    folder.mkdir()
    names = ["plain.png", "with space.jpg", "\u00e9t\u00e9.png", "a.png b.png", "#x.png"]
    for name in names:
        (folder / name).write_bytes(b"")
    write_file_list([folder / name for name in names], folder / "list.txt")
    assert (folder / "list.txt").read_text(encoding="utf-8").splitlines() == [
        "plain.png", "with space.jpg", "\u00e9t\u00e9.png", '"a.png b.png"', '"#x.png"',
    ]


def test_places2_and_plain_lists_read_as_before(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    for name in ("a b.jpg", "c.png", "noext", "x.jpg"):
        (root / name).write_bytes(b"")
    list_file = tmp_path / "list.txt"
    list_file.write_text("/a b.jpg 17\nc.png\t3\nnoext extra\n  x.jpg  \n")
    assert read_file_list(list_file, root) == [root / n for n in ("a b.jpg", "c.png", "noext",
                                                                  "x.jpg")]
    list_file.write_text('"c.png" 5\n"not json.png\n')  # a quoted path may carry a label too
    assert read_file_list(list_file, root) == [root / "c.png", root / '"not json.png']


def test_split_is_seeded_disjoint_and_order_independent():
    paths = [Path(f"img_{i:03d}.png") for i in range(50)]
    train, val = split_paths(paths, 0.2, seed=3)
    assert len(val) == 10 and len(train) == 40
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(paths)
    assert split_paths(list(reversed(paths)), 0.2, seed=3) == (train, val)
    assert split_paths(paths, 0.2, seed=4)[1] != val


def test_split_keeps_both_sides_non_empty_and_checks_arguments():
    two = [Path("a.png"), Path("b.png")]
    assert [len(part) for part in split_paths(two, 0.01, seed=0)] == [1, 1]
    assert [len(part) for part in split_paths(two, 0.99, seed=0)] == [1, 1]
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\)"):
        split_paths(two, 1.0, seed=0)
    with pytest.raises(ValueError, match="need >= 2"):
        split_paths(two[:1], 0.5, seed=0)
