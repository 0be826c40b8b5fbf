"""The partial-convolution U-Net of Liu et al., "Image Inpainting for Irregular Holes Using
Partial Convolutions" (ECCV 2018), Section 3.3 and Table of the supplementary material.

Encoder: ``depth`` partial convolutions with stride 2 (7x7, 5x5, 5x5, then 3x3), ReLU, BatchNorm
on all but the first. Decoder: one layer per encoder layer; nearest x2 upsampling of the features
and of the mask, concatenation with the encoder skip (features and masks separately), a 3x3
partial convolution, BatchNorm and LeakyReLU(0.2). The last decoder layer takes the input image
and its mask as skip and outputs the image channels with neither BatchNorm nor activation.

Masks travel through the network as single-channel tensors (B, 1, H, W), 1 = known, 0 = hole. The
decoder's concatenated mask is multi-channel in meaning; its window sum is computed by
:meth:`PartialConv2d.forward_concat` as one box filter of channel-count-weighted masks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from inpainting.layers import PartialConv2d
from inpainting.models.masked_norm import NORMS, MaskedBatchNorm2d
from inpainting.models.prefill import PREFILLS, diffusion_fill

__all__ = ["NORMS", "PREFILLS", "PConvUNet", "UPSAMPLING_MODES", "VALUE_RANGES",
           "encoder_channels"]

# Decoder upsampling (``F.interpolate`` modes); ``model.upsampling`` in a config is checked
# against this tuple.
UPSAMPLING_MODES: tuple[str, ...] = ("nearest", "bilinear")

# The range the network computes in: "unit" is the images' own [0, 1]; "symmetric" maps them to
# [-1, 1] inside the forward pass and the output back (mmagic's PConv models are trained so).
VALUE_RANGES: tuple[str, ...] = ("unit", "symmetric")

# Kernel sizes of the first encoder layers (Liu et al. 2018); every later layer uses 3x3.
_ENCODER_KERNELS = (7, 5, 5)
# Channel multipliers of base_channels per encoder layer; every later layer uses 8x.
_ENCODER_MULTIPLIERS = (1, 2, 4)


def encoder_channels(depth: int, base_channels: int) -> list[int]:
    """Output channels of the encoder layers: base x (1, 2, 4, 8, 8, ...)."""
    return [base_channels * (_ENCODER_MULTIPLIERS[i] if i < 3 else 8) for i in range(depth)]


def _make_norm(norm: str | None, channels: int) -> nn.Module:
    """BatchNorm of the paper ("batch"), its masked variant ("masked_batch") or none (None)."""
    if norm is None:
        return nn.Identity()
    return MaskedBatchNorm2d(channels) if norm == "masked_batch" else nn.BatchNorm2d(channels)


def _normalise(norm: nn.Module, x: Tensor, mask: Tensor) -> Tensor:
    """Apply ``norm`` to ``x``; a masked BatchNorm takes its statistics where ``mask`` is 1."""
    return norm(x, mask) if isinstance(norm, MaskedBatchNorm2d) else norm(x)


class _EncoderBlock(nn.Module):
    """Strided partial conv -> (BatchNorm) -> ReLU; the mask follows the convolution.

    With ``multi_input`` the block takes several inputs, each with its own single-channel mask,
    joined by :meth:`PartialConv2d.forward_concat` (the masked image and its prefill).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, norm: str | None,
                 multi_input: bool = False):
        super().__init__()
        self.conv = PartialConv2d(in_channels, out_channels, kernel_size, stride=2,
                                  padding=kernel_size // 2, bias=norm is None,
                                  multi_channel=multi_input, return_mask=True)
        self.norm = _make_norm(norm, out_channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, inputs: list[Tensor], masks: list[Tensor]) -> tuple[Tensor, Tensor]:
        if self.conv.multi_channel:
            out, mask = self.conv.forward_concat(inputs, masks)
        else:
            out, mask = self.conv(inputs[0], masks[0])
        return self.act(_normalise(self.norm, out, mask)), mask


