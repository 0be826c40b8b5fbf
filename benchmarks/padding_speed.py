"""Training-step time of partial-convolution padding against zero padding (classifiers).

One step = forward, cross-entropy, backward and an SGD update (momentum 0.9, weight decay 1e-4,
NVIDIA's ImageNet recipe; learning rate 0 by default, see ``--lr``) on a fixed random batch. For
each architecture the variants are built by the classification task's ``build_classifier``
from the same seed:

  zero     torchvision's network as it is (NVIDIA's ``-a resnet50`` baseline too)
  partial  the same network with ``padding="partial"`` (Liu et al. 2018, "Partial Convolution
           based Padding", Eq. 2-4)
  nvidia   NVIDIA's own ``pd<arch>`` (their ``models/pd_resnet.py`` / ``pd_vgg.py``), only when
           ``--nvidia-dir`` names a checkout of github.com/NVIDIA/partialconv; nothing of theirs
           ships with this project, so without it the column is reported as absent

The variants of one architecture are timed interleaved in one process: warm-up steps, then
rounds that each run every variant once. Each variant's median over the rounds is reported, the
ratio of medians to ``zero``, and the median of the per-round ratios (robust to load that
changes between rounds).

Usage:
    python benchmarks/padding_speed.py [--archs resnet50 vgg16_bn] [--rounds 15]
        [--nvidia-dir /path/to/partialconv] [--device cuda --amp bf16 --channels-last]
    python benchmarks/padding_speed.py --quick    # resnet18, 32 px, seconds (smoke run)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import statistics
import sys
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning: on a shared machine a spinning thread steals the
# core from the one that has work (as in benchmarks/train_step.py). Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor, nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from inpainting.engine.memory import keep_freed_memory  # noqa: E402
from inpainting.tasks.classification.models import CLASSIFIER_ARCHS, build_classifier  # noqa: E402

TARGET = 1.10  # issue 11: partial padding may cost at most 10 % more per training step
# NVIDIA's module holding pd<arch> for each family of architectures
_NVIDIA_MODULES = {"resnet": "pd_resnet", "vgg": "pd_vgg"}
_NVIDIA_PACKAGE = "_nvidia_partialconv_models"  # private name: never clashes with our packages
# NVIDIA's networks end in a fixed 7x7 average pool (ResNet) or a 512*7*7 Linear layer (VGG)
_NVIDIA_SIZE = 224


def load_nvidia_builder(folder: Path, arch: str) -> Callable[..., nn.Module] | None:
    """NVIDIA's ``pd<arch>`` builder from a checkout of their repository, or None if absent.

    Their ``models`` folder is imported as a private package without running its
    ``__init__.py`` (which imports every family), so only the module of ``arch`` is loaded.

    Args:
        folder: the checkout (holding ``models/partialconv2d.py`` and ``models/pd_*.py``).
        arch: a torchvision name such as ``resnet50``.

    Raises:
        FileNotFoundError: ``folder`` has no ``models`` folder.
    """
    models_dir = Path(folder) / "models"
    if not models_dir.is_dir():
        raise FileNotFoundError(f"{models_dir} does not exist; --nvidia-dir must be a checkout "
                                "of github.com/NVIDIA/partialconv")
    family = next((m for prefix, m in _NVIDIA_MODULES.items() if arch.startswith(prefix)), None)
    if family is None or not (models_dir / f"{family}.py").is_file():
        return None
    package = sys.modules.get(_NVIDIA_PACKAGE)
    if package is None or list(package.__path__) != [str(models_dir)]:
        for name in [n for n in sys.modules if n.split(".")[0] == _NVIDIA_PACKAGE]:
            del sys.modules[name]
        package = types.ModuleType(_NVIDIA_PACKAGE)
        package.__path__ = [str(models_dir)]
        sys.modules[_NVIDIA_PACKAGE] = package
    module = importlib.import_module(f"{_NVIDIA_PACKAGE}.{family}")
    return getattr(module, "pd" + arch, None)


def build_variants(arch: str, args: argparse.Namespace) -> dict[str, nn.Module]:
    """zero, partial (and nvidia when available) versions of ``arch``, same initial weights."""
    variants = {}
    for padding in ("zero", "partial"):
        torch.manual_seed(0)
        variants[padding] = build_classifier(arch, padding=padding, num_classes=args.classes)
    if nvidia_absent_reason(arch, args) is None:
        builder = load_nvidia_builder(args.nvidia_dir, arch)
        torch.manual_seed(0)
        with warnings.catch_warnings():  # their init calls (nn.init.constant) are deprecated
            warnings.simplefilter("ignore", FutureWarning)
            variants["nvidia"] = builder(num_classes=args.classes)
    return variants


def nvidia_absent_reason(arch: str, args: argparse.Namespace) -> str | None:
    """Why NVIDIA's pd<arch> is not timed in this run, or None when it is."""
    if args.nvidia_dir is None:
        return "no --nvidia-dir given"
    if args.size != _NVIDIA_SIZE:
        return f"their networks take {_NVIDIA_SIZE} px input only"
    if load_nvidia_builder(args.nvidia_dir, arch) is None:
        return f"no pd{arch} in {args.nvidia_dir}"
    return None


