"""Time of PSNR + SSIM on a batch of image pairs: inpainting.metrics against scikit-image (CPU).

Times, interleaved in one run (each repetition runs every method once, in turn):
  ours          inpainting.metrics.image.psnr + ssim on float32 tensors (the evaluation path)
  ours-f64      the same on float64 tensors
  skimage-f64   scikit-image peak_signal_noise_ratio + structural_similarity, one image at a time,
                on float64 HWC arrays (what uint8 photos become inside scikit-image)
  skimage-f32   the same on float32 arrays (scikit-image then filters in float32: its fast path)
  naive-conv    PSNR + SSIM with an 11x11 depthwise conv2d per map, for reference
It prints the median time of each and the speed-up of ours over each (its median / ours), plus
the median of the per-repetition ratios against the faster scikit-image variant, which is less
sensitive to load from other processes. The images are random: speed does not depend on content.

Usage: python benchmarks/metrics.py [--batch 64] [--size 256] [--repeats 9] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from inpainting.metrics.image import psnr, ssim  # noqa: E402


def naive_ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM with a full 11x11 depthwise convolution per filtered map: (B, C, H, W) -> (B,)."""
    channels = pred.shape[1]
    offsets = torch.arange(11, dtype=torch.float64) - 5
    window = torch.exp(-0.5 * (offsets / 1.5) ** 2)
    window = (window / window.sum()).float()
    kernel = (window[:, None] * window[None, :]).expand(channels, 1, 11, 11).contiguous()

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, kernel, groups=channels)

    mu_pred, mu_target = blur(pred), blur(target)
    var_pred = blur(pred * pred) - mu_pred**2
    var_target = blur(target * target) - mu_target**2
    covariance = blur(pred * target) - mu_pred * mu_target
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu_pred * mu_target + c1) * (2 * covariance + c2)) / (
        (mu_pred**2 + mu_target**2 + c1) * (var_pred + var_target + c2)
    )
    return ssim_map.mean(dim=(1, 2, 3))


def skimage_scores(pred: np.ndarray, target: np.ndarray) -> tuple[list, list]:
    """scikit-image PSNR and SSIM of (B, H, W, C) arrays, one image at a time."""
    psnrs = [peak_signal_noise_ratio(t, p, data_range=1) for p, t in zip(pred, target)]
    ssims = [
        structural_similarity(t, p, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False, data_range=1, channel_axis=-1)
        for p, t in zip(pred, target)
    ]
    return psnrs, ssims


def make_methods(batch: int, size: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(batch, 3, size, size, generator=generator)
    pred = (target + 0.1 * torch.randn(target.shape, generator=generator)).clamp(0, 1)
    target64, pred64 = target.double(), pred.double()
    target_np = target64.permute(0, 2, 3, 1).contiguous().numpy()
    pred_np = pred64.permute(0, 2, 3, 1).contiguous().numpy()
    target_np32, pred_np32 = target_np.astype(np.float32), pred_np.astype(np.float32)

    # Sanity check before timing: the three implementations agree.
    _, expected = skimage_scores(pred_np[:4], target_np[:4])
    ours_error = np.abs(ssim(pred[:4], target[:4]).numpy() - expected).max()
    naive_error = np.abs(naive_ssim(pred[:4], target[:4]).numpy() - expected).max()
    print(f"max |SSIM - scikit-image| on 4 pairs: ours {ours_error:.1e}, "
          f"naive-conv {naive_error:.1e}")
    return {
        "ours": lambda: (psnr(pred, target), ssim(pred, target)),
        "ours-f64": lambda: (psnr(pred64, target64), ssim(pred64, target64)),
        "skimage-f64": lambda: skimage_scores(pred_np, target_np),
        "skimage-f32": lambda: skimage_scores(pred_np32, target_np32),
        "naive-conv": lambda: (psnr(pred, target), naive_ssim(pred, target)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if min(args.batch, args.repeats, args.threads) < 1 or args.size < 11:
        print("error: --batch, --repeats, --threads must be >= 1 and --size >= 11",
              file=sys.stderr)
        sys.exit(2)
    torch.set_num_threads(args.threads)
    print(f"{args.batch} RGB {args.size}x{args.size} pairs, {args.threads} threads, "
          f"torch {torch.__version__}, load average before {os.getloadavg()[0]:.2f}")
    methods = make_methods(args.batch, args.size)
    for method in methods.values():  # warm-up: allocator, BLAS and scipy code paths
        method()
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.repeats):
        for name, method in methods.items():
            start = time.perf_counter()
            method()
            times[name].append(time.perf_counter() - start)

    ours = statistics.median(times["ours"])
    print(f"{'method':<12} {'median s':>9} {'min s':>7} {'ours faster by':>15}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<12} {median:>9.3f} {min(values):>7.3f} {median / ours:>14.2f}x")
    fastest_skimage = min(("skimage-f64", "skimage-f32"),
                          key=lambda name: statistics.median(times[name]))
    paired = [s / o for s, o in zip(times[fastest_skimage], times["ours"])]
    print(f"ratio {fastest_skimage} / ours per repetition: median {statistics.median(paired):.2f} "
          f"(range {min(paired):.2f} .. {max(paired):.2f}); "
          f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
