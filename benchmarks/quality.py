"""Quality against classical inpainting: the photos_cpu recipe over its training time.

    python benchmarks/quality.py --photos DIR [--minutes 30] [--evals 4] [--out runs/quality]

1. Split: of the photos in DIR (sorted by name, at least 5), the 4 at positions
   round((k + 0.5) * n / 4), k = 0..3, are the test photos; the model trains on all the others.
2. Test pairs: ``--crops`` fixed ``--crop`` (256) px crops of each test photo at its own
   resolution (crop corners from a seeded generator), and ``--masks-per-bin`` fixed masks in
   each of the paper's six hole-ratio bins (``masks.dataset.generate_mask_set``, seed 0, no
   border constraint); the evaluation package pairs mask i with crop order[i mod crops].
3. Training: ``train.py --config configs/photos_cpu.yaml`` (plus ``--set`` overrides) in
   ``--evals`` segments of equal training time, each resuming the last (``train.max_minutes``
   counts the time of all segments, validations included), so the run is the one a single
   ``train.py`` would make.
4. Before the first segment (the untrained network: with ``model.prefill`` the classical fill
   alone) and after each, ``inpainting.metrics.evaluation`` scores ``last.pt`` beside OpenCV
   Telea and Navier-Stokes on the same pairs (8-bit composites, ``inpainting.metrics.scoring``).

Writes to ``--out``: ``results.json`` (every evaluation), ``table.md`` (the last evaluation per
bin, and PSNR over training time), ``psnr_vs_minutes.png`` and the evaluation report folders.
Training is heavy: on a shared machine run it under ``flock /work/heavy.lock``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# The repository before this folder (whose masks.py would shadow the masks package); inserted,
# not put in place of sys.path[0], so a test process that loads this module keeps its path.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inpainting.data import list_images  # noqa: E402
from inpainting.engine.checkpoint import load_checkpoint  # noqa: E402
from inpainting.engine.run import setup_training  # noqa: E402
from inpainting.metrics.evaluation import EvalOptions, evaluate_checkpoint  # noqa: E402
from inpainting.metrics.scoring import bin_label  # noqa: E402
from inpainting.tasks.classification.padding_report.plot import _font  # noqa: E402
from masks import PAPER_BINS  # noqa: E402
from masks.dataset import generate_mask_set  # noqa: E402

BASELINES = ("opencv-telea", "opencv-ns")


def split_photos(photos: list[Path]) -> tuple[list[Path], list[Path]]:
    """(train, test): the 4 test photos at positions round((k + 0.5) * n / 4) of the list."""
    if len(photos) < 5:
        raise SystemExit(f"quality.py: need at least 5 photos, found {len(photos)}")
    picks = {round((k + 0.5) * len(photos) / 4) for k in range(4)}
    return ([p for i, p in enumerate(photos) if i not in picks],
            [p for i, p in enumerate(photos) if i in picks])


def write_crops(photos: list[Path], folder: Path, per_photo: int, crop: int, seed: int = 0
                ) -> None:
    """``per_photo`` fixed ``crop``-px crops of each photo (own resolution) as PNGs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for photo in photos:
        with Image.open(photo) as image:
            image = image.convert("RGB")
            if min(image.size) < crop:
                raise SystemExit(f"quality.py: {photo} is smaller than {crop} px")
            for index in range(per_photo):
                left = int(rng.integers(0, image.width - crop + 1))
                top = int(rng.integers(0, image.height - crop + 1))
                image.crop((left, top, left + crop, top + crop)).save(
                    folder / f"{photo.stem}_{index}.png")


def link_photos(photos: list[Path], folder: Path) -> None:
    """The training folder: symbolic links to ``photos``."""
    folder.mkdir(parents=True, exist_ok=True)
    for photo in photos:
        link = folder / photo.name
        if not link.exists():
            link.symlink_to(photo.resolve())


def train_segment(config: str, overrides: list[str], run_dir: Path, minutes: float
                  ) -> tuple[int, float]:
    """Train (or resume) the run until ``minutes`` of training time.

    Returns:
        The step and training minutes of the run's ``last.pt``.
    """
    budget = f"train.max_minutes={minutes}"
    last = run_dir / "last.pt"
    if last.is_file():
        state = load_checkpoint(last)
        if state["step"] >= state["config"]["train"]["max_steps"]:  # finished before the time
            return int(state["step"]), float(state["train_seconds"]) / 60
        session = setup_training(None, [budget], resume=str(run_dir), resume_state=state)
    else:
        session = setup_training(config, [*overrides, f"train.run_dir={run_dir}", budget])
    try:
        if minutes > 0:
            session.trainer.fit()
        else:  # the untrained network (with a prefill: the classical fill itself)
            session.trainer.save("last.pt")
    finally:
        session.close()
    state = load_checkpoint(run_dir / "last.pt")  # what a resume continues from
    return int(state["step"]), float(state["train_seconds"]) / 60


def score(run_dir: Path, crops: Path, masks: Path, out: Path, crop: int,
          baselines: tuple[str, ...] = BASELINES) -> dict[str, dict]:
    """method -> {"overall": means, "bins": {label: means}} of ``last.pt`` and ``baselines``."""
    report = evaluate_checkpoint(EvalOptions(
        checkpoint=run_dir / "last.pt", images=crops, out=out, masks=masks, image_size=crop,
        fit="center_crop", baselines=baselines, device="cpu", grid_rows=4, progress=False))
    return {name: {"overall": summary.overall,
                   "bins": {bin_label(row["bin"]): row for row in summary.rows}}
            for name, summary in report.results.items()}


