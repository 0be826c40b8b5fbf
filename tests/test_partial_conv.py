"""PartialConv2d / PartialConv3d against the paper's definition and the reference semantics."""

import copy
import io
import threading
import time

import pytest
import torch
from partial_conv_reference import dense_reference
from torch import nn

from inpainting.layers import PartialConv2d, PartialConv3d, renorm

LAYOUTS = [  # (c_in, c_out, kernel, stride, padding, dilation, groups, bias)
    (4, 6, 3, 1, 1, 1, 1, True),
    (4, 6, 3, 2, 1, 1, 1, True),
    (4, 6, 5, 2, 2, 2, 2, False),
    (3, 8, 7, 1, 3, 1, 1, True),
    (4, 6, 4, 2, 2, 1, 1, True),  # even kernel
    (4, 6, 3, 1, 3, 1, 1, True),  # padding wider than the kernel: windows with S = 0
    (4, 4, 3, 2, 1, 1, 4, True),  # depthwise
    (4, 6, (3, 5), (1, 2), (1, 2), 1, 1, True),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("multi_channel", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("padding_backward", ["scaled_copy", "box_corrections"])
def test_matches_dense_definition_with_gradients(layout, multi_channel, with_mask,
                                                 padding_backward, monkeypatch):
    # padding use picks its backward by gradient size; force each of the two
    limit = 1 << 40 if padding_backward == "scaled_copy" else 0
    monkeypatch.setattr(renorm, "_COPY_GRAD_MAX_ELEMENTS", limit)
    c_in, c_out, k, s, p, d, g, bias = layout
    layer = PartialConv2d(c_in, c_out, k, s, p, d, g, bias, multi_channel=multi_channel,
                          return_mask=True)
    for size in [(9, 11), (16, 16)]:
        x = torch.randn((2, c_in) + size, requires_grad=True)
        mask = None
        if with_mask:
            mask = (torch.rand((2, c_in if multi_channel else 1) + size) > 0.5).float()
        out, new_mask = layer(x, mask)
        ref_out, ref_mask = dense_reference(layer, x, mask)
        torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
        assert new_mask.shape == ref_mask.shape  # (B, C_out, ...) multi-channel, else (B, 1, ...)
        torch.testing.assert_close(new_mask, ref_mask)
        grad = torch.randn_like(out)
        params = [x, layer.weight] + ([layer.bias] if bias else [])
        ours = torch.autograd.grad(out, params, grad)
        theirs = torch.autograd.grad(ref_out, params, grad)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("hole", ["small", "large"])
@pytest.mark.parametrize("dims", [2, 3])
def test_fused_and_general_bias_paths_match_the_definition(hole, dims, monkeypatch):
    """A small hole leaves every window a known pixel (one fused pass); a large one does not."""
    calls = []
    real_apply = renorm.RenormBias.apply

    def spy(raw, ratio, bias, valid):
        calls.append(valid is None)
        return real_apply(raw, ratio, bias, valid)

    monkeypatch.setattr(renorm.RenormBias, "apply", spy)
    layer_cls = PartialConv2d if dims == 2 else PartialConv3d
    layer = layer_cls(3, 5, 3, padding=1, return_mask=True)
    size = (12,) * dims
    x = torch.randn((2, 3) + size, requires_grad=True)
    mask = torch.ones((2, 1) + size)
    cut = slice(4, 6) if hole == "small" else slice(2, 10)
    mask[(slice(None), slice(None)) + (cut,) * dims] = 0
    out, _ = layer(x, mask)
    assert calls == [hole == "small"]
    ref_out, _ = dense_reference(layer, x, mask)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(out)
    params = [x, layer.weight, layer.bias]
    for a, b in zip(torch.autograd.grad(out, params, grad),
                    torch.autograd.grad(ref_out, params, grad)):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.filterwarnings(r"ignore:`torch\.jit:FutureWarning")
def test_a_torchscript_trace_keeps_the_general_path_and_saves():
    """Traced where every window saw a known pixel (where eager takes the fused pass), the
    trace still renormalises holes, and it holds no autograd.Function, so it can be saved."""
    layer = PartialConv2d(3, 5, 3, padding=1, return_mask=True)
    x, mask = torch.randn(2, 3, 12, 12), torch.ones(2, 1, 12, 12)
    traced = torch.jit.trace(layer, (x, mask), check_trace=False)
    torch.jit.save(traced, io.BytesIO())
    mask[..., 2:10, 2:10] = 0
    out, new_mask = traced(x, mask)
    ref_out, ref_mask = dense_reference(layer, x, mask)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(new_mask, ref_mask)


@pytest.mark.parametrize("use_mask", [False, True])
def test_all_ones_equals_conv_inside_with_known_border_factors(use_mask):
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    layer = PartialConv2d(2, 3, 3, padding=1, bias=False)
    layer.load_state_dict(conv.state_dict())
    x = torch.randn(1, 2, 8, 8)
    mask = torch.ones(1, 1, 8, 8) if use_mask else None
    out, plain = layer(x, mask), conv(x)
    torch.testing.assert_close(out[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1])
    # edges see 6 of 9 taps (factor 9/6), corners 4 of 9 (factor 9/4)
    torch.testing.assert_close(out[..., 0, 1:-1], 1.5 * plain[..., 0, 1:-1])
    torch.testing.assert_close(out[..., 1:-1, -1], 1.5 * plain[..., 1:-1, -1])
    for corner in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
        torch.testing.assert_close(out[..., corner[0], corner[1]],
                                   2.25 * plain[..., corner[0], corner[1]])


def test_bias_is_not_rescaled_at_the_border():
    layer = PartialConv2d(1, 1, 3, padding=1)
    nn.init.constant_(layer.weight, 1.0)
    nn.init.constant_(layer.bias, 0.5)
    out = layer(torch.ones(1, 1, 4, 4))
    # every window renormalised to 9 taps of 1, plus the bias once
    torch.testing.assert_close(out, torch.full((1, 1, 4, 4), 9.5))


def test_hand_computed_5x5_with_hole():
    layer = PartialConv2d(1, 1, 3, padding=1, bias=True, return_mask=True)
    nn.init.constant_(layer.weight, 1.0)
    nn.init.constant_(layer.bias, 1.0)
    x = torch.arange(25, dtype=torch.float32).view(1, 1, 5, 5)
    mask = torch.ones(1, 1, 5, 5)
    mask[0, 0, 1:4, 1:4] = 0  # a 3x3 hole around the centre pixel 12
    out, new_mask = layer(x, mask)
    # Centre window sees only holes: S = 0 -> output 0, mask 0.
    assert out[0, 0, 2, 2] == 0 and new_mask[0, 0, 2, 2] == 0
    # Position (1, 1): window rows 0-2, cols 0-2; known pixels 0, 1, 2, 5, 10 -> S = 5.
    expected = (0 + 1 + 2 + 5 + 10) * 9 / 5 + 1
    torch.testing.assert_close(out[0, 0, 1, 1], torch.tensor(expected))
    # Corner (0, 0): window inside the image is rows 0-1, cols 0-1; known 0, 1, 5 -> S = 3.
    torch.testing.assert_close(out[0, 0, 0, 0], torch.tensor((0 + 1 + 5) * 9 / 3 + 1))
    # Position (2, 1): known 5, 10, 15 (col 0) -> S = 3.
    torch.testing.assert_close(out[0, 0, 2, 1], torch.tensor((5 + 10 + 15) * 9 / 3 + 1))
    expected_mask = torch.ones(5, 5)
    expected_mask[2, 2] = 0
    torch.testing.assert_close(new_mask[0, 0], expected_mask)


def test_fully_masked_windows_give_zero_output_and_finite_gradients():
    layer = PartialConv2d(3, 4, 3, padding=1, return_mask=True)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    mask = torch.ones(2, 1, 8, 8)
    mask[:, :, 2:7, 2:7] = 0
    out, new_mask = layer(x, mask)
    assert torch.all(out[:, :, 3:6, 3:6] == 0)
    assert torch.all(new_mask[:, :, 3:6, 3:6] == 0)
    assert torch.all(new_mask[:, :, :2] == 1)
    out.square().sum().backward()
    for grad in (x.grad, layer.weight.grad, layer.bias.grad):
        assert torch.isfinite(grad).all()
    # no gradient reaches the hole pixels of the input
    assert torch.all(x.grad[:, :, 2:7, 2:7] == 0)
    assert x.grad[:, :, :2].abs().sum() > 0


def test_all_hole_input_is_finite():
    layer = PartialConv2d(3, 4, 3, padding=1, return_mask=True)
    out, new_mask = layer(torch.randn(1, 3, 6, 6), torch.zeros(1, 1, 6, 6))
    assert torch.all(out == 0) and torch.all(new_mask == 0)


def test_multi_channel_equals_sum_over_channels_definition():
    layer = PartialConv2d(3, 2, 3, padding=1, multi_channel=True, bias=False)
    nn.init.constant_(layer.weight, 1.0)
    x = torch.ones(1, 3, 5, 5)
    mask = torch.ones(1, 3, 5, 5)
    mask[0, 0] = 0  # channel 0 entirely unknown
    out = layer(x, mask)
    # interior window: 2 channels x 9 taps known of W = 27, raw sum 18 -> 18 * 27 / 18 = 27
    torch.testing.assert_close(out[0, :, 2, 2], torch.tensor([27.0, 27.0]))


def test_forward_concat_equals_multi_channel_forward():
    layer = PartialConv2d(5, 4, 3, padding=1, multi_channel=True, return_mask=True)
    a, b = torch.randn(2, 3, 8, 8), torch.randn(2, 2, 8, 8)
    mask_a = (torch.rand(2, 1, 8, 8) > 0.4).float()
    mask_b = (torch.rand(2, 1, 8, 8) > 0.6).float()
    out, new_mask = layer.forward_concat([a, b], [mask_a, mask_b])
    full_mask = torch.cat([mask_a.expand(-1, 3, -1, -1), mask_b.expand(-1, 2, -1, -1)], 1)
    ref_out, ref_mask = layer(torch.cat([a, b], 1), full_mask)
    torch.testing.assert_close(out, ref_out)
    assert new_mask.shape == (2, 1, 8, 8) and ref_mask.shape == (2, 4, 8, 8)
    torch.testing.assert_close(new_mask.expand_as(ref_mask), ref_mask)
    with pytest.raises(ValueError, match="in_channels=5"):
        layer.forward_concat([a, a], [mask_a, mask_a])
    with pytest.raises(ValueError, match="multi_channel=True"):
        PartialConv2d(5, 4, 3).forward_concat([a, b], [mask_a, mask_b])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_gives_no_nan(dtype):
    layer = PartialConv2d(8, 8, 3, padding=1, return_mask=True)
    x = torch.randn(2, 8, 16, 16)
    mask = torch.ones(2, 1, 16, 16)
    mask[:, :, 3:13, 3:13] = 0  # large hole: many windows with S = 0
    with torch.autocast("cpu", dtype=dtype):
        out, new_mask = layer(x, mask)
        padded = layer(x)[0]
    assert out.dtype == dtype and new_mask.dtype == torch.float32
    assert torch.isfinite(out).all() and torch.isfinite(padded).all()
    ref, _ = dense_reference(layer, x, mask)
    torch.testing.assert_close(out.float(), ref, atol=0.1, rtol=0.05)


def test_stateless_between_calls_and_under_deepcopy():
    layer = PartialConv2d(2, 2, 3, padding=1)
    x = torch.randn(1, 2, 6, 6)
    hole = torch.ones(1, 1, 6, 6)
    hole[..., :3, :3] = 0
    first = layer(x, torch.ones(1, 1, 6, 6))
    layer(x, hole)  # a different mask in between must not leak into the next call
    torch.testing.assert_close(layer(x, torch.ones(1, 1, 6, 6)), first)
    tensors = [k for k, v in vars(layer).items() if isinstance(v, torch.Tensor)]
    assert tensors == []  # nothing per-batch kept on the module
    torch.testing.assert_close(copy.deepcopy(layer)(x, hole), layer(x, hole))


def test_state_dict_is_a_conv2d_state_dict():
    conv = nn.Conv2d(3, 5, 3, padding=1)
    layer = PartialConv2d(3, 5, 3, padding=1)
    layer(torch.randn(1, 3, 8, 8))  # fill the padding cache; it must not show up
    assert layer.state_dict().keys() == conv.state_dict().keys()
    layer.load_state_dict(conv.state_dict())
    conv.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer.weight, conv.weight)


def test_padding_cache_is_per_size():
    layer = PartialConv2d(1, 1, 3, padding=1, bias=False)
    nn.init.constant_(layer.weight, 1.0)
    for size in [(4, 4), (6, 5), (4, 4)]:
        torch.testing.assert_close(layer(torch.ones((1, 1) + size)), torch.full((1, 1) + size, 9.0))
    assert len(layer._padding_cache) == 2


def test_return_mask_without_mask_is_all_ones():
    layer = PartialConv2d(2, 3, 3, stride=2, padding=1, return_mask=True)
    out, new_mask = layer(torch.randn(3, 2, 9, 9))
    assert new_mask.shape == (3, 1, 5, 5) and torch.all(new_mask == 1)
    assert out.shape == (3, 3, 5, 5)


def test_groups_multi_channel_masks_per_group():
    layer = PartialConv2d(4, 4, 3, padding=1, groups=2, multi_channel=True, return_mask=True)
    mask = torch.ones(1, 4, 6, 6)
    mask[:, :2] = 0  # group 0 sees nothing
    out, new_mask = layer(torch.randn(1, 4, 6, 6), mask)
    assert new_mask.shape == (1, 4, 6, 6)
    assert torch.all(new_mask[:, :2] == 0) and torch.all(new_mask[:, 2:] == 1)
    assert torch.all(out[:, :2] == 0)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="padding_mode='reflect' is not supported"):
        PartialConv2d(1, 1, 3, padding=1, padding_mode="reflect")
    layer = PartialConv2d(3, 2, 3, padding=1)
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match="multi_channel=True"):
        layer(x, torch.ones(2, 3, 8, 8))
    with pytest.raises(ValueError, match="does not match input"):
        layer(x, torch.ones(2, 1, 7, 8))
    with pytest.raises(ValueError, match="4-D"):
        layer(x, torch.ones(1, 8, 8))
    # a batch-1 mask broadcasts over the batch
    torch.testing.assert_close(layer(x, torch.ones(1, 1, 8, 8)), layer(x, torch.ones(2, 1, 8, 8)))


