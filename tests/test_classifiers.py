"""The classification task's models: names, paddings, pretrained and initial weights."""

import urllib.error

import pytest
import torch
import torchvision
from torch import nn

from inpainting.engine.errors import EnvironmentProblem, UserInputError
from inpainting.layers.partial_conv import PartialConv2d
from inpainting.tasks.classification.config import CLASSIFIER_NAMES, PADDINGS
from inpainting.tasks.classification.input_size import input_size_problem
from inpainting.tasks.classification.models import (
    build_classifier,
    nvidia_arch_name,
    resolve_arch,
)
from inpainting.tasks.classification.nvidia import save_nvidia_checkpoint
from inpainting.tasks.classification.task import make_nvidia_checkpoint


def _padded_modes(model: nn.Module) -> set[str]:
    return {m.padding_mode for m in model.modules()
            if type(m) is nn.Conv2d and any(p > 0 for p in m.padding)}


def test_names_resolve_to_torchvision_name_and_padding():
    assert resolve_arch("resnet50") == ("resnet50", "zero")
    assert resolve_arch("pdresnet50") == ("resnet50", "partial")
    assert resolve_arch("pdvgg16_bn", "partial") == ("vgg16_bn", "partial")
    assert resolve_arch("vgg19", "replicate") == ("vgg19", "replicate")
    assert nvidia_arch_name("resnet101", "partial") == "pdresnet101"
    assert nvidia_arch_name("vgg11", "reflect") == "vgg11"
    assert len(CLASSIFIER_NAMES) == 2 * 14 and "pdvgg19_bn" in CLASSIFIER_NAMES
    assert resolve_arch("pdsmall_vgg") == ("small_vgg", "partial")


def test_bad_names_are_user_errors_listing_the_valid_ones():
    with pytest.raises(UserInputError, match=r"unknown architecture 'resnet51' \(valid: "
                                             r"resnet18, .*pdvgg19_bn, pdsmall_vgg\)"):
        resolve_arch("resnet51")
    with pytest.raises(UserInputError, match="unknown architecture 'pdalexnet'"):
        build_classifier("pdalexnet")
    with pytest.raises(UserInputError, match=r"unknown padding 'mirror' \(valid: zero, partial, "
                                             r"reflect, replicate\)"):
        build_classifier("resnet18", padding="mirror")
    with pytest.raises(UserInputError, match="use -a resnet50 --padding reflect"):
        resolve_arch("pdresnet50", "reflect")
    with pytest.raises(UserInputError, match="num_classes"):
        build_classifier("resnet18", num_classes=0)
    with pytest.raises(UserInputError, match="not both"):
        build_classifier("resnet18", pretrained=True, init_weights="x.pth")


@pytest.mark.parametrize("padding", PADDINGS)
def test_resnet18_with_each_padding_runs_and_has_the_same_weights(padding):
    model = build_classifier("resnet18", padding=padding, num_classes=5).eval()
    partial_layers = sum(isinstance(m, PartialConv2d) for m in model.modules())
    assert partial_layers == (17 if padding == "partial" else 0)
    expected_modes = {"zero": {"zeros"}, "partial": set(), "reflect": {"reflect"},
                      "replicate": {"replicate"}}[padding]
    assert _padded_modes(model) == expected_modes
    reference = torchvision.models.resnet18(num_classes=5).state_dict()
    assert {k: v.shape for k, v in model.state_dict().items()} == \
        {k: v.shape for k, v in reference.items()}
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 5) and torch.isfinite(out).all()


@pytest.mark.parametrize("padding", ["partial", "reflect"])
def test_vgg_with_padding_runs_at_32_pixels(padding):
    model = build_classifier("vgg11_bn", padding=padding, num_classes=3).eval()
    assert model.classifier[-1].out_features == 3
    with torch.no_grad():
        out = model(torch.rand(1, 3, 32, 32))
    assert out.shape == (1, 3) and torch.isfinite(out).all()


@pytest.mark.parametrize("padding", PADDINGS)
def test_small_vgg_with_each_padding_runs_at_28_pixels(padding):
    model = build_classifier("small_vgg", padding, num_classes=10, input_size=28).eval()
    assert sum(isinstance(m, PartialConv2d) for m in model.modules()) == (
        6 if padding == "partial" else 0)
    reference = build_classifier("small_vgg", "zero", num_classes=10).state_dict()
    assert {k: v.shape for k, v in model.state_dict().items()} == \
        {k: v.shape for k, v in reference.items()}
    with torch.no_grad():
        out = model(torch.rand(2, 3, 28, 28))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    checkpoint = make_nvidia_checkpoint(model, nvidia_arch_name("small_vgg", padding), 1, 50.0,
                                        None)
    assert "features.module.0.weight" in checkpoint["state_dict"]  # NVIDIA's VGG layout
    with pytest.raises(UserInputError, match="small_vgg has no pretrained weights"):
        build_classifier("small_vgg", padding, pretrained=True)