class StepRunner:
    """One model, its optimizer and a fixed batch; ``__call__`` times one training step."""

    def __init__(self, model: nn.Module, images: Tensor, targets: Tensor,
                 args: argparse.Namespace) -> None:
        self.device = torch.device(args.device)
        memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
        self.model = model.to(self.device, memory_format=memory_format).train()
        self.images = images.to(self.device).contiguous(memory_format=memory_format)
        self.targets = targets.to(self.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=args.lr, momentum=0.9,
                                         weight_decay=1e-4)
        self.amp = args.amp
        self.last_loss = float("nan")

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _sync(self) -> None:
        if self.device.type == "cuda":  # kernels run asynchronously: wait before reading time
            torch.cuda.synchronize(self.device)

    def __call__(self) -> tuple[float, float]:
        """Wall-clock and process CPU seconds of one forward + backward + SGD step."""
        self._sync()
        start, cpu_start = time.perf_counter(), time.process_time()
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = F.cross_entropy(self.model(self.images), self.targets)
        loss.backward()
        self.optimizer.step()
        self._sync()
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        self.last_loss = loss.item()  # after the clock: .item() is a sync of its own
        return seconds, cpu_seconds


def time_arch(arch: str, args: argparse.Namespace, progress: Callable[[str], None]
              ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per-variant wall-clock and CPU step times of ``arch`` over interleaved rounds."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch_size, 3, args.size, args.size, generator=generator)
    targets = torch.randint(0, args.classes, (args.batch_size,), generator=generator)
    runners = {name: StepRunner(model, images, targets, args)
               for name, model in build_variants(arch, args).items()}
    for step in range(args.warmup):  # allocator, oneDNN/cuDNN kernel choice, padding plans
        for runner in runners.values():
            runner()
        progress(f"{arch}: warm-up {step + 1}/{args.warmup}")
    times: dict[str, list[float]] = {name: [] for name in runners}
    cpu_times: dict[str, list[float]] = {name: [] for name in runners}
    for index in range(args.rounds):
        # rotate the order so that no variant always runs right after the same one
        names = list(runners)[index % len(runners):] + list(runners)[:index % len(runners)]
        for name in names:
            seconds, cpu_seconds = runners[name]()
            times[name].append(seconds)
            cpu_times[name].append(cpu_seconds)
        progress(f"{arch}: round {index + 1}/{args.rounds}")
    for name, runner in runners.items():
        if not torch.isfinite(torch.tensor(runner.last_loss)):  # NaN timings prove nothing
            print(f"warning: {arch} {name}: the loss is no longer finite ({runner.last_loss}); "
                  "lower --lr", flush=True)
    return times, cpu_times


def ratio_rows(arch: str, times: dict[str, list[float]]) -> list[str]:
    """Ratio lines: median over median, and the median of the per-round ratios."""
    pairs = [("partial", "zero")]
    if "nvidia" in times:
        pairs += [("nvidia", "zero"), ("nvidia", "partial")]
    rows = []
    for name, base in pairs:
        ratio = statistics.median(times[name]) / statistics.median(times[base])
        per_round = statistics.median(a / b for a, b in zip(times[name], times[base]))
        verdict = ""
        if (name, base) == ("partial", "zero"):
            verdict = f"  target <= {TARGET:.2f}x: {'met' if ratio <= TARGET else 'MISSED'}"
        rows.append(f"ratio {arch} {name}/{base}: {ratio:.3f}x (median of per-round ratios "
                    f"{per_round:.3f}x){verdict}")
    return rows


def report(arch: str, times: dict[str, list[float]], nvidia_note: str,
           cpu_times: dict[str, list[float]] | None = None) -> str:
    """The table of one architecture, then its ratio rows.

    Per variant: median and min wall-clock seconds and the median's ratio to zero padding,
    and with ``cpu_times`` the median process CPU seconds (all threads) and its ratio, which
    other processes on the machine disturb less than the wall clock.
    """
    zero = statistics.median(times["zero"])
    lines = [f"{'arch':<10}{'variant':<9}{'median s':>10}{'min s':>9}{'/ zero':>9}"
             + (f"{'CPU s':>9}{'/ zero':>9}" if cpu_times else "")]
    for name, values in times.items():
        median = statistics.median(values)
        row = f"{arch:<10}{name:<9}{median:>10.3f}{min(values):>9.3f}{median / zero:>8.3f}x"
        if cpu_times:
            cpu, cpu_zero = (statistics.median(cpu_times[n]) for n in (name, "zero"))
            row += f"{cpu:>9.3f}{cpu / cpu_zero:>8.3f}x"
        lines.append(row)
    if "nvidia" not in times:
        lines.append(f"{arch:<10}{'nvidia':<9}    absent ({nvidia_note})")
    return "\n".join(lines + ratio_rows(arch, times))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["resnet50", "vgg16_bn"],
                        choices=sorted(CLASSIFIER_ARCHS), metavar="ARCH")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", type=int, default=224, help="image side in pixels")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds per architecture")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--lr", type=float, default=0.0,
                        help="SGD learning rate. At 0 the update still runs at full cost but the "
                             "weights stay put, so every round times the same step and no run "
                             "diverges (NVIDIA's 0.1 makes vgg16_bn's loss NaN within 17 steps "
                             "on random labels)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--amp", choices=("none", "bf16"), default="none",
                        help="bf16 autocast for the forward pass")
    parser.add_argument("--channels-last", action="store_true", help="NHWC model and input")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="glibc reuses freed memory, as CPU training runs do")
    parser.add_argument("--nvidia-dir", type=Path,
                        help="a checkout of github.com/NVIDIA/partialconv to time pd<arch> from")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: resnet18, 32 px, batch 2, 10 classes, 1 + 2 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.archs, args.size, args.batch_size, args.classes = ["resnet18"], 32, 2, 10
        args.warmup, args.rounds = 1, 2
    if min(args.batch_size, args.size, args.classes, args.rounds, args.threads) < 1:
        parser.error("--batch-size, --size, --classes, --rounds and --threads must be >= 1")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    try:
        device_type = torch.device(args.device).type
    except RuntimeError:
        parser.error(f"--device {args.device!r} is not a device; use cpu or cuda[:N]")
    if device_type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available here; use --device cpu")
    if args.nvidia_dir is not None and not (args.nvidia_dir / "models").is_dir():
        parser.error(f"--nvidia-dir {args.nvidia_dir} has no models/ folder; give a checkout "
                     "of github.com/NVIDIA/partialconv")
    return args