@pytest.mark.parametrize("with_mask", [False, True])
def test_partial_conv3d_matches_definition(with_mask):
    layer = PartialConv3d(2, 3, 3, stride=(1, 2, 2), padding=1)
    conv = nn.Conv3d(2, 3, 3, stride=(1, 2, 2), padding=1)
    assert layer.state_dict().keys() == conv.state_dict().keys()
    x = torch.randn(2, 2, 5, 8, 8, requires_grad=True)
    mask = (torch.rand(2, 1, 5, 8, 8) > 0.5).float() if with_mask else None
    out = layer(x, mask)
    ref, _ = dense_reference(layer, x, mask)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    grads = torch.autograd.grad(out.sum(), [x, layer.weight, layer.bias])
    ref_grads = torch.autograd.grad(ref.sum(), [x, layer.weight, layer.bias])
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_float64_mask_path_equals_padding_path_exactly():
    layer = PartialConv2d(2, 3, 7, stride=2, padding=3).double()
    x = torch.randn(1, 2, 13, 10, dtype=torch.float64)
    torch.testing.assert_close(layer(x, torch.ones(1, 1, 13, 10, dtype=torch.float64)), layer(x),
                               atol=1e-12, rtol=1e-12)


def test_padding_cache_is_bounded():
    layer = PartialConv2d(1, 1, 3, padding=1)
    for size in range(4, 40):
        layer(torch.ones(1, 1, size, size))
    assert len(layer._padding_cache) <= 16


