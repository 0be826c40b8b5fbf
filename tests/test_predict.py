"""Inference: any image size, tiling, exact known pixels, the Python API and the CLI."""

import errno
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpainting.engine.errors import UserInputError
from inpainting.models import PConvUNet
from inpainting.predict.cli import main
from inpainting.predict.inference import Inpainter, reflect_pad, tile_starts, to_known_mask

ROOT = Path(__file__).resolve().parents[1]


def _tiny_model(in_channels: int = 3) -> PConvUNet:
    return PConvUNet(depth=3, base_channels=8, in_channels=in_channels)


def _checkpoint(path: Path, in_channels: int = 3) -> Path:
    model = _tiny_model(in_channels)
    config = {"model": {"name": "pconv_unet", "depth": 3, "base_channels": 8,
                        "in_channels": in_channels}, "data": {"image_size": 32}}
    torch.save({"model": model.state_dict(), "config": config, "step": 0, "version": 1}, path)
    return path


def _image_and_mask(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = np.ones((height, width), np.uint8)
    mask[height // 5 : height // 2, width // 4 : 3 * width // 4] = 0
    mask[-7:, :9] = 0  # a hole touching the corner, where padding happens
    return image, mask


def _check_known_kept(result: np.ndarray, image: np.ndarray, mask: np.ndarray) -> None:
    assert result.shape == image.shape and result.dtype == np.uint8
    np.testing.assert_array_equal(result[mask == 1], image[mask == 1])
    # the holes hold the model's output, not the input's hidden pixels
    assert np.mean(result[mask == 0] != image[mask == 0]) > 0.9


def test_odd_size_image_keeps_size_and_known_pixels():
    image, mask = _image_and_mask(300, 451)
    result = Inpainter(_tiny_model(), device="cpu")(image, mask)
    _check_known_kept(result, image, mask)


def test_tiling_keeps_size_and_known_pixels_and_changes_only_holes():
    image, mask = _image_and_mask(90, 131, seed=1)
    model = _tiny_model()
    tiled = Inpainter(model, device="cpu", tile_size=48, tile_overlap=12, batch_size=3)
    result = tiled(image, mask)
    _check_known_kept(result, image, mask)
    whole = Inpainter(model, device="cpu")(image, mask)
    assert np.any(whole != result)  # really went through the tiled path


def test_tile_starts_cover_with_overlap():
    for length, tile, overlap in [(451, 128, 32), (1000, 256, 64), (129, 128, 0), (64, 128, 16)]:
        starts = tile_starts(length, tile, overlap)
        assert starts[0] == 0 and min(length, starts[-1] + tile) == length
        gaps = np.diff(starts)
        assert np.all(gaps > 0) and np.all(tile - gaps >= overlap)


def test_reflect_pad_multiple_and_content():
    for shape in [(1, 3, 5, 7), (2, 1, 1, 3), (1, 3, 16, 16), (1, 2, 30, 3)]:
        x = torch.rand(shape)
        padded = reflect_pad(x, 16)
        assert padded.shape[-2] % 16 == 0 and padded.shape[-1] % 16 == 0
        assert padded.shape[-2] - shape[-2] < 16 and padded.shape[-1] - shape[-1] < 16
        torch.testing.assert_close(padded[..., : shape[-2], : shape[-1]], x)


def test_pil_in_pil_out_and_mask_encodings_agree():
    image, mask = _image_and_mask(40, 57)
    inpainter = Inpainter(_tiny_model(), device="cpu")
    result = inpainter(Image.fromarray(image), Image.fromarray(mask * 255))
    assert isinstance(result, Image.Image) and result.size == (57, 40) and result.mode == "RGB"
    from_01 = inpainter(image, mask)
    np.testing.assert_array_equal(np.asarray(result), from_01)
    np.testing.assert_array_equal(inpainter(image, mask.astype(bool)), from_01)


def test_to_known_mask_conventions():
    assert to_known_mask(np.array([[0, 1]], np.uint8)).tolist() == [[False, True]]
    assert to_known_mask(np.array([[0, 255]], np.uint8)).tolist() == [[False, True]]
    assert to_known_mask(np.array([[0.2, 0.9]])).tolist() == [[False, True]]
    with pytest.raises(ValueError, match="mask must be"):
        to_known_mask(np.zeros((4, 4, 3), np.uint8))


def test_grayscale_model_returns_grayscale():
    image, mask = _image_and_mask(33, 45)
    gray = image[:, :, 0]
    result = Inpainter(_tiny_model(in_channels=1), device="cpu")(gray, mask)
    assert result.shape == gray.shape
    np.testing.assert_array_equal(result[mask == 1], gray[mask == 1])


def test_bad_inputs_raise_clear_errors():
    inpainter = Inpainter(_tiny_model(), device="cpu")
    image, mask = _image_and_mask(20, 30)
    with pytest.raises(ValueError, match="same size"):
        inpainter(image, mask[:10])
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        inpainter(image.astype(np.float32), mask)
    with pytest.raises(ValueError, match="tile_overlap"):
        Inpainter(_tiny_model(), tile_size=32, tile_overlap=32)


def test_from_checkpoint_matches_model(tmp_path):
    checkpoint = _checkpoint(tmp_path / "tiny.pt")
    inpainter = Inpainter.from_checkpoint(checkpoint, device="cpu")
    reference = _tiny_model()
    reference.load_state_dict(torch.load(checkpoint, weights_only=True)["model"])
    image, mask = _image_and_mask(32, 40)
    expected = Inpainter(reference, device="cpu")(image, mask)
    np.testing.assert_array_equal(inpainter(image, mask), expected)


def test_cli_subprocess_writes_png_of_same_size(tmp_path):
    checkpoint = _checkpoint(tmp_path / "tiny.pt")
    image, mask = _image_and_mask(300, 451)
    Image.fromarray(image).save(tmp_path / "photo.png")
    Image.fromarray(mask * 255).save(tmp_path / "hole.png")
    out = tmp_path / "result.png"
    command = [sys.executable, "-m", "inpainting.predict", "--checkpoint", str(checkpoint),
               "--image", str(tmp_path / "photo.png"), "--mask", str(tmp_path / "hole.png"),
               "--out", str(out), "--device", "cpu", "--tile-size", "256"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    _check_known_kept(np.asarray(Image.open(out)), image, mask)


def test_cli_folders_polarity_and_alpha(tmp_path):
    checkpoint = _checkpoint(tmp_path / "tiny.pt")
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "masks" / "sub").mkdir(parents=True)
    pairs = {}
    for name, size in [("a", (37, 50)), ("sub/b", (64, 41))]:
        image, mask = _image_and_mask(*size)
        Image.fromarray(image).save(tmp_path / "in" / f"{name}.jpg", quality=95)
        Image.fromarray((1 - mask) * 255).save(tmp_path / "masks" / f"{name}.png")  # hole-white
        pairs[name] = mask
    code = main(["--checkpoint", str(checkpoint), "--image", str(tmp_path / "in"), "--mask",
                 str(tmp_path / "masks"), "--out", str(tmp_path / "out"), "--device", "cpu",
                 "--polarity", "hole-white"])
    assert code == 0
    for name, mask in pairs.items():
        source = np.asarray(Image.open(tmp_path / "in" / f"{name}.jpg").convert("RGB"))
        _check_known_kept(np.asarray(Image.open(tmp_path / "out" / f"{name}.png")), source, mask)
    image, mask = _image_and_mask(30, 30)
    Image.fromarray(np.dstack([image, mask * 255])).save(tmp_path / "alpha.png")
    assert main(["--checkpoint", str(checkpoint), "--image", str(tmp_path / "alpha.png"),
                 "--out", str(tmp_path / "alpha_out.png"), "--device", "cpu"]) == 0
    _check_known_kept(np.asarray(Image.open(tmp_path / "alpha_out.png")), image, mask)


def test_cli_errors_are_one_line(tmp_path, capsys):
    checkpoint = _checkpoint(tmp_path / "tiny.pt")
    image, mask = _image_and_mask(20, 30)
    Image.fromarray(image).save(tmp_path / "x.png")
    Image.fromarray(mask[:10] * 255).save(tmp_path / "small.png")
    (tmp_path / "in").mkdir()
    Image.fromarray(image).save(tmp_path / "in" / "y.png")
    (tmp_path / "masks").mkdir()
    (tmp_path / "notes.pt").write_text("not a checkpoint\n")
    cases = {
        "does not exist": ["--checkpoint", str(tmp_path / "missing.pt"), "--image",
                           str(tmp_path / "x.png"), "--mask", str(tmp_path / "small.png")],
        "cannot read checkpoint": ["--checkpoint", str(tmp_path / "notes.pt"), "--image",
                                   str(tmp_path / "x.png"), "--mask", str(tmp_path / "x.png")],
        "no alpha channel": ["--checkpoint", str(checkpoint), "--image", str(tmp_path / "x.png")],
        "image's size": ["--checkpoint", str(checkpoint), "--image", str(tmp_path / "x.png"),
                      "--mask", str(tmp_path / "small.png")],
        "no mask for image": ["--checkpoint", str(checkpoint), "--image", str(tmp_path / "in"),
                              "--mask", str(tmp_path / "masks")],
    }
    for expected, argv in cases.items():
        code = main([*argv, "--out", str(tmp_path / "out"), "--device", "cpu"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and expected in err and len(err.splitlines()) == 1, (expected, err)
    Image.fromarray(mask * 255).save(tmp_path / "hole.png")
    for name in ["result.jpg", "result.JPEG", "result.webp", "result.bmp", "result.tif",
                 "result.tiff"]:  # no folder named like an image, nothing but PNG written
        code = main(["--checkpoint", str(checkpoint), "--image", str(tmp_path / "x.png"),
                     "--mask", str(tmp_path / "hole.png"), "--out", str(tmp_path / name),
                     "--device", "cpu"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, (name, err)
        assert "lossless PNG" in err and "folder" in err and name in err, (name, err)
        assert not (tmp_path / name).exists()
    for flag, value in [("--polarity", "up"), ("--tile-size", "0"), ("--batch-size", "two"),
                        ("--tile-overlap", "-1")]:
        with pytest.raises(SystemExit) as exit_info:
            main(["--checkpoint", str(checkpoint), "--image", "x", "--out", "y", flag, value])
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and flag in err and len(err.splitlines()) == 1, err


def _torch_file_bytes(tmp_path: Path) -> bytes:
    return _checkpoint(tmp_path / "good.pt").read_bytes()


@pytest.mark.parametrize("content", [
    lambda tmp: b"a text file, not a checkpoint\n",
    lambda tmp: b"",
    lambda tmp: _torch_file_bytes(tmp)[:1000],  # truncated zip
])
def test_a_file_that_is_not_a_checkpoint_is_a_user_input_error(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content(tmp_path))
    with pytest.raises(UserInputError, match=f"cannot read checkpoint '{path}'.*train.py"):
        Inpainter.from_checkpoint(path, device="cpu")


def test_a_checkpoint_of_another_model_is_a_user_input_error(tmp_path):
    path = _checkpoint(tmp_path / "tiny.pt")
    state = torch.load(path, weights_only=True)
    state["config"]["model"]["depth"] = 4  # the weights are those of a depth-3 network
    torch.save(state, path)
    with pytest.raises(UserInputError, match="does not fit its model config"):
        Inpainter.from_checkpoint(path, device="cpu")


def test_a_failure_while_inpainting_keeps_its_traceback(tmp_path, monkeypatch):
    """Only user input and the environment become one line; a CUDA failure does not."""
    checkpoint = _checkpoint(tmp_path / "tiny.pt")
    image, mask = _image_and_mask(20, 30)
    Image.fromarray(image).save(tmp_path / "x.png")
    Image.fromarray(mask * 255).save(tmp_path / "hole.png")

    def cuda_failure(self, image, known):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(Inpainter, "inpaint_array", cuda_failure)
    with pytest.raises(RuntimeError, match="CUDA error"):
        main(["--checkpoint", str(checkpoint), "--image", str(tmp_path / "x.png"), "--mask",
              str(tmp_path / "hole.png"), "--out", str(tmp_path / "out.png"), "--device", "cpu"])


def test_a_folder_with_a_corrupt_image_inpaints_the_others_and_exits_1(tmp_path, capsys):
    """One bad file is named and skipped; the rest are written; the exit code says it failed."""
    checkpoint = _checkpoint(tmp_path / "tiny.pt")
    (tmp_path / "in").mkdir()
    image, mask = _image_and_mask(24, 28)
    for name in ("a", "c"):
        Image.fromarray(image).save(tmp_path / "in" / f"{name}.png")
    (tmp_path / "in" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Image.fromarray(mask * 255).save(tmp_path / "hole.png")
    code = main(["--checkpoint", str(checkpoint), "--image", str(tmp_path / "in"), "--mask",
                 str(tmp_path / "hole.png"), "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]
    lines = [line for line in capsys.readouterr().err.splitlines() if "b.png" in line]
    bad = str(tmp_path / "in" / "b.png")
    assert len(lines) == 2 and "Traceback" not in "".join(lines), lines
    assert lines[0].startswith("python -m inpainting.predict: skipped") and bad in lines[0]
    assert lines[1] == f"python -m inpainting.predict: error: 1 of 3 images failed: {bad}"


def test_a_folder_where_one_image_lacks_alpha_names_it_and_exits_1(tmp_path, capsys):
    checkpoint = _checkpoint(tmp_path / "tiny.pt")
    (tmp_path / "in").mkdir()
    image, mask = _image_and_mask(24, 28)
    Image.fromarray(np.dstack([image, mask * 255])).save(tmp_path / "in" / "alpha.png")
    Image.fromarray(image).save(tmp_path / "in" / "plain.png")
    code = main(["--checkpoint", str(checkpoint), "--image", str(tmp_path / "in"), "--out",
                 str(tmp_path / "out"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1 and (tmp_path / "out" / "alpha.png").is_file()
    assert "no alpha channel" in err and "1 of 2 images failed" in err, err
    assert not (tmp_path / "out" / "plain.png").exists()


def test_an_out_png_that_is_a_folder_is_refused_before_the_work(tmp_path):
    checkpoint = _checkpoint(tmp_path / "tiny.pt")
    image, mask = _image_and_mask(20, 30)
    Image.fromarray(image).save(tmp_path / "x.png")
    Image.fromarray(mask * 255).save(tmp_path / "hole.png")
    (tmp_path / "result.png" / "kept").mkdir(parents=True)
    command = [sys.executable, "-m", "inpainting.predict", "--checkpoint", str(checkpoint),
               "--image", str(tmp_path / "x.png"), "--mask", str(tmp_path / "hole.png"),
               "--out", str(tmp_path / "result.png"), "--device", "cpu"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "is a folder" in done.stderr and "Traceback" not in done.stderr
    assert [p.name for p in (tmp_path / "result.png").iterdir()] == ["kept"]


def test_a_full_disk_keeps_the_earlier_result_and_exits_3(tmp_path, capsys, monkeypatch):
    checkpoint = _checkpoint(tmp_path / "tiny.pt")
    image, mask = _image_and_mask(20, 30)
    Image.fromarray(image).save(tmp_path / "x.png")
    Image.fromarray(mask * 255).save(tmp_path / "hole.png")
    (tmp_path / "out").mkdir()
    earlier = tmp_path / "out" / "result.png"
    earlier.write_bytes(b"an earlier result")

    def full_disk(self, handle, *args, **kwargs):  # half a PNG, then the disk is full
        handle.write(b"\x89PNG\r\n\x1a\n")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    code = main(["--checkpoint", str(checkpoint), "--image", str(tmp_path / "x.png"),
                 "--mask", str(tmp_path / "hole.png"), "--out", str(earlier), "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 3 and len(err.splitlines()) == 1, err
    assert f"cannot write '{earlier}': no space left on device" in err
    assert earlier.read_bytes() == b"an earlier result"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["result.png"]


def test_nan_and_inf_in_the_holes_change_nothing_whole_or_tiled():
    image, mask = _image_and_mask(40, 45)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255  # (1, 3, H, W)
    known = torch.from_numpy(mask)[None, None].float()  # (1, 1, H, W)
    hole = (known == 0).expand_as(tensor)
    poisoned = tensor.clone()
    poisoned[hole] = torch.tensor([float("nan"), float("inf"), float("-inf")]).repeat(
        int(hole.sum()) // 3 + 1)[:int(hole.sum())]
    for tile_size in (1024, 16):  # one pass, and tiles of 16 overlapping by 4
        inpainter = Inpainter(_tiny_model(), device="cpu", tile_size=tile_size, tile_overlap=4)
        clean = inpainter.predict_tiled(tensor, known)
        result = inpainter.predict_tiled(poisoned, known)
        assert torch.isfinite(result).all() and torch.equal(result, clean), tile_size


def test_an_rgba_image_with_a_mask_has_the_holes_of_both_and_says_so(tmp_path, caplog):
    checkpoint = _checkpoint(tmp_path / "tiny.pt")
    image, mask = _image_and_mask(24, 32)  # the mask's holes: rows 4-11 and a corner
    alpha = np.full(mask.shape, 255, np.uint8)
    alpha[16:20, 20:28] = 0  # transparent where the mask says known
    Image.fromarray(np.dstack([image, alpha])).save(tmp_path / "cutout.png")
    Image.fromarray(mask * 255).save(tmp_path / "hole.png")
    out = tmp_path / "filled.png"
    with caplog.at_level("INFO"):
        assert main(["--checkpoint", str(checkpoint), "--image", str(tmp_path / "cutout.png"),
                     "--mask", str(tmp_path / "hole.png"), "--out", str(out),
                     "--device", "cpu"]) == 0
    union = (mask == 1) & (alpha > 0)
    expected = Inpainter.from_checkpoint(checkpoint, device="cpu")(image, union)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)
    assert "32 fully transparent pixels are holes too" in caplog.text, caplog.text
