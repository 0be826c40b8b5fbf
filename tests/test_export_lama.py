"""--format lama-torchscript: a drop-in for LaMa's big-lama.pt, called as IOPaint and InvokeAI
call it, computes Inpainter's composite.

The callers are read from their sources (not copied; the steps are restated here):

- IOPaint 1.6.0 (Sanster/IOPaint @ 61a759f, lama-cleaner 1.2.5 is the same code), the CLI
  ``iopaint run --model lama``:
  ``iopaint/batch_processing.py`` L96-112: image ``convert("RGB")``, mask ``convert("L")``
  thresholded to 0/255 at 127 (255 = hole); ``iopaint/model/base.py`` L57-78 (``_pad_forward``):
  image and mask padded to a multiple of ``pad_mod = 8`` by ``pad_img_to_modulo``
  (``iopaint/helper.py`` L209-243: ``np.pad(mode="symmetric")`` at the bottom and right), the
  result cropped back and, with ``sd_keep_unmasked_area`` (default True), composited again with
  the input; ``iopaint/model/lama.py`` L40-65: ``torch.jit.load(path, map_location="cpu")``
  then ``.to(device).eval()`` (``helper.py`` L101-113); ``norm_img`` (``helper.py`` L187-192:
  HWC -> CHW float32 / 255) for image and mask, ``mask = (mask > 0) * 1`` (int64),
  ``unsqueeze(0)``, ``model(image, mask)``, then ``np.clip(out[0].permute(1, 2, 0) * 255, 0,
  255).astype("uint8")``; ``model_manager.py`` L92-111 runs it under ``torch.inference_mode()``.
- InvokeAI ``invokeai/backend/image_util/infill_methods/lama.py`` (@ 0df018b) L24-45
  (``LaMA.__call__``): no padding, the mask is the inverted alpha channel (``np.invert``, so
  transparent = hole),
  ``(mask > 0) * 1``, the device from ``next(self._model.buffers()).device``, the call under
  ``torch.inference_mode()``, its output used as is (no composite of its own).
"""

import json

import numpy as np
import pytest
import torch
from deploy_helpers import DEPTH, photo, tiny_checkpoint

from inpainting.export import METADATA_FILE, load_inpainting_model, main, reflect_index
from inpainting.models import PConvUNet
from inpainting.predict.inference import Inpainter
from inpainting.predict.lama_torchscript import reflect_positions, script_lama_interface

pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit:FutureWarning")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("lama") / "best.pt")


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("lama") / "model.pt"
    assert main(["--checkpoint", str(checkpoint), "--format", "lama-torchscript",
                 "--out", str(out)]) == 0
    return out


