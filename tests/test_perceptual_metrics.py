"""LPIPS (VGG, v0.1) against the lpips package with the same random weights."""

import pytest
import torch
from metric_weights import random_lpips_linear_file, random_vgg16_file

from inpainting.engine.errors import UserInputError
from inpainting.metrics.perceptual import LPIPS, build_lpips
from inpainting.metrics.weights import ResolvedWeights, file_sha256


def _resolved(name, path):
    return ResolvedWeights(name, path, file_sha256(path))


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lpips_weights")
    return (_resolved("vgg16", random_vgg16_file(folder / "vgg16.pth")),
            _resolved("lpips-vgg", random_lpips_linear_file(folder / "lin.pth")))


@pytest.fixture(scope="module")
def ours(weight_files):
    return build_lpips(*weight_files)


def _reference(weight_files):
    """lpips.LPIPS(net="vgg") with our files' weights: its slices hold vgg16().features[i]
    under their original indices, so the backbone keys load slice by slice."""
    lpips = pytest.importorskip("lpips", reason="lpips (metrics extra)")
    reference = lpips.LPIPS(net="vgg", pretrained=False, pnet_rand=True, verbose=False)
    backbone = torch.load(weight_files[0].path, weights_only=True)
    for number in range(1, 6):
        part = getattr(reference.net, f"slice{number}")
        part.load_state_dict({key: backbone[f"features.{key}"] for key in part.state_dict()})
    reference.load_state_dict(torch.load(weight_files[1].path, weights_only=True), strict=False)
    return reference.eval()


@pytest.mark.filterwarnings("ignore::UserWarning:torchvision.*")
def test_equals_the_lpips_package(weight_files, ours):
    reference = _reference(weight_files)
    pred = torch.rand(3, 3, 40, 48)
    target = (pred + 0.2 * torch.randn_like(pred)).clamp(0, 1)
    with torch.no_grad():
        expected = reference(pred, target, normalize=True).flatten()
    got = ours(pred, target)
    assert got.shape == (3,)
    assert torch.allclose(got, expected, rtol=1e-4, atol=0)
    grey = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        expected = reference(*(x.expand(-1, 3, -1, -1) for x in grey), normalize=True).flatten()
    assert torch.allclose(ours(*grey), expected, rtol=1e-4, atol=0)


def test_identical_images_score_zero_and_small_images_raise(ours):
    image = torch.rand(2, 3, 16, 20)
    assert torch.equal(ours(image, image), torch.zeros(2))
    with pytest.raises(ValueError, match="at least 16x16"):
        ours(torch.rand(1, 3, 15, 40), torch.rand(1, 3, 15, 40))
    with pytest.raises(ValueError, match="one shape"):
        ours(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17))


def test_stays_frozen_in_eval_mode(ours):
    ours.train()
    assert not ours.training and not any(p.requires_grad for p in ours.parameters())
    assert isinstance(ours, LPIPS)


def test_a_wrong_file_is_one_line(weight_files, tmp_path):
    backbone, linear = weight_files
    with pytest.raises(UserInputError, match="lpips-vgg weights .* missing lin0") as caught:
        build_lpips(backbone, _resolved("lpips-vgg", backbone.path))
    assert "\n" not in str(caught.value)
    text = tmp_path / "notes.pth"
    text.write_text("not a torch file")
    with pytest.raises(UserInputError, match="cannot be read as a state dict"):
        build_lpips(_resolved("vgg16", text), linear)
    half = tmp_path / "half.pth"
    state = torch.load(backbone.path, weights_only=True)
    torch.save({key: value for key, value in state.items() if not key.startswith("features.2")},
               half)
    with pytest.raises(UserInputError, match="missing 2.bias, 2.weight"):
        build_lpips(_resolved("vgg16", half), linear)
