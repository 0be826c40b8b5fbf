"""Export to ONNX and torch.export (.pt2): same results as PyTorch on any size, clear errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from deploy_helpers import DEPTH, tiny_checkpoint

from inpainting.export import (
    METADATA_FILE,
    ExportWrapper,
    export_model,
    load_inpainting_model,
    main,
    reflect_index,
)
from inpainting.predict.inference import Inpainter, reflect_pad

ROOT = Path(__file__).resolve().parents[1]
SIZES = [(1, 37, 45), (2, 32, 64)]  # (batch, H, W): not a multiple of 2**depth, and one that is


def _batch(batch: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.rand(batch, 3, height, width)
    mask = torch.ones(batch, 1, height, width)
    mask[:, :, height // 4 : height // 2, width // 3 : 2 * width // 3] = 0
    mask[:, :, -5:, :6] = 0  # a hole in the padded corner
    return image, mask


def _reference(model: torch.nn.Module, image: torch.Tensor, mask: torch.Tensor,
               composite: bool) -> torch.Tensor:
    """What python -m inpainting.predict computes, before the 8-bit composite."""
    prediction = Inpainter(model, device="cpu").predict(image, mask)
    return mask * image + (1 - mask) * prediction if composite else prediction


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("export") / "best.pt")


def test_reflect_index_equals_repeated_reflect_padding():
    for length, target in [(5, 8), (3, 16), (1, 8), (2, 9), (16, 16), (9, 32)]:
        # (1, 1, L, L) with x[..., i, j] = j; padded to the next multiple of `target`
        grid = torch.arange(length, dtype=torch.float32).expand(1, 1, length, length)
        expected = reflect_pad(grid, target)[0, 0, 0, :target].long()
        assert torch.equal(reflect_index(length, target), expected), (length, target)


def test_onnx_matches_pytorch_on_two_sizes(checkpoint, tmp_path):
    onnx = pytest.importorskip("onnx", reason="the app extra is not installed: pip install .[app]")
    ort = pytest.importorskip("onnxruntime", reason="pip install .[app]")
    model, config = load_inpainting_model(checkpoint)
    path = export_model(model, config, tmp_path / "model.onnx", "onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image", "mask"]
    for batch, height, width in SIZES:
        image, mask = _batch(batch, height, width)
        (output,) = session.run(None, {"image": image.numpy(), "mask": mask.numpy()})
        expected = _reference(model, image, mask, composite=False).numpy()
        assert output.shape == (batch, 3, height, width)
        assert np.abs(output - expected).max() <= 1e-4
        assert output.min() >= 0 and output.max() <= 1
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert "1 = known" in props["inputs"] and props["composite"] == "false"
    assert props["size_multiple"] == str(2**DEPTH)


def test_pt2_composite_matches_pytorch_on_two_sizes(checkpoint, tmp_path):
    model, config = load_inpainting_model(checkpoint)
    path = export_model(model, config, tmp_path / "model.pt2", "pt2", composite=True)
    extra = {METADATA_FILE: ""}
    program = torch.export.load(path, extra_files=extra)
    assert json.loads(extra[METADATA_FILE])["composite"] == "true"
    for batch, height, width in SIZES:
        image, mask = _batch(batch, height, width)
        output = program.module()(image, mask)
        expected = _reference(model, image, mask, composite=True)
        assert output.shape == (batch, 3, height, width)
        assert (output - expected).abs().max() <= 1e-4
        assert torch.equal(output * mask, image * mask)  # known pixels pass through


def test_wrapper_pads_sides_up_to_two_multiples(checkpoint):
    model, _ = load_inpainting_model(checkpoint)
    for height, width in [(1, 1), (5, 3), (8, 8), (9, 17)]:
        image, mask = torch.rand(1, 3, height, width), torch.ones(1, 1, height, width)
        mask[..., 0, 0] = 0
        output = ExportWrapper(model, composite=True)(image, mask)
        assert output.shape == image.shape and torch.isfinite(output).all()
        assert torch.equal(output * mask, image * mask)


def test_cli_writes_pt2_and_refuses_bad_input_in_one_line(checkpoint, tmp_path, capsys):
    out = tmp_path / "sub" / "model.pt2"
    assert main(["--checkpoint", str(checkpoint), "--format", "PT2", "--out", str(out)]) == 0
    assert out.is_file()
    not_a_checkpoint = tmp_path / "notes.pt"
    not_a_checkpoint.write_text("hello")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    for bad in [not_a_checkpoint, foreign, tmp_path / "missing.pt"]:
        capsys.readouterr()
        assert main(["--checkpoint", str(bad), "--format", "onnx", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "inpainting checkpoint" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_info:
        main(["--checkpoint", str(checkpoint), "--format", "tflite", "--out", str(out)])
    assert exit_info.value.code == 2
    assert "valid: onnx, pt2" in capsys.readouterr().err


def test_cli_says_how_to_install_onnx_when_it_is_missing(checkpoint, tmp_path, capsys,
                                                          monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "onnx" else find_spec(name, *args))
    out = tmp_path / "model.onnx"
    assert main(["--checkpoint", str(checkpoint), "--format", "onnx", "--out", str(out)]) == 3
    assert "pip install '.[app]'" in capsys.readouterr().err and not out.exists()


def test_an_onnx_export_prints_one_line_not_the_optimizer_log(checkpoint, tmp_path):
    pytest.importorskip("onnxscript", reason="pip install .[app]")
    out = tmp_path / "model.onnx"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "inpainting.export", "--checkpoint",
                           str(checkpoint), "--format", "onnx", "--out", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr.splitlines() == [
        f"wrote {out} (onnx, any size, padded to multiples of {2 ** DEPTH})"], done.stderr
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()  # not a private 0600 temp file


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def poison_holes(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``image`` with NaN, inf and -inf in turn in every hole pixel (``mask == 0``)."""
    hole = (mask == 0).expand_as(image)
    values = torch.tensor([float("nan"), float("inf"), float("-inf")])
    poisoned = image.clone()
    poisoned[hole] = values[torch.arange(int(hole.sum())) % 3]
    return poisoned


@pytest.mark.parametrize("export_format, composite", [("pt2", False), ("pt2", True),
                                                      ("onnx", True)])
def test_nan_and_inf_in_the_holes_change_nothing(checkpoint, tmp_path, export_format,
                                                 composite):
    model, config = load_inpainting_model(checkpoint)
    if export_format == "onnx":
        ort = pytest.importorskip("onnxruntime", reason="pip install .[app]")
        pytest.importorskip("onnxscript", reason="pip install .[app]")
        path = export_model(model, config, tmp_path / "model.onnx", "onnx", composite)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

        def run(image, mask):
            output = session.run(None, {"image": image.numpy(), "mask": mask.numpy()})[0]
            return torch.from_numpy(output)
    else:
        path = export_model(model, config, tmp_path / "model.pt2", "pt2", composite)
        run = torch.export.load(path).module()
    image, mask = _batch(2, 37, 45)
    clean, poisoned = run(image, mask), run(poison_holes(image, mask), mask)
    assert torch.isfinite(poisoned).all() and torch.equal(poisoned, clean)
