"""Cost of each evaluation metric on this machine, and of the paper's full protocol (~2 min).

Per-image metrics are timed on a batch of image pairs at --size (512, the paper's), median of
--repeats runs after one warm-up: l1 (with l1_hole), psnr, ssim, grad-ratio, lpips (VGG-16 to
relu5_3 on both images) and the Inception pass that fid, kid, is, p-ids and u-ids share (one per
image, resized to 299: its cost does not depend on --size). The set metrics are timed on random
2048-d features of --pairs pairs (12,000: the paper's 6 bins x 1,000 masks x 2 border modes):
fid and is once; kid on 10 of its 100 subsets (x 10); p-ids/u-ids (one SVM fit) on --svm-pairs
pairs, scaled linearly to --pairs, a rough figure (liblinear's iterations vary).

The networks have RANDOM weights of the right architecture (nothing is downloaded): the time of a
convolution does not depend on its weights, so the figures hold for the published ones.

The paper-protocol line adds, per method scored (the model, each baseline): the per-image metrics
and an Inception pass over --pairs composites, plus the set metrics; the ground truth's Inception
pass is paid once per test set (cached), counted here as --pairs distinct images (the worst case).
Model inference is not included.

Random He-initialised convolutions leave some activations denormal, which the CPU computes
slowly (the Inception pass took twice as long here without flushing them); published weights
give healthy activations, so the script flushes denormals to zero (``torch.set_flush_denormal``).

Usage: python benchmarks/eval_metrics.py [--size 512] [--batch 2] [--pairs 12000] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from metric_weights import (  # noqa: E402
    random_inception_file,
    random_lpips_linear_file,
    random_vgg16_file,
)

from inpainting.metrics import fid  # noqa: E402
from inpainting.metrics.inception import build_inception  # noqa: E402
from inpainting.metrics.perceptual import build_lpips  # noqa: E402
from inpainting.metrics.scoring import score  # noqa: E402
from inpainting.metrics.weights import ResolvedWeights  # noqa: E402


def median_time(function: Callable[[], object], repeats: int) -> float:
    function()  # warm-up: oneDNN picks its kernels on the first call of a shape
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def once(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=12_000)
    parser.add_argument("--svm-pairs", type=int, default=1_000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    load_before = os.getloadavg()[0]

    folder = Path(tempfile.mkdtemp(prefix="eval_metrics_"))
    weights = {name: ResolvedWeights(name, make(folder / f"{name}.pth"), "random")
               for name, make in (("inception", random_inception_file),
                                  ("vgg16", random_vgg16_file),
                                  ("lpips-vgg", random_lpips_linear_file))}
    lpips = build_lpips(weights["vgg16"], weights["lpips-vgg"])
    inception = build_inception(weights["inception"])

    batch, size = args.batch, args.size
    target = torch.rand(batch, 3, size, size)
    mask = (torch.rand(batch, 1, size, size) > 0.3).float()
    prediction = torch.rand(batch, 3, size, size)
    _, merged = score(target, mask, prediction, ())
    per_image = {
        "l1": lambda: score(target, mask, prediction, ("l1", "l1_hole")),
        "psnr": lambda: score(target, mask, prediction, ("psnr",)),
        "ssim": lambda: score(target, mask, prediction, ("ssim",)),
        "grad-ratio": lambda: score(target, mask, prediction, ("grad-ratio",)),
        "lpips": lambda: lpips(merged, target),
        "inception pass": lambda: inception(merged),
    }
    seconds = {name: median_time(function, args.repeats) / batch
               for name, function in per_image.items()}

    features = torch.randn(args.pairs, 2048, dtype=torch.float64).abs()
    fakes = features + 0.1 * torch.randn_like(features)
    logits = torch.randn(args.pairs, 1008)
    small = args.svm_pairs
    set_seconds = {
        "fid": once(lambda: fid.frechet_distance(features, fakes)),
        "kid": 10 * once(lambda: fid.kernel_inception_distance(features, fakes, subsets=10)),
        "is": once(lambda: fid.inception_score(logits)),
        "p-ids/u-ids": once(lambda: fid.inception_discriminative_scores(
            features[:small], fakes[:small])) * args.pairs / small,
    }

    print(f"torch {torch.__version__}, {args.threads} threads, {batch} RGB {size}x{size} pairs "
          f"per call, random weights; load average before {load_before:.2f}, after "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'per image':<16}{'images/s':>10}{f's per {args.pairs} pairs':>22}")
    for name, value in seconds.items():
        print(f"{name:<16}{1 / value:>10.2f}{value * args.pairs:>22.0f}")
    print(f"{'per set':<16}{'':>10}{f's for {args.pairs} pairs':>22}")
    for name, value in set_seconds.items():
        print(f"{name:<16}{'':>10}{value:>22.1f}")

    pixel = sum(seconds[n] for n in ("l1", "psnr", "ssim", "grad-ratio")) * args.pairs
    truth = seconds["inception pass"] * args.pairs
    networks = (seconds["lpips"] + seconds["inception pass"]) * args.pairs + sum(
        set_seconds.values())
    print(f"paper protocol ({args.pairs} pairs), per method, without inference:")
    print(f"  default metrics (l1, psnr, ssim, grad-ratio)   {pixel / 3600:6.2f} h")
    print(f"  + lpips, fid, kid, is, p-ids, u-ids            {(pixel + networks) / 3600:6.2f} h"
          f"  (+ {truth / 3600:.2f} h once per test set: the ground truth's Inception pass)")


if __name__ == "__main__":
    main()
