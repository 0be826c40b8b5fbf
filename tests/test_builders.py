"""Builders: each config section -> its component, looked up in the registry the config checks."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_images

from inpainting.engine.optim import build_optimizer, build_scheduler
from inpainting.models import PConvUNet, build_model
from inpainting.models.losses import InpaintingLoss, PixelLoss, build_loss
from inpainting.tasks import load_config
from inpainting.tasks.inpainting.data import (
    build_datasets,
    build_mask_source,
    build_val_loader,
    build_val_masks,
    resolve_image_paths,
)
from masks import FolderMaskSource, MaskGenerator, save_mask

TINY = ["model.depth=3", "model.base_channels=8", "data.image_size=32", "data.batch_size=2",
        "data.num_workers=0", "masks.val_count=4", "loss.vgg_weights=none"]


def test_build_model_from_the_model_section():
    config = load_config(None, TINY)
    model = build_model(**dataclasses.asdict(config.model))
    assert isinstance(model, PConvUNet) and model.depth == 3


def test_build_loss_skips_vgg_when_its_terms_weigh_nothing():
    pixel = load_config(None, TINY + ["loss.weights.perceptual=0", "loss.weights.style_out=0",
                                      "loss.weights.style_comp=0", "loss.weights.hole=5"])
    loss = build_loss(dataclasses.asdict(pixel.loss.weights))
    assert isinstance(loss, PixelLoss) and loss.weights == {"valid": 1.0, "hole": 5.0, "tv": 0.1}
    weights = load_config(None, TINY + ["loss.weights.style_out=0"]).loss.weights
    full = build_loss(dataclasses.asdict(weights), "none")
    assert isinstance(full, InpaintingLoss) and full.weights["style_out"] == 0.0


def test_pixel_loss_equals_the_pixel_terms_of_the_full_loss():
    output, target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    mask = (torch.rand(2, 1, 32, 32) > 0.4).float()
    pixel = PixelLoss({"valid": 1.0, "hole": 6.0, "tv": 0.1})(output, target, mask)
    full = InpaintingLoss(vgg_weights="none")(output, target, mask)
    for key in ("valid", "hole", "tv"):
        assert torch.equal(pixel[key], full[key])
    assert torch.allclose(pixel["total"], full["valid"] + 6 * full["hole"] + 0.1 * full["tv"])


def test_build_optimizer_and_scheduler():
    config = load_config(None, TINY + ["optim.name=adamw", "optim.weight_decay=0.01",
                                       "optim.schedule=cosine", "train.max_steps=10"])
    model = torch.nn.Linear(2, 2)
    optimizer = build_optimizer(config.optim, model)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.param_groups[0]["weight_decay"] == 0.01
    scheduler = build_scheduler(config.optim, config.train.max_steps, optimizer)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(config.optim.lr * 0.5)


def test_build_mask_source_follows_masks_source(tmp_path):
    assert isinstance(build_mask_source(load_config(None, TINY).masks, 32), MaskGenerator)
    folder = tmp_path / "masks"
    folder.mkdir()
    known = np.ones((32, 32), np.uint8)
    known[8:20, 8:20] = 0
    save_mask(folder / "a.png", known)
    config = load_config(None, TINY + ["masks.source=folder", f"masks.folder={folder}",
                                       "masks.augment=false"])
    source = build_mask_source(config.masks, config.data.image_size)
    assert isinstance(source, FolderMaskSource)
    assert np.array_equal(source(np.random.default_rng(0)), known)


def test_resolve_image_paths_holds_out_and_passes_the_demo_step(tmp_path):
    images = make_images(tmp_path / "images", count=10)
    config = load_config(None, TINY + [f"data.train={images}", "data.val_fraction=0.2",
                                       "data.test_fraction=0.1"])
    train, val, test = resolve_image_paths(config.data, seed=0)
    assert (len(train), len(val), len(test)) == (7, 2, 1)
    assert sorted(train + val + test) == sorted(images.iterdir())
    calls = []

    def prepare_demo(root: Path) -> tuple[Path, Path]:
        calls.append(root)
        return images, images

    demo = load_config(None, TINY + ["data.train=demo", f"data.demo_root={tmp_path / 'demo'}"])
    train, val, test = resolve_image_paths(demo.data, seed=0, prepare_demo=prepare_demo)
    assert calls == [tmp_path / "demo"] and len(train) == len(val) == 10 and test == []


def test_datasets_and_val_loader(tmp_path):
    images = sorted(make_images(tmp_path / "images", count=3).iterdir())
    config = load_config(None, TINY)
    val_masks = build_val_masks(config.masks, 32, tmp_path / "run")
    assert (tmp_path / "run" / "val_masks").is_dir() and len(val_masks) == 4
    assert np.array_equal(build_val_masks(config.masks, 32, tmp_path / "run").masks,
                          val_masks.masks)
    train_set, val_set = build_datasets(config.data, config.masks, 0, images[:2], images[2:],
                                        val_masks)
    assert len(val_set) == 4 and train_set[0]["image"].shape == (3, 32, 32)
    batch = next(iter(build_val_loader(config.data, val_set)))
    assert batch["image"].shape == (2, 3, 32, 32) and batch["mask"].shape == (2, 1, 32, 32)
    assert build_datasets(config.data, config.masks, 0, images, [], None)[1] is None