def _holes(height: int, width: int) -> np.ndarray:
    """(H, W) bool, True = hole: a block, and one in the bottom-left corner (padded region)."""
    hole = np.zeros((height, width), dtype=bool)
    hole[height // 4 : height // 2, width // 3 : 2 * width // 3] = True
    hole[-5:, :6] = True
    return hole


def _norm_img(array: np.ndarray) -> np.ndarray:
    """IOPaint's ``norm_img``: (H, W[, C]) uint8 -> (C, H, W) float32 in [0, 1]."""
    array = array[:, :, None] if array.ndim == 2 else array
    return np.transpose(array, (2, 0, 1)).astype("float32") / 255


def _inpainter_composite(model, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Inpainter's float composite (H, W, 3) of a uint8 image and a hole mask."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    known = torch.from_numpy(~hole)[None, None].float()
    prediction = Inpainter(model, device="cpu").predict(x, known)
    return (known * x + (1 - known) * prediction)[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("size", [(37, 45), (32, 64)])
def test_called_as_iopaint_calls_lama_it_gives_inpainters_composite(checkpoint, exported, size):
    height, width = size
    model, _ = load_inpainting_model(checkpoint)
    lama = torch.jit.load(str(exported), map_location="cpu").to("cpu").eval()
    image, hole = photo(height, width, seed=3), _holes(height, width)
    mask = np.where(hole, 255, 0).astype(np.uint8)
    # _pad_forward: symmetric padding to a multiple of 8 (pad_mod), image and mask alike
    pad = ((0, -height % 8), (0, -width % 8))
    padded_image = np.pad(image, (*pad, (0, 0)), mode="symmetric")
    padded_mask = np.pad(mask[:, :, None], (*pad, (0, 0)), mode="symmetric")
    # LaMa.forward
    x = torch.from_numpy(_norm_img(padded_image)).unsqueeze(0)
    m = torch.from_numpy((_norm_img(padded_mask) > 0) * 1).unsqueeze(0)
    assert m.dtype == torch.int64
    with torch.inference_mode():
        output = lama(x, m)
    result = output[0].permute(1, 2, 0).detach().cpu().numpy()
    expected = _inpainter_composite(model, padded_image, padded_mask[:, :, 0] > 0)
    assert result.shape == expected.shape
    assert np.abs(result - expected).max() <= 1e-4
    known = ~(padded_mask[:, :, 0] > 0)
    assert np.array_equal(result[known], _norm_img(padded_image).transpose(1, 2, 0)[known])


def test_called_as_invokeai_calls_lama_any_size_is_padded_inside(checkpoint, exported):
    model, _ = load_inpainting_model(checkpoint)
    lama = torch.jit.load(str(exported), map_location="cpu").eval()
    height, width = 21, 13  # InvokeAI pads nothing: the file pads to multiples of 2**depth
    image, hole = photo(height, width, seed=4), _holes(height, width)
    alpha = np.where(hole, 0, 255).astype(np.uint8)  # transparent = hole
    device = next(lama.buffers()).device
    x = torch.from_numpy(_norm_img(image)).unsqueeze(0).to(device)
    m = torch.from_numpy((_norm_img(np.invert(alpha)) > 0) * 1).unsqueeze(0).to(device)
    with torch.inference_mode():
        output = lama(x, m)[0].permute(1, 2, 0).detach().cpu().numpy()
    assert output.shape == (height, width, 3)
    assert np.abs(output - _inpainter_composite(model, image, hole)).max() <= 1e-4


def test_the_file_states_its_convention_and_export_is_silent(checkpoint, tmp_path, recwarn):
    out = tmp_path / "model.pt"
    assert main(["--checkpoint", str(checkpoint), "--format", "LAMA_TorchScript",
                 "--out", str(out)]) == 0
    assert [str(w.message) for w in recwarn] == []
    extra = {METADATA_FILE: ""}
    lama = torch.jit.load(str(out), _extra_files=extra)
    metadata = json.loads(extra[METADATA_FILE])
    assert "1 = hole" in metadata["inputs"] and metadata["composite"] == "true"
    assert metadata["size_multiple"] == str(2**DEPTH)
    assert [name for name, _ in lama.named_buffers()][0] == "size_multiple"
    assert [path.name for path in tmp_path.iterdir()] == ["model.pt"]  # no temporary left


def test_one_pixel_and_batches_work_and_hole_values_are_ignored():
    model = PConvUNet(depth=DEPTH, base_channels=8).eval()
    lama = script_lama_interface(model)
    for batch, height, width in [(1, 1, 1), (2, 5, 3), (3, 8, 8)]:
        image = torch.rand(batch, 3, height, width)
        hole = torch.zeros(batch, 1, height, width, dtype=torch.int64)
        hole[..., 0, 0] = 1
        with torch.inference_mode():
            output = lama(image, hole)
            poisoned = lama(torch.where(hole.bool(), torch.nan, image), hole)
        known = (1 - hole).float()
        expected = known * image + (1 - known) * Inpainter(model, "cpu").predict(image, known)
        assert (output - expected).abs().max() <= 1e-4
        assert torch.equal(poisoned, output)


def test_reflect_positions_equal_the_exported_graphs_reflect_index():
    for length, target in [(5, 8), (3, 16), (1, 8), (2, 9), (16, 16), (9, 32)]:
        assert torch.equal(reflect_positions(length, target, torch.device("cpu")),
                           reflect_index(length, target)), (length, target)


def test_a_network_with_a_size_dependent_prefill_is_refused(tmp_path, capsys):
    model = PConvUNet(depth=DEPTH, base_channels=8, prefill="diffusion")
    config = {"model": {"name": "pconv_unet", "depth": DEPTH, "base_channels": 8,
                        "prefill": "diffusion"}}
    path = tmp_path / "prefill.pt"
    torch.save({"model": model.state_dict(), "config": config, "step": 0, "version": 1}, path)
    out = tmp_path / "model.pt"
    assert main(["--checkpoint", str(path), "--format", "lama-torchscript",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "prefill" in err and "--format onnx or pt2" in err
    assert not out.exists()
