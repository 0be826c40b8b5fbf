"""Tests for inpainting.models.padding: conversion, pd* builders, NVIDIA checkpoint loading."""

import copy
import logging

import pytest
import torch
import torchvision
from torch import nn

from inpainting.layers.partial_conv import PartialConv2d
from inpainting.models import padding
from inpainting.models.padding import (
    PADDING_MODELS,
    convert_to_partial_conv,
    load_nvidia_checkpoint,
    pdresnet18,
    pdvgg16_bn,
)


def _padded_convs(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, nn.Conv2d) and any(p > 0 for p in m.padding)]


def _border_factors(size: int) -> torch.Tensor:
    """Per-row ratio 3 / (taps inside the image) for a 3x3, stride 1, padding 1 conv."""
    factors = torch.ones(size, dtype=torch.float64)
    factors[0] = factors[-1] = 1.5
    return factors


# ------------------------------------------------------------------------------------------------
# convert_to_partial_conv
def test_converted_resnet18_runs_and_keeps_its_weights():
    original = torchvision.models.resnet18(num_classes=7)
    model = copy.deepcopy(original)
    weight_before = model.conv1.weight
    padded_names = [name for name, _ in _padded_convs(original)]

    assert convert_to_partial_conv(model) is model
    modules = dict(model.named_modules())
    assert padded_names and all(type(modules[n]) is PartialConv2d for n in padded_names)
    # 1x1 downsample convs have no padding and stay plain convs
    assert type(model.layer2[0].downsample[0]) is nn.Conv2d
    assert model.conv1.weight is weight_before  # the same Parameter object, not a copy

    state, reference = model.state_dict(), original.state_dict()
    assert list(state) == list(reference)
    assert all(torch.equal(state[k], reference[k]) for k in reference)

    original.eval(), model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out, zero_padded = model(x), original(x)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
    assert not torch.allclose(out, zero_padded, atol=1e-4)  # the padding scheme did change


def test_single_converted_conv_differs_only_by_border_renormalisation():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    reference = copy.deepcopy(conv)
    layer = convert_to_partial_conv(conv)  # a padded root conv is returned, not modified
    assert isinstance(layer, PartialConv2d) and layer.weight is conv.weight

    x = torch.ones(2, 3, 10, 10, dtype=torch.float64)
    layer.double(), reference.double()
    with torch.no_grad():
        out, zero_padded = layer(x), reference(x)
    # interior: identical to the zero-padded conv
    assert torch.allclose(out[..., 1:-1, 1:-1], zero_padded[..., 1:-1, 1:-1])
    # border: (conv - bias) * 9 / taps + bias, i.e. factors 1.5 on edges and 2.25 at corners
    ratio = _border_factors(10)[:, None] * _border_factors(10)[None, :]
    bias = reference.bias.view(1, -1, 1, 1)
    assert torch.allclose(out, (zero_padded - bias) * ratio + bias)
    assert not torch.allclose(out[..., 0, :], zero_padded[..., 0, :])


class _SubclassConv(nn.Conv2d):
    """A user's Conv2d subclass that computes exactly what nn.Conv2d computes."""


def test_padding_variants_and_skipped_convs(caplog):
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=0),                     # no padding: kept
        nn.Conv2d(4, 4, 3, padding="same"),                # converted
        nn.Conv2d(4, 4, 1, padding="same"),                # 'same' with 1x1 pads nothing: kept
        nn.Conv2d(4, 4, 3, padding=(0, 1)),                # padded in one dimension: converted
        nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"),  # not zero padding: kept + warning
        PartialConv2d(4, 4, 3, padding=1, multi_channel=True),  # already partial: untouched
        _SubclassConv(4, 4, 3, padding=1),                 # subclass: converted
        nn.utils.parametrizations.weight_norm(nn.Conv2d(4, 4, 3, padding=1)),  # kept + warning
    )
    already_partial = model[5]
    with caplog.at_level(logging.WARNING, logger=padding.__name__):
        convert_to_partial_conv(model)
    assert [type(m) for m in model][:7] == [nn.Conv2d, PartialConv2d, nn.Conv2d, PartialConv2d,
                                            nn.Conv2d, PartialConv2d, PartialConv2d]
    assert nn.utils.parametrize.is_parametrized(model[7])
    assert model[1].padding == "same" and model[3].padding == (0, 1)
    assert model[5] is already_partial and model[5].multi_channel
    messages = [r.getMessage() for r in caplog.records]
    assert any("reflect" in m for m in messages) and any("parametrized" in m for m in messages)
    assert model(torch.rand(1, 3, 12, 12)).shape == (1, 4, 8, 10)


def test_conversion_keeps_hyper_parameters_dtype_mode_and_sharing():
    shared = nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=2, bias=False)
    model = nn.Sequential(nn.Conv2d(2, 4, 5, stride=2, padding=2), shared, shared)
    model = model.double().eval()
    reference = copy.deepcopy(model)
    convert_to_partial_conv(model)
    for new, old in zip(model, reference):
        assert isinstance(new, PartialConv2d) and not new.training
        for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                     "dilation", "groups"):
            assert getattr(new, attr) == getattr(old, attr)
        assert new.weight.dtype == torch.float64
        assert (new.bias is None) == (old.bias is None)
    assert model[1] is model[2]  # a module used twice is converted once and stays shared
    assert model(torch.rand(1, 2, 9, 9, dtype=torch.float64)).shape == (1, 4, 5, 5)


