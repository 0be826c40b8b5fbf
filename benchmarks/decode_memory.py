"""Peak memory of one dataset sample from a huge image: strips and a large photo.

Each case runs in a fresh process that imports the project, builds an ``InpaintingDataset``
over one image (64 px; the training random crop and random resized crop, the evaluation centre
crop and resize) and reads sample 0.
Reported per case, in MiB: the process's peak resident memory (``VmHWM``, Linux) during the
sample and its rise over the resident memory just before it (the peak is reset there through
``/proc/self/clear_refs``, so the imports' peak does not hide it), and the peak of
Python-tracked allocations during the sample (``tracemalloc``: it sees NumPy arrays but not
Pillow's or OpenCV's own buffers); and the sample's time.

Run: ``python benchmarks/decode_memory.py`` (about half a minute on a 2-core VM). The images are
written to a temporary folder (sizes H x W): a 1 x 60000 and a 60000 x 1 random strip (PNG), a
6000 x 8000 smooth photo-like image as JPEG (quality 90) and PNG, and a 40 x 48 PNG for
reference.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

_CHILD = """
import sys, time, tracemalloc
import numpy as np
from inpainting.data import InpaintingDataset

def peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

MODES = {"train crop": {"train": True},
         "train rrc": {"train": True, "train_resize": "random_resized_crop"},
         "eval centre crop": {"train": False},
         "eval resize": {"train": False, "eval_mode": "resize"}}
path, size, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
dataset = InpaintingDataset([path], size, seed=0, **MODES[mode],
                            mask_source=lambda rng: np.ones((size, size), np.uint8))
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # reset the peak resident memory (VmHWM) to the current level
before = peak_mib()
tracemalloc.start()
start = time.perf_counter()
sample = dataset[0]
seconds = time.perf_counter() - start
traced = tracemalloc.get_traced_memory()[1]
after = peak_mib()
assert tuple(sample["image"].shape) == (3, size, size)
print(after, after - before, traced / 2**20, seconds)
"""


def _write_images(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    paths = {name: folder / name for name in ("40x48.png", "1x60000.png", "60000x1.png",
                                              "6000x8000.jpg", "6000x8000.png")}
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(paths["40x48.png"])
    Image.fromarray(rng.integers(0, 256, (1, 60000, 3), dtype=np.uint8)).save(paths["1x60000.png"])
    Image.fromarray(rng.integers(0, 256, (60000, 1, 3), dtype=np.uint8)).save(paths["60000x1.png"])
    small = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8).astype(np.float32)
    photo = np.clip(cv2.resize(small, (8000, 6000), interpolation=cv2.INTER_CUBIC), 0, 255)
    Image.fromarray(photo.astype(np.uint8)).save(paths["6000x8000.jpg"], quality=90)
    Image.fromarray(photo.astype(np.uint8)).save(paths["6000x8000.png"])
    return paths


def main() -> None:
    print("| image (H x W) | sample | peak RSS MiB | rise MiB | tracemalloc peak MiB | seconds |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name, path in _write_images(Path(folder)).items():
            for mode in ("train crop", "train rrc", "eval centre crop", "eval resize"):
                done = subprocess.run([sys.executable, "-c", _CHILD, str(path), "64", mode],
                                      cwd=REPO, capture_output=True, text=True, check=True,
                                      env={"PYTHONPATH": str(REPO), "PATH": ""})
                peak, rise, traced, seconds = (float(x) for x in done.stdout.split())
                print(f"| {name} | {mode} | {peak:.0f} | {rise:.0f} | {traced:.0f} | "
                      f"{seconds:.2f} |")


if __name__ == "__main__":
    main()
