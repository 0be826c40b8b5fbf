"""Images/s and peak memory of one full training step of the PConv U-Net on the CPU.

One step = forward, the full loss with VGG-16 (Liu et al. 2018, Eq. 1-7), backward and an Adam
update, at 256x256, depth 7, base 64 (the paper's 256x256 network), 2 threads. Variants, timed
side by side in one run (interleaved repetitions, median):

  pconv   inpainting.models.PConvUNet + inpainting.models.losses.InpaintingLoss (this project)
  plain   the same network with every partial conv replaced by a plain nn.Conv2d (the masks are
          ignored) and the same loss: the cost floor of the architecture
  naive   a straightforward implementation: partial conv as a second convolution of a
          C_out x C_in ones kernel over a C_in-channel mask (masks carried with as many channels
          as the features), and an NCHW VGG run three times with autograd (I_out, I_comp,
          I_gt), its weights left trainable (out of the optimizer) so every pass builds a graph
  naive-frozen  the same with the VGG weights frozen (requires_grad=False): the I_gt pass then
          records no graph; this separates the loss-side saving from the layer-side one

fp32 and bf16 autocast (``torch.autocast("cpu", dtype=torch.bfloat16)``). Peak memory is the
VmHWM of a fresh subprocess per variant that builds it and runs two steps. VGG uses random
weights (vgg_weights="none"): the cost does not depend on the weight values.

Usage: python benchmarks/train_step.py [--repeats 3] [--batch-sizes 2 4] [--no-memory]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning: on a shared machine spinning steals the cores
# from the thread that has work, and it would inflate the CPU-time figures. Set before torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from tqdm import tqdm  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from inpainting.engine.memory import keep_freed_memory  # noqa: E402
from inpainting.layers import PartialConv2d  # noqa: E402
from inpainting.models import PConvUNet  # noqa: E402
from inpainting.models.losses import InpaintingLoss, VGG16Features  # noqa: E402
from masks import MaskGenerator  # noqa: E402

VARIANTS = ("pconv", "plain", "naive", "naive-frozen")


class PlainConv2d(nn.Conv2d):
    """nn.Conv2d that ignores the mask; passes a subsampled mask on so the U-Net wiring works."""

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        return self._conv_forward(x, self.weight, self.bias), mask[..., ::self.stride[0],
                                                                    ::self.stride[1]]

    def forward_concat(self, features: list[Tensor], masks: list[Tensor]):
        return self.forward(torch.cat(features, dim=1), masks[0])


class NaivePartialConv2d(nn.Conv2d):
    """The widely used reference method: C_in-channel mask, C_out x C_in ones-kernel window sum,
    and a C_out-channel updated mask."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        ones = torch.ones(self.out_channels, self.in_channels, *self.kernel_size)
        self.register_buffer("mask_kernel", ones, persistent=False)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if mask.shape[1] != x.shape[1]:
            mask = mask.expand(-1, x.shape[1], -1, -1)
        with torch.no_grad():
            window = F.conv2d(mask, self.mask_kernel, None, self.stride, self.padding)
            update = window.clamp(0, 1)  # (B, C_out, H', W')
            ratio = self.mask_kernel[0].numel() / (window + 1e-8) * update
        out = F.conv2d(x * mask, self.weight, None, self.stride, self.padding) * ratio
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1) * update
        return out, update

    def forward_concat(self, features: list[Tensor], masks: list[Tensor]):
        full = [m.expand(-1, f.shape[1], -1, -1) if m.shape[1] != f.shape[1] else m
                for f, m in zip(features, masks)]
        return self.forward(torch.cat(features, dim=1), torch.cat(full, dim=1))


class NaiveInpaintingLoss(InpaintingLoss):
    """Same terms, but VGG (NCHW) runs three times with autograd on (I_out, I_comp, I_gt).

    With ``freeze_vgg=False`` the VGG weights keep ``requires_grad=True`` (only left out of the
    optimizer), so all three passes build a graph and backward also computes VGG weight
    gradients; with ``freeze_vgg=True`` the I_gt pass records nothing.
    """

    def __init__(self, freeze_vgg: bool) -> None:
        super().__init__(vgg_weights="none")
        self.vgg = VGG16Features("none", channels_last=False)
        self.vgg.features.requires_grad_(not freeze_vgg)

    def extract_features(self, output, comp, target):
        out_features, comp_features = self.vgg(output), self.vgg(comp)
        gt_features = self.vgg(target)
        return [torch.cat(pair) for pair in zip(out_features, comp_features)], gt_features


