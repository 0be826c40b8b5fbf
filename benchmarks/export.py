"""Inference time of the exported models (ONNX in onnxruntime, lama-torchscript) against
PyTorch eager (CPU).

One image of 512x512 (batch 1), the paper's network (PConvUNet depth 8, 64 base channels, random
weights: speed does not depend on them), a mask with holes. Times, interleaved in one run (each
repetition runs each, in turn, so load from other processes hits all alike):
  torch-eager   ExportWrapper (the exported computation: reflect padding, network, clamp) in
                PyTorch under inference_mode, the same arithmetic as Inpainter.predict
  onnxruntime   the file written by python -m inpainting.export --format onnx, CPU provider
  torchscript   the file of --format lama-torchscript (torch.jit.load), called as IOPaint calls
                LaMa: int64 mask with 1 = hole, under inference_mode; it returns the composite
All use the same number of threads. It prints the median of each, the ratio of the medians and
the median of the per-repetition ratios against torch-eager, after checking that the outputs
agree (the torchscript output in the holes).

Usage: python benchmarks/export.py [--size 512] [--repeats 15] [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from inpainting.export import ExportWrapper, export_model  # noqa: E402
from inpainting.models import PConvUNet  # noqa: E402


def hole_mask(size: int) -> torch.Tensor:
    """(1, 1, size, size) with a few rectangular holes, 1 = known."""
    mask = torch.ones(1, 1, size, size)
    generator = torch.Generator().manual_seed(0)
    for _ in range(6):
        top, left = torch.randint(0, size - size // 5, (2,), generator=generator).tolist()
        mask[..., top:top + size // 6, left:left + size // 5] = 0
    return mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="depth 6, 32 channels, 3 repeats")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    depth, channels = (6, 32) if args.quick else (8, 64)
    repeats = 3 if args.quick else args.repeats
    model = PConvUNet(depth=depth, base_channels=channels).eval()
    wrapper = ExportWrapper(model).eval()

    with tempfile.TemporaryDirectory() as folder:
        path = export_model(model, {"model": {"depth": depth, "base_channels": channels}},
                            Path(folder) / "model.onnx", "onnx")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(path), options,
                                               providers=["CPUExecutionProvider"])
        path = export_model(model, {"model": {"depth": depth, "base_channels": channels}},
                            Path(folder) / "model.pt", "lama-torchscript")
        with warnings.catch_warnings():  # torch.jit.load is deprecated in torch 2.x
            warnings.simplefilter("ignore", FutureWarning)
            scripted = torch.jit.load(str(path))

    image = torch.rand(1, 3, args.size, args.size)
    mask = hole_mask(args.size)
    feeds = {"image": image.numpy(), "mask": mask.numpy()}
    hole = (1 - mask).long()

    def run_torch() -> np.ndarray:
        with torch.inference_mode():
            return wrapper(image, mask).numpy()

    def run_onnx() -> np.ndarray:
        return session.run(None, feeds)[0]

    def run_torchscript() -> np.ndarray:
        with torch.inference_mode():
            return scripted(image, hole).numpy()

    methods = {"torch-eager": run_torch, "onnxruntime": run_onnx, "torchscript": run_torchscript}
    reference = run_torch()  # also the warm-up
    difference = np.abs(reference - run_onnx()).max()
    for _ in range(3):  # TorchScript's profiling executor optimises after the first runs
        scripted_output = run_torchscript()
    in_holes = np.broadcast_to(hole.bool().numpy(), reference.shape)
    ts_difference = np.abs(reference - scripted_output)[in_holes].max()
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, method in methods.items():
            start = time.perf_counter()
            method()
            times[name].append(time.perf_counter() - start)

    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {args.threads} "
          f"threads, PConvUNet(depth={depth}, base_channels={channels}), batch 1, "
          f"{args.size}x{args.size}, median of {repeats} interleaved runs; "
          f"max |torch - onnx| = {difference:.1e}, "
          f"max |torch - torchscript| in holes = {ts_difference:.1e}")
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:<14}{value * 1000:10.1f} ms")
    for name in ("onnxruntime", "torchscript"):
        per_run = statistics.median(o / t for o, t in zip(times[name], times["torch-eager"]))
        print(f"{name} / torch-eager: {medians[name] / medians['torch-eager']:.2f}x "
              f"(ratio of medians), {per_run:.2f}x (median of per-run ratios)")


if __name__ == "__main__":
    main()
