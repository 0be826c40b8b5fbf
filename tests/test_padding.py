"""Tests for inpainting.layers.padding: partial conversion, padding modes, pd* builders."""

import copy
import logging

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from inpainting.layers import padding
from inpainting.layers.padding import convert_to_partial_conv, set_padding_mode
from inpainting.layers.partial_conv import PartialConv2d
from inpainting.tasks.classification.models import PADDING_MODELS, pdresnet18, pdvgg16_bn


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
# set_padding_mode
@pytest.mark.parametrize("mode", ["reflect", "replicate"])
def test_set_padding_mode_changes_every_padded_conv_of_a_resnet(mode):
    model = torchvision.models.resnet18(num_classes=3)
    reference = copy.deepcopy(model)
    assert set_padding_mode(model, mode) is model
    padded = _padded_convs(model)
    assert len(padded) == 1 + 16  # the 7x7 stem and the 3x3 convs of the 8 basic blocks
    assert all(conv.padding_mode == mode for _, conv in padded)
    assert model.layer2[0].downsample[0].padding_mode == "zeros"  # 1x1, no padding
    assert type(model.maxpool) is nn.MaxPool2d and model.maxpool.padding == 1
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in reference.state_dict().items())

    model.eval(), reference.eval()
    x = torch.rand(2, 3, 64, 64)  # reflect needs layer4's 2x2 maps larger than the padding
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 3) and torch.isfinite(out).all()
        assert not torch.allclose(out, reference(x), atol=1e-5)


def test_padding_modes_keep_a_constant_image_constant_where_zero_padding_does_not():
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    x = torch.ones(1, 1, 6, 6)
    with torch.no_grad():
        assert conv(x)[0, 0, 0, 0] == 4.0  # zero padding: a dark frame
        for mode in ("reflect", "replicate"):
            assert torch.all(set_padding_mode(conv, mode)(x) == 9.0)


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
def test_resnet_stem_max_pool_is_the_same_under_every_padding(mode):
    """Why set_padding_mode leaves the 3x3 / stride 2 / padding 1 max-pool alone: its -inf
    padding and reflected or replicated borders give the same maxima."""
    x = torch.randn(2, 4, 17, 16)
    padded = F.pad(x, (1, 1, 1, 1), mode=mode)
    assert torch.equal(F.max_pool2d(x, 3, stride=2, padding=1), F.max_pool2d(padded, 3, stride=2))


def test_set_padding_mode_leaves_partial_convs_and_refuses_unknown_modes():
    model = convert_to_partial_conv(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)))
    set_padding_mode(model, "reflect")
    assert isinstance(model[0], PartialConv2d) and model[0].padding_mode == "zeros"
    with pytest.raises(ValueError, match="unknown padding_mode 'circularish'.*reflect"):
        set_padding_mode(model, "circularish")
