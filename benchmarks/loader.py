"""Does the training loader keep up with a folder of a few large photos?

(a) The loader alone, one worker, 128 px samples with generated masks (configs/demo.yaml's
    data), images/s per worker on the large JPEGs of ``--photos`` and on 1024 px PNGs made from
    them (in a temporary folder), for three loaders, interleaved, median of ``--repeats``:

      before      a DataLoader per epoch (workers re-created at every epoch boundary) and a
                  full decode per sample: what ``make_train_loader`` did before
      no cache    one loader iterator for all epochs (``engine.batches``), decode per sample:
                  a dataset too large for ``data.decode_cache_mb``
      after       one iterator and the per-worker decode cache (``data.decode_cache_mb``)

(b) ``train.py --config configs/demo.yaml --set data.train=DIR`` on the large photos and on
    192 px centre crops of them (the same 16 images), side by side: images/s from the run's
    log lines (median over the log intervals after the first, then over ``--repeats`` runs),
    for this checkout and, with ``--before REV``, for that commit (``git archive`` of the git
    repository in the current folder).

Usage: python benchmarks/loader.py [--photos DIR] [--repeats 3] [--steps 60] [--before REV]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, DistributedSampler

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inpainting.data import InpaintingDataset, list_images, load_image  # noqa: E402
from inpainting.engine.batches import BatchStream, make_train_loader  # noqa: E402
from masks import MaskGenerator  # noqa: E402

SIZE, BATCH, SEED = 128, 8, 0  # configs/demo.yaml's samples
_IMG_S = re.compile(r"\| ([0-9.]+) img/s")


def make_pngs(photos: list[Path], folder: Path, side: int = 1024) -> list[Path]:
    """A ``side`` x ``side`` PNG of each photo (resized centre square)."""
    folder.mkdir()
    paths = []
    for index, photo in enumerate(photos):
        image = load_image(photo)
        short = min(image.shape[:2])
        top, left = (image.shape[0] - short) // 2, (image.shape[1] - short) // 2
        square = Image.fromarray(image[top:top + short, left:left + short])
        paths.append(folder / f"{index:02d}.png")
        square.resize((side, side), Image.BICUBIC).save(paths[-1])
    return paths


def make_crops(photos: list[Path], folder: Path, side: int = 192) -> Path:
    """A ``side`` px centre crop of each photo at its own resolution, as JPEG."""
    folder.mkdir()
    for index, photo in enumerate(photos):
        image = load_image(photo)
        top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
        Image.fromarray(image[top:top + side, left:left + side]).save(
            folder / f"{index:02d}.jpg", quality=95)
    return folder


def _dataset(paths: list[Path], cache_mb: int) -> InpaintingDataset:
    return InpaintingDataset(paths, SIZE, train=True, mask_source=MaskGenerator(SIZE, SIZE),
                             seed=SEED, decode_cache_mb=cache_mb)


def _before_batches(dataset: InpaintingDataset, count: int):
    """The loader as it was: a new DataLoader (and worker) per epoch."""
    epoch = 0
    while True:
        sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=SEED)
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        loader = DataLoader(dataset, batch_size=BATCH, sampler=sampler, num_workers=1,
                            drop_last=True, generator=torch.Generator().manual_seed(SEED))
        for batch in loader:
            yield batch
            count -= 1
            if count == 0:
                return
        epoch += 1


def _stream_batches(dataset: InpaintingDataset, count: int):
    stream = BatchStream(make_train_loader(dataset, BATCH, num_workers=1, seed=SEED))
    for _ in range(count):
        yield next(stream)
    stream.close()


LOADERS = {
    "before": lambda paths, count: _before_batches(_dataset(paths, 0), count),
    "no cache": lambda paths, count: _stream_batches(_dataset(paths, 0), count),
    "after": lambda paths, count: _stream_batches(_dataset(paths, 256), count),
}


def loader_table(sets: dict[str, list[Path]], batches: int, repeats: int) -> str:
    """Images/s per worker of each loader on each image set (interleaved, medians)."""
    rates: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeats):
        for set_name, paths in sets.items():
            for name, batches_of in LOADERS.items():
                start = time.perf_counter()
                for _batch in batches_of(paths, batches):
                    pass
                rate = batches * BATCH / (time.perf_counter() - start)
                rates.setdefault((set_name, name), []).append(rate)
    lines = [f"loader alone, 1 worker, {SIZE} px samples + generated masks, batch {BATCH}, "
             f"{batches} batches, median of {repeats} interleaved runs; images/s per worker",
             f"{'images':28s}" + "".join(f"{name:>12s}" for name in LOADERS) + "  after/before"]
    for set_name in sets:
        medians = [statistics.median(rates[(set_name, name)]) for name in LOADERS]
        lines.append(f"{set_name:28s}" + "".join(f"{m:12.1f}" for m in medians)
                     + f"{medians[-1] / medians[0]:13.2f}x")
    return "\n".join(lines)


def train_rate(tree: Path, data: Path, run_dir: Path, steps: int) -> float:
    """Median images/s of one ``train.py`` run of configs/demo.yaml in ``tree`` on ``data``."""
    settings = [f"data.train={data}", f"train.max_steps={steps}", "train.finetune_step=0",
                "train.log_every=10",
                "train.val_every=100000", "train.ckpt_every=100000", "masks.val_count=6",
                "log.tensorboard=false", "log.progress=false", f"train.run_dir={run_dir}"]
    command = [sys.executable, "train.py", "--config", "configs/demo.yaml"]
    for setting in settings:
        command += ["--set", setting]
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"train.py in {tree} failed ({done.returncode}): {done.stderr[-2000:]}")
    logged = [float(m) for m in _IMG_S.findall((run_dir / "train.log").read_text())]
    return statistics.median(logged[1:])  # the first interval holds the start-up


def train_table(trees: dict[str, Path], sets: dict[str, Path], steps: int, repeats: int,
                scratch: Path) -> str:
    """train.py images/s per tree and image set, and the large/pre-cropped ratio."""
    rates: dict[tuple[str, str], list[float]] = {}
    for repeat in range(repeats):
        for tree_name, tree in trees.items():
            for set_name, data in sets.items():
                run_dir = scratch / f"run-{tree_name}-{set_name}-{repeat}".replace(" ", "_")
                rates.setdefault((tree_name, set_name), []).append(
                    train_rate(tree, data, run_dir, steps))
    names = list(sets)
    lines = [f"train.py --config configs/demo.yaml --set data.train=DIR, {steps} steps, "
             f"median of {repeats} interleaved runs; images/s",
             f"{'code':12s}" + "".join(f"{name:>22s}" for name in names) + "   ratio"]
    for tree_name in trees:
        medians = [statistics.median(rates[(tree_name, name)]) for name in names]
        lines.append(f"{tree_name:12s}" + "".join(f"{m:22.1f}" for m in medians)
                     + f"{medians[0] / medians[1]:8.2f}")
    return "\n".join(lines)


def _export(rev: str, folder: Path) -> Path:
    folder.mkdir()
    archive = subprocess.run(["git", "archive", rev], check=True,  # the current folder's repo
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", default="/work/shared/data/photos", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, default=40, help="batches per loader run")
    parser.add_argument("--steps", type=int, default=60, help="train.py steps per run")
    parser.add_argument("--before", default="", metavar="REV",
                        help="also run train.py of this commit (e.g. the one before the change)")
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    np.seterr(all="ignore")
    photos = list_images(args.photos)
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        pngs = make_pngs(photos, scratch / "png1024")
        print(loader_table({f"{len(photos)} photos (JPEG, ~1280 px)": photos,
                            f"{len(pngs)} PNGs (1024 px)": pngs}, args.batches, args.repeats))
        if args.skip_train:
            return
        trees = {"this": ROOT}
        if args.before:
            trees[f"{args.before[:10]}"] = _export(args.before, scratch / "before")
        sets = {"large photos": args.photos,
                "192 px crops": make_crops(photos, scratch / "crops192")}
        print()
        print(train_table(trees, sets, args.steps, args.repeats, scratch))


if __name__ == "__main__":
    main()
