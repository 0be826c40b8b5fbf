"""Which no-download metric tells a blurry fill from a sharp one, on real photos (CPU, ~1 min).

Each photo of a folder (default: the 16 of /work/shared/data/photos) is centre-cropped square and
resized to --sizes (128 = the demo's size, and 256), then given one generated mask per hole-ratio
bin in --bins. Its holes are filled five ways:

  blurry  opencv-telea, opencv-ns   OpenCV's diffusion inpainting (radius 3)
          gt-blur                   the ground truth, Gaussian-blurred (sigma = side / 64)
  sharp   gt-noise                  the ground truth plus Gaussian noise (sigma = 12 grey levels)
          shifted                   the ground truth shifted by side / 16 pixels: a plausible,
                                    sharp texture in the wrong place (what a GAN tends to give)

and each composite (known pixels kept) is scored by PSNR, SSIM, L1 (the paper's metrics), GMSD
(Xue et al., IEEE TIP 2014: std of the gradient-magnitude similarity, images downsampled by 2,
c = 170 / 255^2; the standard full-reference gradient metric, a candidate) and grad-ratio
(``inpainting.metrics.gradient``, the candidate that ships). It prints each fill's mean score and,
for each sharp/blurry pair of fills, the share of crops on which the metric prefers the sharp one
(grad-ratio: the one whose ratio is nearer 1, |log ratio| smaller). A metric that does not reward
blur prefers the sharp fills.

Usage: python benchmarks/blur_metrics.py [--photos DIR] [--sizes 128,256] [--bins ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from inpainting.metrics import l1, psnr, ssim  # noqa: E402
from inpainting.metrics.gradient import grad_ratio, gradient_magnitude  # noqa: E402
from masks import MaskGenerator  # noqa: E402

BLURRY = ("opencv-telea", "opencv-ns", "gt-blur")
SHARP = ("gt-noise", "shifted")
HIGHER_IS_BETTER = {"psnr", "ssim"}


def gmsd(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """GMSD of Xue et al. 2014 on [0, 1] images: (B, C, H, W) -> (B,), lower is better."""
    pred, target = (F.avg_pool2d(x, 2) for x in (pred, target))  # their 2x2 mean, stride 2
    magnitude_pred, magnitude_target = gradient_magnitude(pred), gradient_magnitude(target)
    c = 170 / 255**2
    similarity = (2 * magnitude_pred * magnitude_target + c) / (
        magnitude_pred**2 + magnitude_target**2 + c)
    return similarity.flatten(1).std(dim=1, unbiased=False)


def crops(folder: Path, size: int) -> list[np.ndarray]:
    """Centre square of each photo, resized to size x size (RGB uint8)."""
    images = []
    for path in sorted(folder.iterdir()):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        height, width = image.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = cv2.cvtColor(image[top:top + side, left:left + side], cv2.COLOR_BGR2RGB)
        images.append(cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA))
    return images


def fills(truth: np.ndarray, known: np.ndarray, rng: np.random.Generator) -> dict:
    """The five fills of the hole (known = 1), as composites (uint8 RGB)."""
    size = truth.shape[0]
    hole = (known == 0).astype(np.uint8) * 255
    candidates = {
        "opencv-telea": cv2.inpaint(truth, hole, 3, cv2.INPAINT_TELEA),
        "opencv-ns": cv2.inpaint(truth, hole, 3, cv2.INPAINT_NS),
        "gt-blur": cv2.GaussianBlur(truth, (0, 0), size / 64),
        "gt-noise": np.clip(truth + rng.normal(0, 12, truth.shape), 0, 255).astype(np.uint8),
        "shifted": np.roll(truth, (size // 16, size // 16), axis=(0, 1)),
    }
    return {name: np.where(known[:, :, None] == 1, truth, fill)
            for name, fill in candidates.items()}


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255


def measure(photos: Path, size: int, bins: list[tuple[float, float]]) -> dict:
    """fill -> metric -> one score per (photo, bin)."""
    scores: dict[str, dict[str, list[float]]] = {}
    images = crops(photos, size)
    rng = np.random.default_rng(0)
    for index, hole_range in enumerate(bins):
        generator = MaskGenerator(size, size, hole_range, rng=index)
        for truth in images:
            known = generator()
            target, mask = to_tensor(truth), torch.from_numpy(known)[None, None].float()
            for name, composite in fills(truth, known, rng).items():
                pred = to_tensor(composite)
                values = {"psnr": psnr(pred, target), "ssim": ssim(pred, target),
                          "l1": l1(pred, target), "gmsd": gmsd(pred, target),
                          "grad-ratio": grad_ratio(pred, target, mask)}
                for metric, value in values.items():
                    scores.setdefault(name, {}).setdefault(metric, []).append(value.item())
    return scores


def report(scores: dict, size: int, count: int) -> None:
    metrics = list(scores[BLURRY[0]])
    print(f"\n{size}x{size}: {count} crops x masks; mean score per fill")
    print(f"{'fill':<14}" + "".join(f"{m:>11}" for m in metrics))
    for name in (*BLURRY, *SHARP):
        print(f"{name:<14}" + "".join(f"{np.mean(scores[name][m]):11.4f}" for m in metrics))
    print("share of crops where the metric prefers the sharp fill")
    print(f"{'sharp vs blurry':<28}" + "".join(f"{m:>11}" for m in metrics))
    for sharp in SHARP:
        for blurry in BLURRY:
            cells = []
            for metric in metrics:
                a, b = np.array(scores[sharp][metric]), np.array(scores[blurry][metric])
                if metric == "grad-ratio":  # nearer 1 is better
                    a, b = -np.abs(np.log(a)), -np.abs(np.log(b))
                elif metric not in HIGHER_IS_BETTER:
                    a, b = -a, -b
                cells.append(f"{np.mean(a > b):11.2f}")
            print(f"{sharp + ' vs ' + blurry:<28}" + "".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=Path, default=Path("/work/shared/data/photos"))
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--bins", default="0.1-0.2,0.3-0.4,0.5-0.6")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bins = [tuple(float(v) for v in item.split("-")) for item in args.bins.split(",")]
    for size in (int(s) for s in args.sizes.split(",")):
        scores = measure(args.photos, size, bins)
        report(scores, size, len(scores[BLURRY[0]]["psnr"]))


if __name__ == "__main__":
    main()
