"""Time of ``python -m inpainting.convert --from mmagic`` on a full-size synthetic checkpoint.

mmagic's published PConv files cannot be downloaded here, so the checkpoint is synthetic: the
exact key set and shapes of mmagic's 7-level PConv generator (25.8M parameters, plus the
all-ones ``weight_mask_updater`` buffers a real file holds) with random values, saved as mmagic
saves (``{"meta", "state_dict", "optimizer"}``). Each repetition converts the file in-process
(read, check, rename, BGR flip, sha256) and writes the result with the engine's atomic save;
the median and the spread are printed, with both file sizes.

    python benchmarks/convert.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inpainting.engine.checkpoint import save_checkpoint  # noqa: E402
from inpainting.models import PConvUNet  # noqa: E402
from inpainting.tasks.inpainting.mmagic import BASE_CHANNELS, DEPTH, mmagic_key  # noqa: E402


def synthetic_checkpoint(path: Path) -> None:
    """An mmagic-style file of random weights with the published generator's keys."""
    state = {}
    for key, value in PConvUNet(depth=DEPTH, base_channels=BASE_CHANNELS).state_dict().items():
        theirs = mmagic_key(key)
        state[theirs] = torch.randn_like(value.float()).to(value.dtype) \
            if value.is_floating_point() else value
        if theirs.endswith(".conv.weight"):
            state[theirs.replace(".weight", ".weight_mask_updater")] = torch.ones_like(value)
    torch.save({"meta": {"iter": 500000}, "state_dict": state, "optimizer": {}}, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from inpainting.tasks.inpainting.mmagic import convert_mmagic_checkpoint

    with tempfile.TemporaryDirectory() as folder:
        source, out = Path(folder) / "pconv.pth", Path(folder) / "pconv.pt"
        synthetic_checkpoint(source)
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            save_checkpoint(convert_mmagic_checkpoint(source), out)
            seconds.append(time.perf_counter() - start)
        print(f"source {source.stat().st_size / 2**20:.0f} MiB -> converted "
              f"{out.stat().st_size / 2**20:.0f} MiB; convert + save: median "
              f"{statistics.median(seconds):.2f} s (min {min(seconds):.2f}, max "
              f"{max(seconds):.2f}) over {args.repeats}, {torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