def test_optimizer_built_before_conversion_still_updates_the_model():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    convert_to_partial_conv(model)
    before = model[0].weight.detach().clone()
    model(torch.rand(2, 3, 8, 8)).sum().backward()
    optimizer.step()
    assert model[0].weight.grad is not None
    assert not torch.equal(model[0].weight, before)


# ------------------------------------------------------------------------------------------------
# builders
def test_pdvgg16_bn_builds_and_runs_at_32x32():
    model = pdvgg16_bn(weights=None, num_classes=5).eval()
    assert sum(isinstance(m, PartialConv2d) for m in model.modules()) == 13
    assert not any(type(m) is nn.Conv2d for m in model.modules())
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 5) and torch.isfinite(out).all()


def test_builders_forward_num_classes_and_weights_semantics():
    model = pdresnet18(weights=None, num_classes=3)
    assert model.fc.out_features == 3
    with pytest.raises(KeyError):  # torchvision resolves weight names exactly as it always does
        pdresnet18(weights="NO_SUCH_WEIGHTS")


def test_padding_models_lists_every_builder():
    expected = {f"pdresnet{d}" for d in (18, 34, 50, 101, 152)}
    expected |= {f"pdvgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")}
    assert set(PADDING_MODELS) == expected
    assert all(PADDING_MODELS[name].__name__ == name for name in expected)


@pytest.mark.parametrize("name", ["pdresnet34", "pdresnet50", "pdresnet101", "pdresnet152",
                                  "pdvgg11", "pdvgg13_bn", "pdvgg19"])
def test_other_builders_construct_with_partial_padding(name):
    model = PADDING_MODELS[name](weights=None, num_classes=4)
    assert any(isinstance(m, PartialConv2d) for m in model.modules())
    assert not any(type(m) is nn.Conv2d and any(p > 0 for p in m.padding)
                   for m in model.modules())


# ------------------------------------------------------------------------------------------------
# load_nvidia_checkpoint
def _nvidia_style_checkpoint(model: nn.Module, vgg: bool = False) -> dict:
    """What NVIDIA's main.py saves: DataParallel keys inside a training-state dict."""
    state = model.state_dict()
    if vgg:  # main.py wraps only model.features in DataParallel for VGG
        state = {k.replace("features.", "features.module.", 1): v for k, v in state.items()}
    else:
        state = {f"module.{k}": v for k, v in state.items()}
    return {"epoch": 100, "arch": "pdresnet18", "state_dict": state,
            "best_prec1": torch.tensor(70.1), "optimizer": {"state": {}, "param_groups": []}}


def test_load_nvidia_checkpoint_round_trips_a_dataparallel_checkpoint(tmp_path):
    source = pdresnet18(num_classes=5)
    path = tmp_path / "model_best.pth.tar"
    torch.save(_nvidia_style_checkpoint(source), path)
    assert all(k.startswith("module.") for k in torch.load(path)["state_dict"])

    target = pdresnet18(num_classes=5)
    assert not torch.equal(target.conv1.weight, source.conv1.weight)
    assert load_nvidia_checkpoint(target, path) is target
    loaded, reference = target.state_dict(), source.state_dict()
    assert all(torch.equal(loaded[k], reference[k]) for k in reference)


def test_load_nvidia_checkpoint_vgg_layout_and_old_batchnorm_keys():
    source = nn.Sequential()
    source.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))
    source.classifier = nn.Linear(4, 2)
    checkpoint = _nvidia_style_checkpoint(convert_to_partial_conv(source), vgg=True)
    # torch < 0.4.1 checkpoints have no num_batches_tracked
    checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items()
                                if not k.endswith("num_batches_tracked")}
    target = copy.deepcopy(source)
    for parameter in target.parameters():
        nn.init.zeros_(parameter)
    load_nvidia_checkpoint(target, checkpoint)
    assert torch.equal(target.features[0].weight, source.features[0].weight)
    assert torch.equal(target.classifier.weight, source.classifier.weight)


def test_load_nvidia_checkpoint_errors_clearly(tmp_path):
    checkpoint = _nvidia_style_checkpoint(pdresnet18(num_classes=5))
    checkpoint["state_dict"]["module.extra.weight"] = torch.zeros(1)
    del checkpoint["state_dict"]["module.fc.bias"]
    path = tmp_path / "mismatch.pth"
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match=r"missing keys \['fc.bias'\].*unexpected keys "
                                         r"\['extra.weight'\]"):
        load_nvidia_checkpoint(pdresnet18(num_classes=5), path)

    partial = load_nvidia_checkpoint(pdresnet18(num_classes=5), path, strict=False)
    assert torch.equal(partial.fc.weight, checkpoint["state_dict"]["module.fc.weight"])

    with pytest.raises(ValueError, match="shapes do not match.*fc.weight"):
        load_nvidia_checkpoint(pdresnet18(num_classes=3), path, strict=False)

    not_a_state_dict = tmp_path / "training_log.pth"
    torch.save({"epoch": 3, "arch": "pdresnet18"}, not_a_state_dict)
    with pytest.raises(ValueError, match="not a state dict"):
        load_nvidia_checkpoint(pdresnet18(), not_a_state_dict)

    garbage = tmp_path / "notes.txt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        load_nvidia_checkpoint(pdresnet18(), garbage)
    with pytest.raises(FileNotFoundError):
        load_nvidia_checkpoint(pdresnet18(), tmp_path / "missing.pth")