def test_batch_one_mask_gives_a_batch_sized_updated_mask():
    x = torch.randn(3, 4, 8, 8)
    mask = (torch.rand(1, 1, 8, 8) > 0.3).float()
    layer = PartialConv2d(4, 6, 3, stride=2, padding=1, return_mask=True)
    out, new_mask = layer(x, mask)
    assert out.shape == (3, 6, 4, 4) and new_mask.shape == (3, 1, 4, 4)
    torch.testing.assert_close(new_mask, layer(x, mask.expand(3, -1, -1, -1))[1])
    multi = PartialConv2d(4, 6, 3, padding=1, multi_channel=True, return_mask=True)
    assert multi(x, mask.expand(1, 4, -1, -1))[1].shape == (3, 6, 8, 8)
    grouped = PartialConv2d(4, 6, 3, padding=1, groups=2, multi_channel=True, return_mask=True)
    assert grouped(x, mask.expand(1, 4, -1, -1))[1].shape == (3, 6, 8, 8)
    concat = multi.forward_concat([x[:, :3], x[:, 3:]], [mask, mask])[1]
    assert concat.shape == (3, 1, 8, 8)
    layer3d = PartialConv3d(2, 3, 3, padding=1, return_mask=True)
    volume_mask = torch.ones(1, 1, 4, 6, 6)
    assert layer3d(torch.randn(2, 2, 4, 6, 6), volume_mask)[1].shape == (2, 1, 4, 6, 6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_gradients_are_finite_with_fully_masked_windows(dtype):
    layer = PartialConv2d(8, 8, 3, padding=1, return_mask=True)
    x = torch.randn(2, 8, 16, 16, requires_grad=True)
    mask = torch.ones(2, 1, 16, 16)
    mask[:, :, 3:13, 3:13] = 0  # windows inside rows/cols 4..11 see no known pixel
    with torch.autocast("cpu", dtype=dtype):
        out, _ = layer(x, mask)
    assert torch.all(out[:, :, 4:12, 4:12] == 0)
    out.float().square().sum().backward()
    for grad in (x.grad, layer.weight.grad, layer.bias.grad):
        assert grad is not None and torch.isfinite(grad).all()
    assert torch.all(x.grad[:, :, 3:13, 3:13] == 0)  # nothing reaches the hole pixels
    assert layer.weight.grad.abs().sum() > 0


class _PreemptiveDict(dict):
    """A dict that lets other threads run before each size query or change, as an unlucky
    thread switch (or a free-threaded interpreter) would."""

    def _yield(self):
        time.sleep(0)  # releases the GIL

    def __len__(self):
        self._yield()
        return super().__len__()

    def __iter__(self):
        self._yield()
        return super().__iter__()

    def __setitem__(self, key, value):
        self._yield()
        super().__setitem__(key, value)

    def __delitem__(self, key):
        self._yield()
        super().__delitem__(key)

    def pop(self, *args):
        self._yield()
        return super().pop(*args)


def test_padding_cache_is_safe_under_threads():
    """DataParallel replicas share the cache dict and run in threads: many sizes, many misses."""
    layer = PartialConv2d(1, 1, 3, padding=1, bias=False)
    nn.init.constant_(layer.weight, 1.0)
    layer._padding_cache = _PreemptiveDict()
    replicas = [copy.copy(layer) for _ in range(8)]  # shallow copies, like DataParallel's
    assert all(r._padding_cache is layer._padding_cache for r in replicas)
    sizes = list(range(3, 43))  # more sizes than the cache holds: constant eviction
    inputs = {s: torch.ones(1, 1, s, s) for s in sizes}
    errors, seen_sizes = [], []

    def hammer(replica, offset):
        try:
            for i in range(100):
                size = sizes[(7 * i + offset) % len(sizes)]
                out = replica(inputs[size])
                seen_sizes.append(dict.__len__(replica._padding_cache))
                if not torch.allclose(out, torch.full_like(out, 9.0)):
                    errors.append(f"wrong output at size {size}")
        except Exception as error:  # reported by the assert below
            errors.append(repr(error))

    threads = [threading.Thread(target=hammer, args=(r, k)) for k, r in enumerate(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert max(seen_sizes) <= 16
