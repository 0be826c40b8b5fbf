"""Forward+backward time of PartialConv2d relative to nn.Conv2d on the same shapes (CPU).

For each shape (B, C, H, W, C_out, k) it times, interleaved in one run:
  conv        nn.Conv2d (the floor)
  padding     PartialConv2d, no mask (partial-convolution padding)
  inpainting  PartialConv2d, 1-channel mask with holes
  multi       PartialConv2d(multi_channel=True), C_in-channel mask
  multi-view  the same layer given one map expanded over the C_in channels, as a multi-channel
              layer returns its mask to the next one (NVIDIA-style chains)
  ref-*       a straightforward reimplementation of the widely used reference layer's method
              (mask convolved with a C_out x C_in ones kernel, C_in-channel mask in padding use),
              for context only
and prints the median time of each and its ratio to nn.Conv2d. The first layer of an image
network (C=3) gets no input gradient, as in a real network.

Usage: python benchmarks/partial_conv.py [--repeats 15] [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from inpainting.engine.memory import keep_freed_memory  # noqa: E402
from inpainting.layers import PartialConv2d  # noqa: E402

SHAPES = [(8, 64, 64, 64, 128, 3), (4, 128, 32, 32, 256, 3), (4, 3, 256, 256, 64, 7)]


def reference_style(conv: torch.nn.Conv2d, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The reference layer's arithmetic: a C_out x C_in ones kernel over a C_in-channel mask."""
    with torch.no_grad():
        ones = torch.ones(conv.out_channels, x.shape[1], *conv.kernel_size)
        window_sum = F.conv2d(mask, ones, None, conv.stride, conv.padding, conv.dilation)
        ratio = ones[0].numel() / (window_sum + 1e-8)
        update = window_sum.clamp(0, 1)
        ratio = ratio * update
    raw = F.conv2d(x * mask, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation)
    bias = conv.bias.view(1, -1, 1, 1)
    return ((raw - bias) * ratio + bias) * update


def hole_mask(batch: int, channels: int, size: int, seed: int = 0) -> torch.Tensor:
    """Mask (batch, channels, size, size) with random rectangular holes, 1 = known."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.ones(batch, 1, size, size)
    for b in range(batch):
        for _ in range(4):
            y, x = torch.randint(0, size - size // 4, (2,), generator=gen).tolist()
            mask[b, :, y:y + size // 4, x:x + size // 5] = 0
    return mask.expand(-1, channels, -1, -1).contiguous()


def make_cases(shape: tuple) -> dict:
    batch, c_in, size, _, c_out, k = shape
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(c_in, c_out, k, padding=k // 2)
    single = PartialConv2d(c_in, c_out, k, padding=k // 2)
    multi = PartialConv2d(c_in, c_out, k, padding=k // 2, multi_channel=True)
    for layer in (single, multi):
        layer.load_state_dict(conv.state_dict())
    x = torch.randn(batch, c_in, size, size, requires_grad=c_in > 3)
    mask1, mask_c = hole_mask(batch, 1, size), hole_mask(batch, c_in, size)
    ones_c = torch.ones(batch, c_in, size, size)
    return {
        "conv": lambda: conv(x),
        "padding": lambda: single(x),
        "inpainting": lambda: single(x, mask1),
        "multi": lambda: multi(x, mask_c),
        "multi-view": lambda: multi(x, mask1.expand(-1, c_in, -1, -1)),
        "ref-padding": lambda: reference_style(conv, x, ones_c),
        "ref-inpainting": lambda: reference_style(conv, x, mask_c),
    }


def time_once(fn) -> float:
    start = time.perf_counter()
    out = fn()
    out.backward(torch.ones_like(out))
    return time.perf_counter() - start


def run(shape: tuple, repeats: int) -> dict[str, float]:
    cases = make_cases(shape)
    for fn in cases.values():  # warm-up: allocator, oneDNN primitive caches, ratio caches
        time_once(fn)
    times = {name: [] for name in cases}
    for _ in range(repeats):  # interleaved so load changes hit every variant alike
        for name, fn in cases.items():
            times[name].append(time_once(fn))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="3 repeats (smoke run)")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="glibc reuses freed memory, as train.py does on the CPU")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.keep_freed_memory and not keep_freed_memory():
        parser.error("--keep-freed-memory needs glibc")
    repeats = 3 if args.quick else args.repeats
    allocator = "glibc keeps freed memory" if args.keep_freed_memory else "default allocator"
    print(f"torch {torch.__version__}, {args.threads} threads, {allocator}, median of {repeats} "
          "interleaved forward+backward runs; ratio = time / nn.Conv2d time")
    names = ["conv", "padding", "inpainting", "multi", "multi-view", "ref-padding",
             "ref-inpainting"]
    header = f"{'(B,C,H,W,C_out,k)':<26}" + "".join(f"{n:>15}" for n in names)
    print(header)
    for shape in SHAPES:
        medians = run(shape, repeats)
        cells = [f"{medians['conv'] * 1e3:>12.1f}ms"]
        cells += [f"{medians[n] / medians['conv']:>14.2f}x" for n in names[1:]]
        print(f"{str(shape):<26}" + "".join(cells))


if __name__ == "__main__":
    main()
