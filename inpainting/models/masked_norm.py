"""BatchNorm whose statistics come from the known positions only (an option beyond the paper).

Liu et al. (ECCV 2018) follow each partial convolution with plain BatchNorm. A partial
convolution returns exactly 0 wherever its window saw no known pixel, so in a plain BatchNorm
the hole positions pull the batch mean towards 0 and inflate the variance by an amount that
depends on the batch's hole ratio. Train-mode statistics (one hole ratio per batch) and the
running statistics used in eval mode (an average over ratios) then disagree, and a network
evaluated on a large hole normalises its features differently from how it was trained:
``benchmarks/artefacts.py`` measures the effect. :class:`MaskedBatchNorm2d` computes the batch
statistics over the positions the mask marks as known, so they no longer depend on the hole
ratio; every position is then normalised with them.

Mask convention: (B, 1, H, W), 1 = known, 0 = hole.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["MaskedBatchNorm2d", "NORMS"]

# ``model.norm`` choices of PConvUNet: "batch" is the paper's.
NORMS: tuple[str, ...] = ("batch", "masked_batch")


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with batch statistics over the known positions of a mask.

    Same constructor and state dict as ``nn.BatchNorm2d`` (a checkpoint of either loads into
    the other). Eval mode (and a frozen layer) normalises with the running statistics, exactly
    as ``nn.BatchNorm2d`` does; with ``mask=None`` the layer is ``nn.BatchNorm2d``.
    """

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # type: ignore[override]
        """Normalise ``x`` (B, C, H, W) with statistics over ``mask`` (B, 1, H, W), 1 = known.

        A batch with fewer than two known positions (possible only at the deepest level of a
        tiny input) counts as two, so the statistics stay finite without a host sync.
        """
        use_batch = self.training or not self.track_running_stats
        if mask is None or not use_batch:
            return super().forward(x)
        # float32 statistics, as nn.BatchNorm2d keeps them: fp16 sums overflow past 65504
        source_dtype, x = x.dtype, x.float()
        weight = mask.float().expand(x.shape[0], 1, *x.shape[2:])
        count = weight.sum().clamp(min=2.0)
        # (B, C, H, W) -> (C,): weighted sums over batch and positions
        mean = (x * weight).sum(dim=(0, 2, 3)) / count
        centred = x - mean.view(1, -1, 1, 1)
        var = (centred.square() * weight).sum(dim=(0, 2, 3)) / count
        if self.track_running_stats and self.running_mean is not None:
            self._update_running(mean.detach(), var.detach() * count / (count - 1))
        scale = torch.rsqrt(var + self.eps)
        out = centred * scale.view(1, -1, 1, 1)
        if self.affine:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return out.to(source_dtype)

    @torch.no_grad()
    def _update_running(self, mean: Tensor, unbiased_var: Tensor) -> None:
        """The running averages of ``nn.BatchNorm2d`` (momentum, or a cumulative average)."""
        self.num_batches_tracked.add_(1)
        if self.momentum is None:
            factor = 1.0 / float(self.num_batches_tracked)
        else:
            factor = self.momentum
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
        self.running_var.lerp_(unbiased_var.to(self.running_var.dtype), factor)