def test_an_input_too_small_is_one_line_naming_the_layer_and_the_smallest_size():
    with pytest.raises(UserInputError) as caught:
        build_classifier("resnet18", "reflect", num_classes=10, input_size=28)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("28 px inputs are too small")
    assert "layer4.0.conv2 (Conv2d) pads 1 px by reflection" in message and "1x1" in message
    assert message.endswith("raise classifier.crop_size (classify.py --crop-size) to at least "
                            "33 px or use zero, replicate or partial padding")
    model = build_classifier("resnet18", "reflect", num_classes=10)
    assert input_size_problem(model, 32) is not None and input_size_problem(model, 33) is None
    with pytest.raises(UserInputError, match=r"features.20 \(MaxPool2d\) has a 2x2 window that "
                                             r"does not fit its 1x1 maps; raise .* to at least "
                                             r"8 px$"):
        build_classifier("small_vgg", "zero", num_classes=10, input_size=4)
    build_classifier("resnet18", "replicate", num_classes=10, input_size=28)  # works at 1x1


def test_the_input_size_check_leaves_the_model_as_it_was():
    model = build_classifier("small_vgg", "reflect", num_classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert input_size_problem(model, 4) is not None and input_size_problem(model, 28) is None
    assert model.training and not any(m._forward_pre_hooks for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.fixture
def fake_download(monkeypatch):
    """torchvision's weights API with the download replaced by a seeded random resnet18."""
    urls = []

    def download(url, *args, **kwargs):
        urls.append(url)
        torch.manual_seed(123)
        return torchvision.models.resnet18().state_dict()

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", download)
    return urls


def test_pretrained_loads_torchvision_imagenet_weights_into_partial_padding(fake_download):
    """Fine-tuning zero-padding weights with partial padding: same weights, new padding."""
    model = build_classifier("pdresnet18", pretrained=True)
    assert fake_download == [torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url]
    assert isinstance(model.conv1, PartialConv2d)
    torch.manual_seed(123)
    zero_padded = torchvision.models.resnet18()
    assert all(torch.equal(v, zero_padded.state_dict()[k]) for k, v in model.state_dict().items())


def test_pretrained_with_other_classes_gets_a_new_head(fake_download):
    model = build_classifier("resnet18", padding="replicate", num_classes=10, pretrained=True)
    torch.manual_seed(123)
    reference = torchvision.models.resnet18().state_dict()
    assert model.fc.out_features == 10
    assert torch.equal(model.layer4[1].conv2.weight, reference["layer4.1.conv2.weight"])
    with pytest.raises(UserInputError, match=r"no weights 'IMAGENET9K' for resnet18 \(valid: "
                                             r"IMAGENET1K_V1\)"):
        build_classifier("resnet18", pretrained="IMAGENET9K")


def test_failed_download_is_one_line_environment_problem(monkeypatch):
    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure\nin name resolution")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    with pytest.raises(EnvironmentProblem, match="cannot download torchvision's resnet18 "
                                                 "IMAGENET1K_V1 weights from https://") as error:
        build_classifier("pdresnet18", pretrained=True)
    assert "\n" not in str(error.value) and "checkpoints" in str(error.value)


def test_init_weights_from_a_zero_padding_run_into_partial_padding(tmp_path):
    zero = build_classifier("resnet18", num_classes=4).eval()
    checkpoint = make_nvidia_checkpoint(zero, "resnet18", 30, 55.0, None)
    path = save_nvidia_checkpoint(checkpoint, tmp_path, is_best=False)

    partial = build_classifier("resnet18", padding="partial", num_classes=4,
                               init_weights=path).eval()
    assert isinstance(partial.layer1[0].conv1, PartialConv2d)
    reference = zero.state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in partial.state_dict().items())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(partial(x), zero(x), atol=1e-5)  # only the padding changed
    with pytest.raises(UserInputError, match="shapes do not match"):
        build_classifier("pdresnet18", num_classes=7, init_weights=path)
