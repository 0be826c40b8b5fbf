"""Partial convolution layers.

Implements the partial convolution of Liu et al., "Image Inpainting for Irregular Holes Using
Partial Convolutions" (ECCV 2018), Eq. 1-2, with the renormalisation of NVIDIA's reference layer,
and its use as a padding scheme, Liu et al., "Partial Convolution based Padding" (2018), Eq. 2-4.

For an input ``x`` with validity mask ``M`` (1 = known pixel, 0 = hole) and a sliding window:

    S        = sum of M over the window (over all input channels in multi-channel mode)
    ratio    = W / S where S > 0, else 0        (W = k_h * k_w, or C_in / groups * k_h * k_w)
    out      = conv(x * M) * ratio + b          where S > 0, exactly 0 where S == 0
    new_mask = clamp(S, 0, 1)                   (B, 1, ...); (B, C_out, ...) multi-channel

Compared with the reference layer these layers are stateless (nothing from one batch is kept for
the next), keep all mask arithmetic in float32 under autocast, compute the window sum with a single
box filter instead of a C_out x C_in convolution, and load ``nn.Conv2d`` / ``nn.Conv3d`` state dicts
unchanged (no persistent buffers).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpainting.layers.padding_plan import PaddingPlan, build_padding_plan
from inpainting.layers.renorm import BorderRenormConv, RenormBias, renorm_bias_

__all__ = ["PartialConv2d", "PartialConv3d"]

_CONV_FN = {2: F.conv2d, 3: F.conv3d}
_PADDING_CACHE_SIZE = 16  # input sizes remembered per layer for padding use
# DataParallel replicas are shallow copies that share one layer's cache dict and run in threads.
# Lookups stay lock-free; only a miss (insert + evict, once per input size) takes this lock.
_PADDING_CACHE_LOCK = threading.Lock()


def _mask_dtype(x: Tensor) -> torch.dtype:
    """Masks and window sums stay float32 under autocast, float64 for float64 input."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