def swap_convs(model: nn.Module, conv_class: type[nn.Conv2d]) -> nn.Module:
    """Replace every PartialConv2d by ``conv_class`` with the same shape and weights."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, PartialConv2d):
                new = conv_class(child.in_channels, child.out_channels, child.kernel_size,
                                 stride=child.stride, padding=child.padding,
                                 bias=child.bias is not None)
                new.load_state_dict(child.state_dict())
                setattr(module, name, new)
    return model


def build(variant: str, args: argparse.Namespace) -> dict:
    """Model, loss, optimizer for one variant (one shared set of initial weights)."""
    torch.manual_seed(0)
    model = PConvUNet(depth=args.depth, base_channels=args.base_channels)
    if variant == "plain":
        swap_convs(model, PlainConv2d)
    elif variant.startswith("naive"):
        swap_convs(model, NaivePartialConv2d)
    if variant.startswith("naive"):
        loss_fn = NaiveInpaintingLoss(freeze_vgg=variant == "naive-frozen")
    else:
        loss_fn = InpaintingLoss(vgg_weights="none")
    return {"model": model.train(), "loss": loss_fn,
            "optimizer": torch.optim.Adam(model.parameters(), lr=2e-4)}


def make_batch(batch: int, size: int) -> tuple[Tensor, Tensor]:
    generator = MaskGenerator(size, size, hole_range=(0.1, 0.4), rng=0)
    mask = torch.stack([torch.from_numpy(generator()).float()[None] for _ in range(batch)])
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)), mask


def train_step(setup: dict, image: Tensor, mask: Tensor, precision: str) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        output, _ = setup["model"](image, mask)
        terms = setup["loss"](output, image, mask)
    setup["optimizer"].zero_grad(set_to_none=True)
    terms["total"].backward()
    setup["optimizer"].step()


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child_memory(args: argparse.Namespace) -> None:
    """Runs in a fresh process: build one variant, two steps, print peak RSS as JSON."""
    variant, batch, precision = args.child
    torch.set_num_threads(args.threads)
    if args.keep_freed_memory:
        keep_freed_memory()
    setup = build(variant, args)
    image, mask = make_batch(int(batch), args.size)
    built = _status_kib("VmRSS")
    for _ in range(2):
        train_step(setup, image, mask, precision)
    print(json.dumps({"built_mib": built / 1024, "peak_mib": _status_kib("VmHWM") / 1024}))


def measure_memory(config: tuple[str, int, str], args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", config[0], str(config[1]), config[2],
               "--threads", str(args.threads), "--size", str(args.size), "--depth",
               str(args.depth), "--base-channels", str(args.base_channels)]
    if args.keep_freed_memory:
        command.append("--keep-freed-memory")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"memory subprocess for {config} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def cpu_bf16_flags() -> list[str]:
    """bf16-related CPU flags of this machine (avx512_bf16, amx_bf16)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile"})


def configs(args: argparse.Namespace) -> list[tuple[str, int, str]]:
    out = []
    for batch in args.batch_sizes:
        out += [(v, batch, "fp32") for v in args.variants]
        out += [(v, batch, "bf16") for v in args.bf16_variants]
    return out


def time_all(args: argparse.Namespace, todo: list[tuple[str, int, str]]) -> dict:
    """Interleaved timing: every config once per round, after one warm-up round.

    Returns per config the median wall-clock seconds and the median process CPU seconds of a
    step. CPU seconds (all threads, with passive OpenMP waits) barely move when other processes
    compete for the cores, so they are the steadier basis for ratios on a shared machine.
    """
    setups = {v: build(v, args) for v in sorted({c[0] for c in todo})}
    batches = {b: make_batch(b, args.size) for b in args.batch_sizes}
    wall: dict[tuple, list[float]] = {c: [] for c in todo}
    cpu: dict[tuple, list[float]] = {c: [] for c in todo}
    with tqdm(total=len(todo) * (args.repeats + 1), desc="train steps") as bar:
        for round_index in range(args.repeats + 1):
            for config in todo:
                variant, batch, precision = config
                start, start_cpu = time.perf_counter(), time.process_time()
                train_step(setups[variant], *batches[batch], precision)
                if round_index > 0:  # round 0 is the warm-up
                    wall[config].append(time.perf_counter() - start)
                    cpu[config].append(time.process_time() - start_cpu)
                bar.update()
    return {c: {"wall": statistics.median(wall[c]), "cpu": statistics.median(cpu[c]),
                "wall_all": wall[c]} for c in todo}


