"""The mmagic converter: our forward pass with converted weights equals mmagic's own PConv
generator (``tests/fixtures/mmagic_pconv``, made by running mmagic's modules: see its
``make_fixture.py`` and ``NOTES.md``), and files of other kinds are one line, exit 2.

The published weights cannot be downloaded here: the checkpoint is synthetic, mmagic's exact key
set and shapes with the fixture's seeded weights and BatchNorm statistics.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpainting.engine.checkpoint import save_checkpoint
from inpainting.engine.errors import UserInputError
from inpainting.models import build_model
from inpainting.predict import Inpainter
from inpainting.tasks.inpainting.checkpoint import load_model_from_checkpoint
from inpainting.tasks.inpainting.mmagic import convert_mmagic_checkpoint

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "mmagic_pconv"
OLD = ROOT / "tests" / "fixtures" / "checkpoints_v1"


def _recipe():
    spec = importlib.util.spec_from_file_location("weights_recipe", FIXTURE / "weights_recipe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mmagic_file(tmp_path_factory):
    """An mmagic-style checkpoint of the fixture's weights, with the keys a real one also has
    (meta with numpy values, an optimizer, the perceptual loss's VGG)."""
    fixture = json.loads((FIXTURE / "fixture.json").read_text())
    generator = _recipe().build_state_dict(fixture["state_dict"], fixture["seed"])
    state = {**generator, "loss_percep.vgg.vgg_layers.0.weight": torch.zeros(64, 3, 3, 3)}
    path = tmp_path_factory.mktemp("mmagic") / "pconv_256x256_stage2.pth"
    torch.save({"meta": {"epoch": 1, "iter": np.int64(500000), "lr": np.float64(5e-5)},
                "state_dict": state, "optimizer": {"generator": {"state": {}}}}, path)
    return path


def _ours(case: dict, model: torch.nn.Module) -> np.ndarray:
    """Our model on mmagic's inputs (BGR in [-1, 1], 3-channel mask), in mmagic's units."""
    rgb01 = (torch.from_numpy(case["masked_img"]).flip(1) + 1) / 2
    known = torch.from_numpy(case["mask"])[:, :1]
    with torch.no_grad():
        output, _ = model(rgb01, known)
    return (output.flip(1) * 2 - 1).numpy()


@pytest.mark.parametrize("case", ["case_256x256.npz", "case_384x256.npz"])
def test_the_converted_model_computes_what_mmagics_generator_computed(mmagic_file, case):
    state = convert_mmagic_checkpoint(mmagic_file)
    model = build_model(**state["config"]["model"])
    model.load_state_dict(state["model"])
    data = dict(np.load(FIXTURE / case))
    ours, theirs = _ours(data, model.eval()), data["fake_res"]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())


def test_the_converted_file_records_its_source_and_works_as_a_checkpoint(mmagic_file, tmp_path):
    out = tmp_path / "pconv.pt"
    done = subprocess.run([sys.executable, "-m", "inpainting.convert", "--from", "mmagic",
                           str(mmagic_file), "--out", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    saved = torch.load(out, weights_only=True)
    assert saved["source"]["file"] == mmagic_file.name and len(saved["source"]["sha256"]) == 64
    assert "non-commercial" in saved["source"]["licences"]["weights"]
    assert saved["config"]["data"]["image_size"] == 256 and "classifier" not in saved["config"]
    model, config = load_model_from_checkpoint(out)
    assert config["model"]["value_range"] == "symmetric" and model.depth == 7
    image = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    known = np.ones((200, 300), bool)
    known[50:120, 80:200] = False
    result = Inpainter.from_checkpoint(out, device="cpu")(image, known)
    assert result.shape == (200, 300, 3) and np.array_equal(result[known], image[known])


@pytest.mark.parametrize("source, found", [
    (OLD / "inpainting_last.pt", "is an inpainting checkpoint (pconv_unet, depth 3), not an "
                                 "mmagic PConv checkpoint"),
    (OLD / "classification_checkpoint.pth.tar", "is a classification checkpoint (arch "
                                                "small_vgg), not an mmagic PConv checkpoint"),
    (OLD / "nvidia_main_checkpoint.pth.tar", "is a checkpoint of NVIDIA's main.py (arch "
                                             "small_vgg), not an mmagic PConv checkpoint"),
])
def test_other_checkpoints_are_named(source, found):
    with pytest.raises(UserInputError, match=found.replace("(", r"\(").replace(")", r"\)")):
        convert_mmagic_checkpoint(source)


def test_bad_files_are_one_line_with_exit_code_2(mmagic_file, tmp_path):
    raw = torch.load(mmagic_file, weights_only=False)
    cases = {}
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(mmagic_file.read_bytes()[:5000])
    cases[truncated] = "the file is truncated or corrupt"
    other = tmp_path / "other.pth"
    torch.save({"state_dict": {"generator.encoder.conv1.weight": torch.zeros(1)}}, other)
    cases[other] = "an mmagic checkpoint of another generator"
    lama = tmp_path / "lama.ckpt"
    torch.save({"state_dict": {"generator.model.1.ffc.weight": torch.zeros(1)}}, lama)
    cases[lama] = "a LaMa checkpoint"
    updater = tmp_path / "updater.pth"
    state = dict(raw["state_dict"])
    key = "generator.encoder.enc1.conv.weight_mask_updater"
    state[key] = state[key] * 2
    torch.save({"state_dict": state}, updater)
    cases[updater] = "is not all ones"
    for path, found in cases.items():
        done = subprocess.run([sys.executable, "-m", "inpainting.convert", "--from", "mmagic",
                               str(path), "--out", str(tmp_path / "out.pt")], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and found in lines[0], done.stderr
        assert len(lines[0]) - len(str(path)) < 200 and "weights_only" not in lines[0]
    assert not (tmp_path / "out.pt").exists()


def test_the_converted_weights_train_from_init_from(mmagic_file, tmp_path):
    """configs/finetune_mmagic.yaml starts a run from the converted file (one tiny step)."""
    out = tmp_path / "pconv.pt"
    save_checkpoint(convert_mmagic_checkpoint(mmagic_file), out)
    images = tmp_path / "photos"
    images.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        Image.fromarray(rng.integers(0, 256, (140, 150, 3), dtype=np.uint8)).save(
            images / f"{index}.png")
    done = subprocess.run(
        [sys.executable, "train.py", "--config", "configs/finetune_mmagic.yaml", "--init-from",
         str(out), "--set", f"data.train={images}", "--set", "data.image_size=128",
         "--set", "data.batch_size=2", "--set", "data.num_workers=0",
         "--set", "train.max_steps=1", "--set", "masks.val_count=1",
         "--set", "loss.vgg_weights=none",
         "--set", f"train.run_dir={tmp_path / 'run'}", "--set", "log.progress=false",
         "--set", "train.device=cpu"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "initialised the weights from" in done.stderr + done.stdout