class _PartialConvMixin:
    """Shared forward logic of PartialConv2d / PartialConv3d (``_dims`` spatial dimensions)."""

    _dims: int
    multi_channel: bool
    return_mask: bool

    def _init_partial(self, multi_channel: bool, return_mask: bool) -> None:
        if self.padding_mode != "zeros":
            raise ValueError(
                f"{type(self).__name__}: padding_mode={self.padding_mode!r} is not supported; "
                "partial convolution treats the padded border as holes, so use padding_mode='zeros'"
            )
        self.multi_channel = bool(multi_channel)
        self.return_mask = bool(return_mask)
        # Padding-use plans keyed by (spatial size, device, dtype): they depend on nothing else.
        self._padding_cache: dict[tuple, PaddingPlan] = {}

    # ----------------------------------------------------------------------------------------
    # public API
    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """Partial convolution of ``x`` given its validity mask.

        Args:
            x: (B, C_in, *spatial) input features.
            mask: float/bool mask, 1 = known, 0 = hole. Shape (B or 1, 1, *spatial), or
                (B or 1, C_in, *spatial) with ``multi_channel=True``; one map expanded over the
                channels (as this layer returns it) costs what a single-channel mask costs.
                ``None`` means all known (partial-convolution padding): only the zero-padded
                border is renormalised.

        Returns:
            out (B, C_out, *spatial_out), and with ``return_mask=True`` also the updated mask in
            {0, 1} (float32; float64 for float64 input): (B, 1, *spatial_out), or
            with ``multi_channel=True`` (B, C_out, *spatial_out), one channel per output channel
            as in NVIDIA's reference layer, so that multi-channel layers chain. With
            ``groups == 1`` its channels are one map, returned as an expanded view (no copy);
            with ``groups > 1`` each group's output channels carry that group's map.
        """
        if mask is None:
            out = self._padding_forward(x)
            if not self.return_mask:
                return out
            new_mask = self._padding_plan(x).valid
            if new_mask is None:
                new_mask = out.new_ones((1, 1) + out.shape[2:], dtype=_mask_dtype(x))
            return out, self._output_mask(new_mask.to(_mask_dtype(x)), x.shape[0])
        self._check_mask(x, mask)
        mask, window_mask, slide = self._window_mask(x, mask)
        out, new_mask = self._masked_forward(x * mask.to(x.dtype), window_mask, slide)
        return (out, self._output_mask(new_mask, x.shape[0])) if self.return_mask else out

    def forward_concat(
        self, features: Sequence[Tensor], masks: Sequence[Tensor]
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Partial convolution of channel-concatenated inputs, each with one single-channel mask.

        Equivalent to ``forward(cat(features), cat(masks expanded to each input's channels))``
        in multi-channel mode, without ever building a C_in-channel mask: the window sum is one
        single-channel box filter of the channel-count-weighted sum of the masks. This is how
        the U-Net decoder joins upsampled features with the encoder skip.

        Args:
            features: tensors (B, C_k, *spatial) whose channel counts sum to ``in_channels``.
            masks: one mask (B or 1, 1, *spatial) per feature tensor, 1 = known, 0 = hole.

        Returns:
            As :meth:`forward`, but the updated mask keeps a single channel,
            (B, 1, *spatial_out), since single-channel masks are what this method takes: every
            channel of :meth:`forward`'s (B, C_out, *spatial_out) mask equals it.
        """
        if not self.multi_channel or self.groups != 1:
            raise ValueError(
                "forward_concat needs multi_channel=True and groups=1 "
                f"(got multi_channel={self.multi_channel}, groups={self.groups})"
            )
        if len(features) != len(masks) or not features:
            raise ValueError(
                f"forward_concat needs one mask per feature tensor, got {len(features)} feature "
                f"tensors and {len(masks)} masks"
            )
        channels = sum(f.shape[1] for f in features)
        if channels != self.in_channels:
            raise ValueError(
                f"forward_concat: inputs have {channels} channels in total, the layer expects "
                f"in_channels={self.in_channels}"
            )
        for feature, mask in zip(features, masks):
            self._check_mask(feature, mask, single=True)
        checked = [m.to(_mask_dtype(f)) for f, m in zip(features, masks)]
        x = torch.cat([f * m.to(f.dtype) for f, m in zip(features, checked)], dim=1)
        window_mask = sum(f.shape[1] * m for f, m in zip(features, checked))
        slide = self.in_channels * math.prod(self.kernel_size)
        out, new_mask = self._masked_forward(x, window_mask, slide)
        if not self.return_mask:
            return out
        return out, new_mask.expand((x.shape[0],) + new_mask.shape[1:])

    # ----------------------------------------------------------------------------------------
    # internals
    def _conv(self, x: Tensor, weight: Tensor, groups: int) -> Tensor:
        return _CONV_FN[self._dims](
            x, weight, None, self.stride, self.padding, self.dilation, groups
        )

    def _box_sum(self, window_mask: Tensor) -> Tensor:
        """Window sums S of a float32 (B, G, *spatial) mask, per channel, exactly."""
        kernel = tuple(self.kernel_size)
        pool_ok = (not isinstance(self.padding, str) and all(d == 1 for d in self.dilation)
                   and all(2 * p <= k for p, k in zip(self.padding, kernel)))
        if pool_ok:  # a pooling kernel is far cheaper than a one-channel convolution
            pool = F.avg_pool2d if self._dims == 2 else F.avg_pool3d
            return pool(window_mask, kernel, self.stride, self.padding, count_include_pad=True,
                        divisor_override=1)
        groups = window_mask.shape[1]
        ones = window_mask.new_ones((groups, 1) + kernel)
        return self._conv(window_mask, ones, groups)

    def _window_mask(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, int]:
        """Split a checked mask into what :meth:`_masked_forward` needs.

        Returns:
            The mask to multiply ``x`` by (float32, float64 for float64 input), the mask
            (B or 1, G, *spatial) whose window sums are S, and the full window size W.
        """
        mask_dtype = _mask_dtype(x)
        if not self.multi_channel:
            mask = mask.to(mask_dtype)
            return mask, mask, math.prod(self.kernel_size)
        slide = self.in_channels // self.groups * math.prod(self.kernel_size)
        if mask.shape[1] > 1 and mask.stride(1) == 0:
            # Every channel is one map (an expanded view, as a multi-channel layer returns its
            # mask): each group's channel sum is that map times the group's channel count.
            mask = mask[:, :1].to(mask_dtype)
            return mask, mask * (self.in_channels // self.groups), slide
        mask = mask.to(mask_dtype)
        # (B, C_in, *S) -> (B, groups, C_in / groups, *S) -> per-group channel sum
        grouped = mask.unflatten(1, (self.groups, mask.shape[1] // self.groups))
        return mask, grouped.sum(dim=2), slide

    def _output_mask(self, new_mask: Tensor, batch: int) -> Tensor:
        """The returned mask: (B or 1, G, *S) -> (B, 1, *S), or (B, C_out, *S) in multi-channel
        mode, where each of the G window-mask channels covers C_out / G output channels."""
        channels = new_mask.shape[1]
        if self.multi_channel and channels != self.out_channels:
            if channels == 1:  # one map for every output channel: a free view
                return new_mask.expand((batch, self.out_channels) + new_mask.shape[2:])
            new_mask = new_mask.repeat_interleave(self.out_channels // channels, dim=1)
        return new_mask.expand((batch,) + new_mask.shape[1:])

    def _masked_forward(self, x: Tensor, window_mask: Tensor, slide: int) -> tuple[Tensor, Tensor]:
        """Conv of the already-masked ``x``; ``window_mask`` (B, G, *spatial) float32 gives S.

        Returns the output (B, C_out, *spatial_out) and clamp(S, 0, 1) as (B or 1, G,
        *spatial_out), which :meth:`_output_mask` shapes for the caller.
        """
        groups = window_mask.shape[1]
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            window_sum = self._box_sum(window_mask)  # (B, G, *spatial_out), float32
            valid = window_sum > 0
            ratio = torch.where(valid, slide / window_sum, 0.0)  # inf where S == 0 is dropped
            new_mask = window_sum.clamp(0, 1)
        raw = self._conv(x, self.weight, self.groups)  # (B, C_out, *spatial_out)
        ratio = ratio.to(raw.dtype)
        if groups == 1:
            # in place on the fresh conv output: its backward needs only x and the weight
            if self.bias is None:
                out = raw.mul_(ratio)
            else:
                # Knowing that every window saw a known pixel saves a pass; on the CPU the check
                # is free, on a GPU it would cost a synchronisation. A traced graph (torch.export,
                # ONNX, torch.compile, TorchScript) cannot branch on data, so it always takes the
                # general path; a TorchScript trace cannot save an autograd.Function either.
                tracing = torch.jit.is_tracing()
                all_valid = (raw.device.type == "cpu" and not torch.compiler.is_compiling()
                             and not tracing and bool(valid.all()))
                renorm = renorm_bias_ if tracing else RenormBias.apply
                out = renorm(raw, ratio, self.bias.to(raw.dtype),
                             None if all_valid else valid.to(raw.dtype))
            return out, new_mask
        # (B, C_out, *S) -> (B, G, C_out / G, *S) so each group's ratio broadcasts
        out = raw.unflatten(1, (groups, -1)) * ratio.unsqueeze(2)
        if self.bias is not None:
            bias = self.bias.to(raw.dtype).view((1, groups, -1) + (1,) * self._dims)
            out = out + bias * valid.to(raw.dtype).unsqueeze(2)
        return out.flatten(1, 2), new_mask

    def _padding_plan(self, x: Tensor) -> PaddingPlan:
        """How to renormalise the zero-padded border for input ``x``: the
        :func:`build_padding_plan` of its size, device and dtype, built once and cached."""
        key = (tuple(x.shape[2:]), x.device, x.dtype)
        plan = self._padding_cache.get(key)  # lock-free hit: a dict lookup is atomic
        if plan is not None:
            return plan
        plan = build_padding_plan(x, self.kernel_size, self.stride, self.padding,
                                  self.dilation)
        with _PADDING_CACHE_LOCK:  # replicas in other threads may be inserting too
            cache = self._padding_cache
            if key not in cache:
                while len(cache) >= _PADDING_CACHE_SIZE:  # drop the oldest sizes
                    del cache[next(iter(cache))]
                cache[key] = plan
            return cache[key]

    def _padding_forward(self, x: Tensor) -> Tensor:
        """Partial-convolution padding: renormalise windows that overlap the zero border."""
        plan = self._padding_plan(x)
        if plan.boxes is not None and not torch.is_autocast_enabled(x.device.type):
            return BorderRenormConv.apply(x, self.weight, self.bias, plan.boxes, self.stride,
                                          plan.padding, self.dilation, self.groups)
        raw = self._conv(x, self.weight, self.groups)
        ratio = plan.ratio.to(raw.dtype)
        if self.bias is None:
            out = raw * ratio
        else:
            bias = self.bias.to(raw.dtype).view((1, -1) + (1,) * self._dims)
            out = torch.addcmul(bias, raw, ratio)
        if plan.valid is not None:
            out = out * plan.valid.to(raw.dtype)
        return out

    def _check_mask(self, x: Tensor, mask: Tensor, single: bool = False) -> None:
        """Raise ValueError unless ``mask`` fits ``x`` (a single-channel mask if ``single``)."""
        name = type(self).__name__
        expected_dim = self._dims + 2
        if x.dim() != expected_dim:
            raise ValueError(f"{name}: input must be {expected_dim}-D (B, C, ...), got "
                             f"shape {tuple(x.shape)}")
        if mask.dim() != expected_dim:
            raise ValueError(f"{name}: mask must be {expected_dim}-D like the input, got "
                             f"shape {tuple(mask.shape)}")
        channels = 1 if single or not self.multi_channel else x.shape[1]
        if mask.shape[1] != channels:
            hint = (" (pass multi_channel=True for a per-channel mask)"
                    if not self.multi_channel and not single else "")
            raise ValueError(f"{name}: mask has {mask.shape[1]} channels, expected {channels}"
                             f"{hint}")
        if mask.shape[0] not in (1, x.shape[0]) or mask.shape[2:] != x.shape[2:]:
            raise ValueError(f"{name}: mask shape {tuple(mask.shape)} does not match input "
                             f"shape {tuple(x.shape)} (batch must be equal or 1, sizes equal)")


class PartialConv2d(_PartialConvMixin, nn.Conv2d):
    """Drop-in replacement for ``nn.Conv2d`` doing partial convolution (see module docstring).

    Same constructor as ``nn.Conv2d`` plus ``multi_channel`` (mask has C_in channels) and
    ``return_mask`` (forward returns ``(out, new_mask)``). Its state dict is an ``nn.Conv2d``
    state dict.

    Example:
        >>> layer = PartialConv2d(3, 16, 3, padding=1, return_mask=True)
        >>> out, new_mask = layer(torch.rand(2, 3, 32, 32), torch.ones(2, 1, 32, 32))
    """

    _dims = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        multi_channel: bool = False,
        return_mask: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)
        self._init_partial(multi_channel, return_mask)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, multi_channel={self.multi_channel}"


class PartialConv3d(_PartialConvMixin, nn.Conv3d):
    """Drop-in replacement for ``nn.Conv3d`` doing partial convolution on (B, C, D, H, W) input.

    Same arguments and semantics as :class:`PartialConv2d`, with 3-D windows.
    """

    _dims = 3

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int, int],
        stride: int | tuple[int, int, int] = 1,
        padding: int | tuple[int, int, int] | str = 0,
        dilation: int | tuple[int, int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        multi_channel: bool = False,
        return_mask: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)
        self._init_partial(multi_channel, return_mask)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, multi_channel={self.multi_channel}"
