"""PartialConv2d as a drop-in for NVIDIA's layer: updated-mask shapes and chained layers."""

import pytest
import torch
from partial_conv_reference import dense_reference, nvidia_reference

from inpainting.layers import PartialConv2d, PartialConv3d


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