def markdown(evaluations: list[dict]) -> str:
    """The last evaluation per bin (PSNR / SSIM of each method) and PSNR over training time."""
    last = evaluations[-1]["scores"]
    methods = ["model", *BASELINES]
    lines = [f"Last evaluation after {evaluations[-1]['minutes']:.1f} training minutes "
             f"(PSNR dB / SSIM):", "",
             "| hole ratio | " + " | ".join(methods) + " |",
             "|---" * (len(methods) + 1) + "|"]
    labels = [*last["model"]["bins"], "overall"]
    for label in labels:
        cells = []
        for method in methods:
            row = last[method]["overall" if label == "overall" else "bins"]
            row = row if label == "overall" else row[label]
            cells.append(f"{row['psnr']:.2f} / {row['ssim']:.3f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Overall PSNR over training time:", "",
              "| minutes | step | model | " + " | ".join(BASELINES) + " |", "|---" * 5 + "|"]
    for entry in evaluations:
        cells = [f"{entry['scores'][m]['overall']['psnr']:.2f}" for m in methods]
        lines.append(f"| {entry['minutes']:.1f} | {entry['step']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(evaluations: list[dict], path: Path) -> None:
    """Overall PSNR of the model against training minutes, the baselines as flat lines."""
    width, height, left, top, bottom, right = 560, 320, 60, 30, 40, 140
    series = {m: [(e["minutes"], e["scores"][m]["overall"]["psnr"]) for e in evaluations]
              for m in ("model", *BASELINES)}
    values = [v for points in series.values() for _, v in points]
    low, high = min(values) - 0.5, max(values) + 0.5
    span_x = max(e["minutes"] for e in evaluations) or 1.0
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw, font = ImageDraw.Draw(image), _font(12)

    def xy(minutes: float, value: float) -> tuple[float, float]:
        return (left + (width - left - right) * minutes / span_x,
                top + (height - top - bottom) * (high - value) / (high - low))

    draw.rectangle([left, top, width - right, height - bottom], outline=(0, 0, 0))
    for index in range(5):
        value = low + (high - low) * index / 4
        draw.text((8, xy(0, value)[1] - 7), f"{value:.1f}", fill=(0, 0, 0), font=font)
        minutes = span_x * index / 4
        draw.text((xy(minutes, low)[0] - 8, height - bottom + 6), f"{minutes:.3g}",
                  fill=(0, 0, 0), font=font)
    draw.text((left, 8), "overall PSNR (dB) of the held-out crops vs training minutes",
              fill=(0, 0, 0), font=font)
    colours = {"model": (44, 160, 44), "opencv-telea": (31, 119, 180),
               "opencv-ns": (255, 127, 14)}
    for rank, (name, points) in enumerate(series.items()):
        if name != "model":  # the same every time: a flat line
            points = [(0.0, points[-1][1]), (span_x, points[-1][1])]
        draw.line([xy(*p) for p in points], fill=colours[name], width=2)
        for point in points if name == "model" else []:
            x, y = xy(*point)
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colours[name])
        draw.text((width - right + 12, top + 8 + 16 * rank), name, fill=colours[name], font=font)
    image.save(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--evals", type=int, default=4, help="evaluations over the training")
    parser.add_argument("--crops", type=int, default=3, help="test crops per test photo")
    parser.add_argument("--crop", type=int, default=256, help="side of the test crops")
    parser.add_argument("--masks-per-bin", type=int, default=12)
    parser.add_argument("--config", default=str(REPO / "configs" / "photos_cpu.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", type=Path, default=Path("runs/quality"))
    args = parser.parse_args(argv)
    if (args.out / "run").exists():
        raise SystemExit(f"quality.py: {args.out} holds an earlier run; pass another --out")
    train, test = split_photos(list_images(args.photos))
    link_photos(train, args.out / "train")
    write_crops(test, args.out / "test_crops", args.crops, args.crop)
    generate_mask_set(args.out / "masks", args.crop, list(PAPER_BINS), args.masks_per_bin,
                      borders=(False,), seed=0, progress=False)
    overrides = [f"data.train={args.out / 'train'}", "log.progress=false", *args.overrides]
    evaluations = []
    for index in range(args.evals + 1):
        step, minutes = train_segment(args.config, overrides, args.out / "run",
                                args.minutes * index / args.evals)
        # the pairs are fixed: the classical methods score the same at every evaluation
        scores = score(args.out / "run", args.out / "test_crops", args.out / "masks",
                       args.out / f"eval_{index}", args.crop, BASELINES if index == 0 else ())
        scores.update((name, evaluations[0]["scores"][name]) for name in BASELINES if index)
        evaluations.append({"minutes": minutes, "step": step, "scores": scores})
        (args.out / "results.json").write_text(json.dumps(evaluations, indent=1) + "\n")
        print(f"{minutes:.1f} min: " + ", ".join(
            f"{m} {s['overall']['psnr']:.2f} dB" for m, s in scores.items()), flush=True)
    (args.out / "table.md").write_text(markdown(evaluations), encoding="utf-8")
    plot(evaluations, args.out / "psnr_vs_minutes.png")
    print(markdown(evaluations))
    print(f"train: {len(train)} photos, test: {', '.join(p.name for p in test)}; "
          f"results in {args.out}")


if __name__ == "__main__":
    main()