class _DecoderBlock(nn.Module):
    """Upsample features and mask x2, join the skip, 3x3 partial conv -> (BatchNorm -> LeakyReLU).

    The last block of the network (``last=True``) has a bias and neither BatchNorm nor activation.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, last: bool,
                 upsampling: str, norm: str):
        super().__init__()
        self.upsampling = upsampling
        self.conv = PartialConv2d(in_channels + skip_channels, out_channels, 3, padding=1,
                                  bias=last, multi_channel=True, return_mask=True)
        self.norm = _make_norm(None if last else norm, out_channels)
        self.act = nn.Identity() if last else nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: Tensor, mask: Tensor, skips: list[Tensor], skip_masks: list[Tensor]
                ) -> tuple[Tensor, Tensor]:
        if self.upsampling == "nearest":
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            x = F.interpolate(x, scale_factor=2.0, mode=self.upsampling, align_corners=False)
        # the mask is always upsampled by nearest so that it stays in {0, 1}
        mask = F.interpolate(mask, scale_factor=2.0, mode="nearest")
        out, mask = self.conv.forward_concat([x, *skips], [mask, *skip_masks])
        return self.act(_normalise(self.norm, out, mask)), mask


class PConvUNet(nn.Module):
    """U-Net of partial convolutions with per-layer mask propagation (Liu et al. 2018).

    Args:
        depth: number of encoder layers (and of decoder layers); 8 is the paper's 512x512 model,
            7 suits 256x256. Inputs must have H and W divisible by ``2 ** depth``.
        base_channels: channels of the first encoder layer; later layers use 2x, 4x, 8x, 8x, ...
        in_channels: image channels (3 for RGB, 1 for grayscale); also the output channels.
        upsampling: "nearest" (the paper) or "bilinear" for the decoder features; the mask is
            always upsampled by nearest neighbour.
        freeze_encoder_bn: keep the encoder BatchNorm layers frozen (the paper's fine-tuning
            phase), see :meth:`set_freeze_encoder_bn`.
        norm: "batch" (the paper) or "masked_batch" (beyond the paper: BatchNorm statistics
            over known positions only, :mod:`inpainting.models.masked_norm`).
        prefill: "none" (the paper) or "diffusion" (beyond the paper): the network also sees
            :func:`~inpainting.models.prefill.diffusion_fill` of the holes as input and predicts
            a residual on top of it; its last layer starts at zero, so the untrained network
            returns the fill.
        value_range: "unit" (the images' [0, 1]) or "symmetric": the network computes in
            [-1, 1] (``2 * image - 1`` in, ``(output + 1) / 2`` out), as mmagic's published
            PConv models do; the inputs and outputs of ``forward`` stay in [0, 1] either way.

    Example:
        >>> model = PConvUNet(depth=7)
        >>> output, final_mask = model(torch.rand(1, 3, 256, 256), torch.ones(1, 1, 256, 256))
    """

    def __init__(self, depth: int = 8, base_channels: int = 64, in_channels: int = 3,
                 upsampling: str = "nearest", freeze_encoder_bn: bool = False,
                 norm: str = "batch", prefill: str = "none", value_range: str = "unit") -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"PConvUNet: depth must be >= 1, got {depth}")
        if base_channels < 1 or in_channels < 1:
            raise ValueError(f"PConvUNet: base_channels and in_channels must be >= 1, got "
                             f"{base_channels} and {in_channels}")
        for name, value, valid in (("upsampling", upsampling, UPSAMPLING_MODES),
                                   ("norm", norm, NORMS), ("prefill", prefill, PREFILLS),
                                   ("value_range", value_range, VALUE_RANGES)):
            if value not in valid:
                raise ValueError(f"PConvUNet: unknown {name} {value!r} "
                                 f"(valid: {', '.join(valid)})")
        self.depth = depth
        self.in_channels = in_channels
        self.prefill = prefill
        self.value_range = value_range
        channels = encoder_channels(depth, base_channels)
        kernels = [_ENCODER_KERNELS[i] if i < 3 else 3 for i in range(depth)]
        # input channels of each encoder layer; a prefill doubles the image's
        inputs = [in_channels * (1 if prefill == "none" else 2)] + channels[:-1]
        self.encoder = nn.ModuleList(
            _EncoderBlock(inputs[i], channels[i], kernels[i], norm=norm if i > 0 else None,
                          multi_input=i == 0 and prefill != "none")
            for i in range(depth)
        )
        # decoder[i] mirrors encoder[i]: upsampled encoder[i] output (or decoder[i + 1] output,
        # same channels) joined with the skip encoder[i] received as input; decoder[0] returns
        # the image channels.
        self.decoder = nn.ModuleList(
            _DecoderBlock(channels[i], inputs[i], inputs[i] if i else in_channels, last=i == 0,
                          upsampling=upsampling, norm=norm)
            for i in range(depth)
        )
        self._freeze_encoder_bn = False
        self._init_weights()
        self.set_freeze_encoder_bn(freeze_encoder_bn)

    def _init_weights(self) -> None:
        """Kaiming-normal (fan-in) convolutions and zero biases, BatchNorm as (1, 0); with a
        prefill the last convolution starts at zero (the output starts as the prefill)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, _BatchNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if self.prefill != "none":
            nn.init.zeros_(self.decoder[0].conv.weight)

    # ----------------------------------------------------------------------------------------
    # BatchNorm freezing for fine-tuning
    @property
    def freeze_encoder_bn(self) -> bool:
        """Whether the encoder BatchNorm layers are frozen (see :meth:`set_freeze_encoder_bn`)."""
        return self._freeze_encoder_bn

    def _encoder_norms(self) -> list[_BatchNorm]:
        # the common base class, so that layers swapped by nn.SyncBatchNorm.convert_sync_batchnorm
        # (or any other BatchNorm flavour) are found too
        return [m for block in self.encoder for m in block.modules()
                if isinstance(m, _BatchNorm)]

    def set_freeze_encoder_bn(self, flag: bool) -> PConvUNet:
        """Freeze (or unfreeze) the encoder BatchNorm layers, as in the paper's fine-tuning phase.

        While frozen, the encoder BatchNorm layers normalise with their running statistics and
        do not update them (eval mode, kept through later ``model.train()`` calls), and their
        affine parameters have ``requires_grad=False`` so optimisers leave them unchanged.
        Build the optimiser after calling this, or the frozen parameters stay in its groups
        (harmless: they get no gradient, so Adam skips them).

        Returns:
            The model itself.
        """
        self._freeze_encoder_bn = bool(flag)
        for norm in self._encoder_norms():
            for param in norm.parameters():
                param.requires_grad_(not self._freeze_encoder_bn)
        self.train(self.training)
        return self

    def train(self, mode: bool = True) -> PConvUNet:
        """As ``nn.Module.train``, but frozen encoder BatchNorm layers stay in eval mode."""
        super().train(mode)
        if self._freeze_encoder_bn:
            for norm in self._encoder_norms():
                norm.eval()
        return self

    # ----------------------------------------------------------------------------------------
    def _check_inputs(self, image: Tensor, mask: Tensor) -> None:
        if image.dim() != 4 or image.shape[1] != self.in_channels:
            raise ValueError(f"PConvUNet: image must be (B, {self.in_channels}, H, W), got shape "
                             f"{tuple(image.shape)}")
        height, width = image.shape[2:]
        multiple = 2 ** self.depth
        if height % multiple or width % multiple:
            fit_h, fit_w = -(-height // multiple) * multiple, -(-width // multiple) * multiple
            raise ValueError(
                f"PConvUNet(depth={self.depth}): image size {height}x{width} is not divisible by "
                f"2**depth = {multiple}; pad or resize the input to a multiple of {multiple} "
                f"(e.g. {fit_h}x{fit_w}) or use a smaller depth"
            )
        expected = (image.shape[0], 1, height, width)
        if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] not in (1, image.shape[0]) \
                or tuple(mask.shape[2:]) != (height, width):
            raise ValueError(f"PConvUNet: mask must have shape {expected} (1 = known, 0 = hole; "
                             f"batch 1 broadcasts), got {tuple(mask.shape)}")

    def forward(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Inpaint ``image`` where ``mask`` is 0.

        Args:
            image: (B, C, H, W) in [0, 1], C = ``in_channels``; H, W divisible by 2**depth.
                Values in holes are ignored.
            mask: (B, 1, H, W) (or (1, 1, H, W)), 1 = known pixel, 0 = hole; float or bool.

        Returns:
            output: (B, C, H, W), the raw network prediction everywhere (not composited; the
                composite is ``mask * image + (1 - mask) * output``).
            final_mask: (B, 1, H, W) float32 in {0, 1}, 1 where the network saw a known pixel.

        Raises:
            ValueError: if the shapes do not fit (the message says how to fix them).
        """
        self._check_inputs(image, mask)
        mask = mask.float().expand(image.shape[0], -1, -1, -1)  # batch-1 masks broadcast
        fill = diffusion_fill(image, mask).to(image.dtype) if self.prefill != "none" else None
        symmetric = self.value_range == "symmetric"
        if symmetric:  # hole values stay irrelevant: every partial conv multiplies by the mask
            image = image * 2 - 1
            fill = fill * 2 - 1 if fill is not None else None
        if fill is None:
            inputs, masks = [image], [mask]
        else:  # the fill is known everywhere
            inputs, masks = [image, fill], [mask, torch.ones_like(mask)]
        skips: list[tuple[list[Tensor], list[Tensor]]] = []
        for block in self.encoder:
            skips.append((inputs, masks))
            x, x_mask = block(inputs, masks)
            inputs, masks = [x], [x_mask]
        for block, (skip, skip_masks) in zip(reversed(self.decoder), reversed(skips)):
            x, x_mask = block(x, x_mask, skip, skip_masks)
        if fill is not None:
            x = fill + x  # the network predicts a residual on the fill
        return ((x + 1) / 2 if symmetric else x), x_mask
