"""PartialConv2d as a drop-in for NVIDIA's layer: updated-mask shapes, chained layers and
second-order gradients (gradient penalties) through every path of the layer."""

import pytest
import torch
from partial_conv_reference import dense_reference, nvidia_reference
from torch.autograd import gradcheck, gradgradcheck
from torch.func import functional_call

from inpainting.layers import PartialConv2d, PartialConv3d, renorm


@pytest.fixture(autouse=True)
def _one_thread(_seed_everything):
    """gradcheck runs thousands of tiny ops: a second thread adds only synchronisation, which
    costs tens of times the work when other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _holes(shape, dtype=torch.float32):
    """A mask with a different random hole pattern per channel plus one large hole, so that
    some windows see no known pixel at all."""
    mask = (torch.rand(shape) > 0.3).to(dtype)
    mask[..., 2:9, 3:10] = 0
    return mask


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("first_mask", ["holes", "none"])
def test_two_multi_channel_layers_chain_as_nvidia(bias, first_mask):
    first = PartialConv2d(3, 8, 3, padding=1, bias=bias, multi_channel=True,
                          return_mask=True).double()
    second = PartialConv2d(8, 4, 3, stride=2, padding=1, bias=bias, multi_channel=True,
                           return_mask=True).double()
    x = torch.randn(2, 3, 12, 13, dtype=torch.float64, requires_grad=True)
    mask = _holes((2, 3, 12, 13), torch.float64) if first_mask == "holes" else None
    hidden, hidden_mask = first(x, mask)
    out, out_mask = second(hidden, hidden_mask)
    ref_hidden, ref_hidden_mask = nvidia_reference(first, x, mask)
    ref_out, ref_mask = nvidia_reference(second, ref_hidden, ref_hidden_mask)
    assert hidden_mask.shape == (2, 8, 12, 13) and out_mask.shape == (2, 4, 6, 7)
    # NVIDIA divides by S + 1e-8: a relative difference of at most 1e-8 in the ratio
    torch.testing.assert_close(hidden, ref_hidden, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(out, ref_out, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(hidden_mask, ref_hidden_mask, rtol=0, atol=0)
    torch.testing.assert_close(out_mask, ref_mask, rtol=0, atol=0)
    if first_mask == "holes":
        assert (out_mask == 0).any() and (out_mask == 1).any()
    params = [x, first.weight, second.weight] + ([first.bias, second.bias] if bias else [])
    grad = torch.randn_like(out)
    ours = torch.autograd.grad(out, params, grad)
    theirs = torch.autograd.grad(ref_out, params, grad)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-7)


def test_chained_float32_layers_equal_the_dense_definition():
    first = PartialConv2d(4, 6, 3, padding=1, multi_channel=True, return_mask=True)
    second = PartialConv2d(6, 6, 3, padding=1, groups=2, multi_channel=True, return_mask=True)
    x, mask = torch.randn(2, 4, 12, 12), _holes((2, 4, 12, 12))
    hidden, hidden_mask = first(x, mask)
    out, out_mask = second(hidden, hidden_mask)
    ref_hidden, ref_hidden_mask = dense_reference(first, x, mask)
    ref_out, ref_mask = dense_reference(second, ref_hidden, ref_hidden_mask)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_mask, ref_mask)


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_expanded_mask_path_equals_the_definition(groups, dtype):
    """A mask whose channels are one expanded map takes a single-channel shortcut."""
    layer = PartialConv2d(4, 6, 3, stride=2, padding=1, groups=groups, multi_channel=True,
                          return_mask=True).to(dtype)
    x = torch.randn(3, 4, 11, 10, dtype=dtype, requires_grad=True)
    for batch in (3, 1):
        expanded = _holes((batch, 1, 11, 10)).expand(-1, 4, -1, -1)  # float32 for both dtypes
        assert expanded.stride(1) == 0
        copied = expanded.contiguous()
        out, new_mask = layer(x, expanded)
        for ref_out, ref_mask in (layer(x, copied), dense_reference(layer, x, copied.to(dtype))):
            torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(new_mask, ref_mask.to(new_mask.dtype).expand_as(new_mask))
        grad = torch.randn_like(out)
        params = [x, layer.weight, layer.bias]
        for a, b in zip(torch.autograd.grad(out, params, grad),
                        torch.autograd.grad(layer(x, copied)[0], params, grad)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_updated_mask_shape_per_mode():
    x = torch.randn(3, 4, 9, 9)
    mask1, mask4 = _holes((3, 1, 9, 9)), _holes((3, 4, 9, 9))

    def layer(**kwargs):
        return PartialConv2d(4, 6, 3, stride=2, padding=1, return_mask=True, **kwargs)

    single = layer()
    assert single(x, mask1)[1].shape == (3, 1, 5, 5)
    assert single(x)[1].shape == (3, 1, 5, 5)
    multi = layer(multi_channel=True)
    for mask in (mask4, None, mask4[:1]):  # holes, padding use, batch-1 mask
        new_mask = multi(x, mask)[1]
        assert new_mask.shape == (3, 6, 5, 5)
        assert new_mask.stride(1) == 0  # one map for every output channel: a view, no copy
        torch.testing.assert_close(new_mask, new_mask[:, :1].expand_as(new_mask))
    grouped = layer(multi_channel=True, groups=2)
    new_mask = grouped(x, mask4)[1]
    assert new_mask.shape == (3, 6, 5, 5)
    torch.testing.assert_close(new_mask, dense_reference(grouped, x, mask4)[1])
    assert grouped(x)[1].shape == (3, 6, 5, 5)
    concat = multi.forward_concat([x[:, :1], x[:, 1:]], [mask1, mask1])[1]
    assert concat.shape == (3, 1, 5, 5)  # single-channel masks in, single-channel mask out
    volume = PartialConv3d(2, 5, 3, padding=1, multi_channel=True, return_mask=True)
    assert volume(torch.randn(2, 2, 4, 6, 6), torch.ones(2, 2, 4, 6, 6))[1].shape == (
        2, 5, 4, 6, 6)


SECOND_ORDER_CASES = {  # name: (c_in, c_out, kernel, stride, padding, dilation, groups, bias,
    #                          multi_channel, mask)
    "holes": (3, 2, 3, 1, 1, 1, 1, True, False, "holes"),  # windows with S = 0
    "speck": (3, 2, 3, 1, 1, 1, 1, True, False, "speck"),  # every window sees a known pixel
    "holes-no-bias": (3, 2, 3, 1, 1, 1, 1, False, False, "holes"),
    "all-ones-mask": (3, 2, 3, 1, 1, 1, 1, True, False, "ones"),
    "padding": (3, 2, 3, 1, 1, 1, 1, True, False, None),
    "padding-no-bias": (3, 2, 3, 2, 1, 1, 1, False, False, None),
    "padding-wider-than-kernel": (3, 2, 3, 1, 3, 1, 1, True, False, None),  # S = 0 at the border
    "padding-dilated-groups": (4, 4, 3, 1, 2, 2, 2, True, False, None),
    "multi-holes-dilated": (4, 2, 3, 1, 2, 2, 1, True, True, "holes"),
    "multi-groups-stride": (4, 4, 3, 2, 1, 1, 2, True, True, "holes"),
    "multi-padding-stride": (4, 2, 3, 2, 1, 1, 1, True, True, None),
}


def _second_order_setup(case, dims=2):
    c_in, c_out, k, s, p, d, g, bias, multi_channel, mask_kind = SECOND_ORDER_CASES[case]
    layer_cls = PartialConv2d if dims == 2 else PartialConv3d
    layer = layer_cls(c_in, c_out, k, s, p, d, g, bias, multi_channel=multi_channel).double()
    size = (6, 7) if dims == 2 else (4, 5, 5)
    x = torch.randn((2, c_in) + size, dtype=torch.float64, requires_grad=True)
    mask = None
    if mask_kind is not None:
        mask = torch.ones((2, c_in if multi_channel else 1) + size, dtype=torch.float64)
        if mask_kind == "holes":
            mask = (torch.rand(mask.shape) > 0.3).double()
            mask[..., 1:5, 1:5] = 0
        elif mask_kind == "speck":
            mask[..., 3, 3] = 0
    params = [layer.weight] + ([layer.bias] if bias else [])
    return layer, x, mask, params


@pytest.mark.parametrize("padding_backward", ["scaled_copy", "box_corrections"])
@pytest.mark.parametrize("case", list(SECOND_ORDER_CASES))
def test_gradcheck_and_gradgradcheck(case, padding_backward, monkeypatch):
    monkeypatch.setattr(renorm, "_COPY_GRAD_MAX_ELEMENTS",
                        1 << 40 if padding_backward == "scaled_copy" else 0)
    layer, x, mask, params = _second_order_setup(case)
    names = ["weight", "bias"][:len(params)]

    def forward(x, *values):
        return functional_call(layer, dict(zip(names, values)), (x, mask))

    inputs = (x, *(p.detach().clone().requires_grad_() for p in params))
    assert gradcheck(forward, inputs)
    assert gradgradcheck(forward, inputs)


@pytest.mark.parametrize("case", ["holes", "padding"])
def test_gradgradcheck_3d(case):
    layer, x, mask, params = _second_order_setup(case, dims=3)
    names = ["weight", "bias"][:len(params)]

    def forward(x, *values):
        return functional_call(layer, dict(zip(names, values)), (x, mask))

    assert gradgradcheck(forward, (x, *(p.detach().clone().requires_grad_() for p in params)))


def _gradient_penalty_grads(forward, x, params):
    """d/d(x, params) of |d sum(out^2) / dx|^2, as a gradient penalty trains it."""
    out = forward(x)
    (grad_x,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
    return torch.autograd.grad(grad_x.square().sum(), [x] + params)


@pytest.mark.parametrize("padding_backward", ["scaled_copy", "box_corrections"])
@pytest.mark.parametrize("case", list(SECOND_ORDER_CASES))
def test_gradient_penalty_equals_plain_ops_reference(case, padding_backward, monkeypatch):
    monkeypatch.setattr(renorm, "_COPY_GRAD_MAX_ELEMENTS",
                        1 << 40 if padding_backward == "scaled_copy" else 0)
    layer, x, mask, params = _second_order_setup(case)
    ours = _gradient_penalty_grads(lambda x: layer(x, mask), x, params)
    theirs = _gradient_penalty_grads(lambda x: dense_reference(layer, x, mask)[0], x, params)
    for a, b in zip(ours, theirs):
        assert a.abs().sum() > 0
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_gradient_penalty_through_chained_layers_equals_nvidia():
    first = PartialConv2d(3, 5, 3, padding=1, multi_channel=True, return_mask=True).double()
    second = PartialConv2d(5, 2, 3, padding=1, multi_channel=True, return_mask=True).double()
    x = torch.randn(2, 3, 10, 10, dtype=torch.float64, requires_grad=True)
    mask = _holes((2, 3, 10, 10), torch.float64)
    params = [first.weight, first.bias, second.weight, second.bias]

    def ours(x):
        return second(*first(x, mask))[0]

    def theirs(x):
        return nvidia_reference(second, *nvidia_reference(first, x, mask))[0]

    # NVIDIA's S + 1e-8, compounded over two layers and two derivatives
    for a, b in zip(_gradient_penalty_grads(ours, x, params),
                    _gradient_penalty_grads(theirs, x, params)):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