def header(args: argparse.Namespace) -> str:
    device = args.device
    if torch.device(device).type == "cpu":
        allocator = "glibc keeps freed memory" if args.keep_freed_memory else "default allocator"
        device = f"cpu, {args.threads} threads, {allocator}"
    else:
        device = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    precision = "bf16 autocast" if args.amp == "bf16" else "fp32"
    layout = "channels_last" if args.channels_last else "NCHW"
    return (f"torch {torch.__version__}, {device}; batch {args.batch_size}, {args.size} px, "
            f"{args.classes} classes, {precision}, {layout}; SGD step (lr {args.lr:g}, "
            f"momentum 0.9, wd 1e-4); median of {args.rounds} interleaved rounds after "
            f"{args.warmup} warm-up rounds")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True  # as NVIDIA's ImageNet script: fastest conv kernels
    if args.keep_freed_memory and not keep_freed_memory():
        raise SystemExit("--keep-freed-memory needs glibc")
    print(header(args), flush=True)
    for arch in args.archs:
        times, cpu_times = time_arch(arch, args,
                                     lambda text: print(text, file=sys.stderr, flush=True))
        # CPU time says little on a GPU, where the host mostly waits
        cpu_times = cpu_times if torch.device(args.device).type == "cpu" else None
        print(report(arch, times, nvidia_absent_reason(arch, args) or "", cpu_times), flush=True)


if __name__ == "__main__":
    main()