def _ratio(seconds: dict, base: tuple, other: tuple) -> str:
    """'wall / CPU' ratios of other's step time to base's ('-' when not both measured)."""
    if base not in seconds or other not in seconds or other == base:
        return "-"
    a, b = seconds[base], seconds[other]
    return f"{b['wall'] / a['wall']:.2f} / {b['cpu'] / a['cpu']:.2f}"


def report(todo, seconds: dict, memory: dict, args: argparse.Namespace) -> str:
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
             f"{args.size}x{args.size}, depth {args.depth}, base {args.base_channels}, "
             f"median of {args.repeats}; CPU bf16 flags: {', '.join(cpu_bf16_flags()) or 'none'}; "
             + ("glibc keeps freed memory" if args.keep_freed_memory else "default allocator"),
             "", "| variant | batch | precision | wall s/step | images/s | CPU s/step "
             "| time vs plain (wall / CPU) | pconv speed-up (wall / CPU) "
             "| peak MiB (after build) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for config in todo:
        variant, batch, precision = config
        step = seconds[config]
        vs_plain = _ratio(seconds, ("plain", batch, precision), config)
        speedup = _ratio(seconds, ("pconv", batch, precision), config)
        mem = memory.get(config)
        mem_text = f"{mem['peak_mib']:.0f} ({mem['built_mib']:.0f})" if mem else "-"
        lines.append(f"| {variant} | {batch} | {precision} | {step['wall']:.2f} | "
                     f"{batch / step['wall']:.2f} | {step['cpu']:.2f} | {vs_plain} | {speedup} | "
                     f"{mem_text} |")
    lines.append("")
    for batch in args.batch_sizes:
        fp32, bf16 = ("pconv", batch, "fp32"), ("pconv", batch, "bf16")
        if fp32 in seconds and bf16 in seconds:
            lines.append(f"pconv batch {batch}: bf16 autocast speed-up over fp32 (wall / CPU) "
                         f"{_ratio(seconds, bf16, fp32)}")
    lines.append("wall seconds per step, all repeats: " + "; ".join(
        f"{c[0]}/{c[1]}/{c[2]}: {', '.join(f'{t:.2f}' for t in seconds[c]['wall_all'])}"
        for c in todo))
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2
        self.exit(2, f"train_step.py: error: {message} (see --help)\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _Parser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per config")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--depth", type=int, default=7)
    parser.add_argument("--base-channels", type=int, default=64)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                        help="variants timed in fp32")
    parser.add_argument("--bf16-variants", nargs="*", choices=VARIANTS,
                        default=["pconv", "plain"], help="variants timed in bf16 autocast")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="glibc reuses freed memory, as train.py does on the CPU")
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "BATCH", "PRECISION"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.threads < 1 or min(args.batch_sizes) < 1:
        parser.error("--repeats, --threads and --batch-sizes must be >= 1")
    if args.size % 2 ** args.depth:
        parser.error(f"--size {args.size} must be divisible by 2**depth = {2 ** args.depth}")
    return args


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.ERROR)  # silence the random-VGG warning of every build
    if args.child:
        child_memory(args)
        return
    torch.set_num_threads(args.threads)
    if args.keep_freed_memory and not keep_freed_memory():
        raise SystemExit("--keep-freed-memory needs glibc")
    todo = configs(args)
    seconds = time_all(args, todo)
    memory = {}
    if not args.no_memory:
        for config in tqdm(todo, desc="peak memory (subprocesses)"):
            memory[config] = measure_memory(config, args)
    print(report(todo, seconds, memory, args))


if __name__ == "__main__":
    main()
