"""Measure the artefacts of issue 12 and which model option removes them.

Trains small PConvUNets briefly (the paper's pixel loss, Adam) on piecewise-constant colour
images (random Voronoi cells of random colours, so a hole's right fill is its surroundings'
colour), one per variant, then reports in eval mode and in train mode:

- ``flat 0.8`` / ``flat 0.2``: the output at the centre of a central square hole (a quarter of
  the image) in a flat image of that value; the right answer is the value itself;
- ``edge std``: the spread (std, x255) of the flat-0.8 output in a 3-pixel band inside the hole
  edge (speckle and outlines; 0 is right);
- ``hole L1``: mean |output - truth| (x255) in the holes of held-out piecewise-constant images
  with masks of the paper's (0.3, 0.6] ratios (fills that take training colours score badly);
- ``bn gap``: the largest |running mean - train-batch mean| / running std over the encoder
  BatchNorm channels on one batch with large holes (train vs eval statistics).

    python benchmarks/artefacts.py [--steps 300] [--size 64] [--variants paper,masked_batch]

Variants: ``paper`` (BatchNorm, nearest), ``bilinear`` (bilinear decoder upsampling),
``masked_batch`` (model.norm masked_batch), ``prefill`` (model.prefill diffusion). All seeded:
a rerun prints the same table.

    python benchmarks/artefacts.py --checkpoint RUN/best.pt --images DIR

probes a trained network instead (e.g. of ``make demo`` with the paper's model, images: its
training folder): the flat-image centre (128 px, 64 x 64 hole) in eval mode with its running
BatchNorm statistics, then with the statistics re-estimated (plain or masked) on training-like
batches (random crops of DIR with generator masks in a range of hole ratios), to tell whether
the statistics or the trained weights make the fill.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

# The repository, not this folder (whose masks.py would shadow the masks package), comes first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # before benchmarks/

from inpainting.data import list_images, load_image  # noqa: E402
from inpainting.engine.checkpoint import load_checkpoint
from inpainting.models import PConvUNet, build_model  # noqa: E402
from inpainting.models.losses import PixelLoss  # noqa: E402
from inpainting.models.masked_norm import MaskedBatchNorm2d  # noqa: E402
from inpainting.models.prefill import diffusion_fill  # noqa: E402
from masks import MaskGenerator  # noqa: E402

VARIANTS = {
    "paper": {},
    "bilinear": {"upsampling": "bilinear"},
    "masked_batch": {"norm": "masked_batch"},
    "prefill": {"prefill": "diffusion"},
}


def piecewise_constant(count: int, size: int, rng: np.random.Generator) -> torch.Tensor:
    """(count, 3, size, size) in [0, 1]: 3-6 Voronoi cells per image, each one random colour."""
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), -1)
    images = []
    for _ in range(count):
        cells = int(rng.integers(3, 7))
        centres = rng.uniform(0, size, (cells, 2))
        colours = rng.uniform(0, 1, (cells, 3))
        nearest = ((grid[:, :, None, :] - centres) ** 2).sum(-1).argmin(-1)  # (size, size)
        images.append(colours[nearest].transpose(2, 0, 1))
    return torch.tensor(np.stack(images), dtype=torch.float32)


def make_masks(count: int, size: int, hole_range: tuple[float, float], seed: int
               ) -> torch.Tensor:
    """(count, 1, size, size) generator masks, 1 = known, 0 = hole."""
    generator = MaskGenerator(size, size, hole_range=hole_range, rng=seed)
    return torch.stack([torch.from_numpy(generator()).float()[None] for _ in range(count)])


def train(variant: str, steps: int, size: int, batch: int = 8) -> PConvUNet:
    """The variant's model after ``steps`` Adam steps (lr 5e-4) of the paper's pixel loss."""
    torch.manual_seed(0)
    depth = int(np.log2(size)) - 1
    model = PConvUNet(depth=depth, base_channels=16, **VARIANTS[variant])
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    loss_fn = PixelLoss({"valid": 1.0, "hole": 6.0, "tv": 0.1})
    rng = np.random.default_rng(0)
    generator = MaskGenerator(size, size, hole_range=(0.01, 0.6), rng=1)
    model.train()
    for _ in range(steps):
        image = piecewise_constant(batch, size, rng)
        mask = torch.stack([torch.from_numpy(generator()).float()[None] for _ in range(batch)])
        output, _ = model(image * mask, mask)
        loss = loss_fn(output, image, mask)["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model


def central_hole(size: int) -> torch.Tensor:
    """(1, 1, size, size): a square hole of side size / 2 in the middle, 1 = known."""
    mask = torch.ones(1, 1, size, size)
    mask[..., size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 0
    return mask


@torch.no_grad()
def flat_probe(model: PConvUNet, value: float, size: int, train_mode: bool) -> tuple[float, float]:
    """(centre value, edge-band std x255) of the output on a flat image with a central hole.

    In train mode the batch holds 8 copies (batch statistics of the flat image itself)."""
    model.train(train_mode)
    mask = central_hole(size).expand(8, -1, -1, -1)
    image = torch.full((8, 3, size, size), value)
    output, _ = model(image * mask, mask)
    model.eval()
    centre = float(output[0, :, size // 2, size // 2].mean())
    inner = central_hole(size)[0, 0] == 0
    core = torch.zeros_like(inner)
    core[size // 4 + 3: 3 * size // 4 - 3, size // 4 + 3: 3 * size // 4 - 3] = True
    band = inner & ~core
    return centre, float(output[0][:, band].std()) * 255


@torch.no_grad()
def hole_l1(model: PConvUNet, size: int, train_mode: bool) -> float:
    """Mean |output - truth| x255 in the holes of 32 held-out images, (0.3, 0.6] holes."""
    image = piecewise_constant(32, size, np.random.default_rng(123))
    mask = make_masks(32, size, (0.3, 0.6), seed=7)
    model.train(train_mode)
    output, _ = model(image * mask, mask)
    model.eval()
    hole = (1 - mask).expand_as(image)
    return float(((output.clamp(0, 1) - image).abs() * hole).sum() / hole.sum()) * 255


@torch.no_grad()
def bn_gap(model: PConvUNet, size: int) -> float:
    """max over encoder BN channels of |running mean - batch mean| / sqrt(running var) on one
    batch with (0.5, 0.6] holes: how far eval mode normalises from what training saw."""
    image = piecewise_constant(16, size, np.random.default_rng(5))
    mask = make_masks(16, size, (0.5, 0.6), seed=9)
    gaps: list[float] = []
    inputs, masks = [image * mask], [mask]
    if model.prefill != "none":
        inputs, masks = inputs + [diffusion_fill(image, mask)], masks + [torch.ones_like(mask)]
    model.eval()
    for block in model.encoder:
        if block.conv.multi_channel:
            out, new_mask = block.conv.forward_concat(inputs, masks)
        else:
            out, new_mask = block.conv(inputs[0], masks[0])
        norm = block.norm
        if isinstance(norm, torch.nn.BatchNorm2d):
            weight = new_mask if isinstance(norm, MaskedBatchNorm2d) else torch.ones_like(new_mask)
            mean = (out * weight).sum((0, 2, 3)) / weight.sum()
            gap = (norm.running_mean - mean).abs() / norm.running_var.sqrt()
            gaps.append(float(gap.max()))
        inputs, masks = [block.act(norm(out))], [new_mask]
    return max(gaps) if gaps else 0.0


def crops(folder: Path, count: int, size: int, seed: int) -> torch.Tensor:
    """(count, 3, size, size) random crops of the images in ``folder`` (seeded)."""
    rng = np.random.default_rng(seed)
    files = list_images(folder)
    batch = []
    for index in rng.integers(0, len(files), count):
        array = load_image(files[index])  # (H, W, 3) uint8
        top = int(rng.integers(0, array.shape[0] - size + 1))
        left = int(rng.integers(0, array.shape[1] - size + 1))
        batch.append(torch.from_numpy(array[top:top + size, left:left + size].copy()))
    return torch.stack(batch).permute(0, 3, 1, 2).float() / 255


@torch.no_grad()
def probe_checkpoint(path: Path, images: Path, size: int = 128) -> None:
    """Print the flat-image centres of a trained network under each BatchNorm statistics."""
    state = load_checkpoint(path)
    print(f"{path} (step {state['step']}); flat image, central {size // 2} px hole, eval mode")
    print("| BatchNorm statistics | flat 0.8 centre (RGB) | flat 0.2 centre (RGB) |")
    print("|---|---|---|")
    for label, norm, hole_range in (("running (as trained)", "batch", None),
                                    ("re-estimated, holes (0.01, 0.6]", "batch", (0.01, 0.6)),
                                    ("masked, holes (0.01, 0.6]", "masked_batch", (0.01, 0.6)),
                                    ("re-estimated, holes (0, 0.01]", "batch", (0.0, 0.01)),
                                    ("re-estimated, holes (0.5, 0.6]", "batch", (0.5, 0.6))):
        model = build_model(**{**state["config"]["model"], "norm": norm})
        model.load_state_dict(state["model"])
        if hole_range is not None:  # cumulative averages over 12 training-like batches
            for module in model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.reset_running_stats()
                    module.momentum = None
            model.train()
            for seed in range(12):
                image, mask = crops(images, 8, size, seed), make_masks(8, size, hole_range, seed)
                model(image * mask, mask)
        model.eval()
        hole = central_hole(size)
        cells = []
        for value in (0.8, 0.2):
            output, _ = model(torch.full((1, 3, size, size), value) * hole, hole)
            cells.append(", ".join(f"{v:.2f}" for v in output[0, :, size // 2, size // 2]))
        print(f"| {label} | {cells[0]} | {cells[1]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--checkpoint", type=Path, help="probe this trained network instead")
    parser.add_argument("--images", type=Path, help="with --checkpoint: its training images")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.checkpoint is not None:
        if args.images is None:
            parser.error("--checkpoint needs --images (the run's training folder)")
        probe_checkpoint(args.checkpoint, args.images)
        return
    print(f"{args.steps} steps, {args.size} px piecewise-constant images, batch 8")
    print("| variant | mode | flat 0.8 centre | flat 0.2 centre | edge std (x255) | "
          "hole L1 (x255) | bn gap | train s |")
    print("|---|---|---|---|---|---|---|---|")
    for variant in args.variants.split(","):
        started = time.perf_counter()
        model = train(variant, args.steps, args.size)
        seconds = time.perf_counter() - started
        gap = bn_gap(model, args.size)
        for mode, train_mode in (("eval", False), ("train", True)):
            high, edge = flat_probe(model, 0.8, args.size, train_mode)
            low, _ = flat_probe(model, 0.2, args.size, train_mode)
            l1 = hole_l1(model, args.size, train_mode)
            print(f"| {variant} | {mode} | {high:.3f} | {low:.3f} | {edge:.1f} | {l1:.1f} | "
                  f"{gap:.2f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
