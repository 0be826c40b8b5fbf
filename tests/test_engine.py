"""Engine: the Trainer loop on tiny CPU runs (32x32, batch 2, depth 3, 8 channels, random VGG)."""

import dataclasses
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from run_helpers import load, run, scalars
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from inpainting.engine.batches import BatchStream, make_train_loader
from inpainting.engine.checkpoint import save_checkpoint
from inpainting.engine.config import ConfigError, config_to_dict
from inpainting.engine.errors import UserInputError
from inpainting.engine.optim import lr_factor
from inpainting.engine.run import setup_training
from inpainting.engine.trainer import NonFiniteLossError, Trainer
from inpainting.models import build_model
from inpainting.models.losses import PixelLoss
from inpainting.tasks import load_config
from inpainting.tasks.inpainting.checkpoint import load_model_from_checkpoint
from inpainting.tasks.inpainting.task import InpaintingTask

CHECKPOINT_KEYS = {"model", "optimizer", "scheduler", "scaler", "ema", "step", "train_seconds",
                   "best_metric", "config", "rng_state", "data_position", "version"}





def test_five_steps_write_checkpoints_logs_and_events(tiny_config, tmp_path):
    session, result = run(tiny_config, ["train.val_every=3"])
    run_dir = tmp_path / "run"
    assert result.step == 5 and result.stopped_by is None
    for name in ("last.pt", "best.pt", "config.yaml", "train.log", "val_masks/manifest.json"):
        assert (run_dir / name).is_file(), name
    state = load(run_dir / "last.pt")
    assert set(state) == CHECKPOINT_KEYS
    assert state["step"] == 5 and state["config"] == config_to_dict(session.config)
    assert state["data_position"] == {"epoch": 1, "batch": 1}  # 8 images / batch 2 = 4 per epoch
    assert state["best_metric"] == pytest.approx(result.best_score)
    assert load_config(run_dir / "config.yaml") == session.config
    assert not list(run_dir.glob("*.tmp"))

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    for term in ("total", "valid", "hole", "perceptual", "style_out", "style_comp", "tv", "lr",
                 "images_per_s"):
        assert len(events.Scalars(f"train/{term}")) == 5, term
    for metric in ("psnr", "ssim", "l1"):
        assert [e.step for e in events.Scalars(f"val/{metric}")] == [3, 5], metric
    assert all(np.isfinite(e.value) for e in events.Scalars("train/total"))
    assert "val/samples" in tags["images"]
    grid = events.Images("val/samples")[-1]
    assert grid.step == 5 and grid.width == 5 * 34 + 2  # five 32-px columns, 2-px padding
    assert (run_dir / "samples" / "step_0000005.png").is_file()
    assert result.sample_path == run_dir / "samples" / "step_0000005.png"
    log_text = (run_dir / "train.log").read_text()
    assert "step 5/5 | loss" in log_text and "validation at step 5" in log_text
    rows = result.last_eval.scores["model"].rows
    assert len(rows) == 6 and sum(row["count"] for row in rows) == 6  # one mask per paper bin
    assert result.last_eval.overall["psnr"] > 0
    masked_input = result.last_eval.scores["masked input"].overall["psnr"]
    assert [e.value for e in events.Scalars("val/psnr_masked_input")][-1] == pytest.approx(
        masked_input)
    for row in rows:
        lo, hi = row["bin"]
        assert events.Scalars(f"val_bins/psnr_{lo:g}-{hi:g}")[-1].value == pytest.approx(
            row["psnr"])


def test_resume_matches_uninterrupted_run(tiny_config, tmp_path):
    common = ["train.max_steps=7", "train.val_every=3", "train.ckpt_every=100"]
    run(tiny_config, [*common, f"train.run_dir={tmp_path / 'full'}"])
    run(tiny_config, [*common, f"train.run_dir={tmp_path / 'part'}", "train.max_steps=3"])
    assert load(tmp_path / "part" / "last.pt")["data_position"] == {"epoch": 0, "batch": 3}
    run(None, ["train.max_steps=7"], resume=str(tmp_path / "part"))

    full = scalars(tmp_path / "full", "train/total")
    part = scalars(tmp_path / "part", "train/total")
    assert sorted(part) == list(range(1, 8))
    assert np.allclose([part[s] for s in range(1, 8)], [full[s] for s in range(1, 8)],
                       rtol=0, atol=1e-6)
    full_weights = load(tmp_path / "full" / "last.pt")["model"]
    part_weights = load(tmp_path / "part" / "last.pt")["model"]
    for name, value in full_weights.items():
        assert torch.allclose(value.float(), part_weights[name].float(), atol=1e-6), name


class NaNFromStep(torch.nn.Module):
    """Wraps a loss and makes the total NaN from the ``start``-th call on."""

    def __init__(self, loss, start):
        super().__init__()
        self.loss, self.start, self.calls = loss, start, 0

    def forward(self, output, target, mask):
        self.calls += 1
        terms = self.loss(output, target, mask)
        if self.calls >= self.start:
            terms["total"] = terms["total"] * float("nan")
        return terms


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny_config, tmp_path):
    session = setup_training(str(tiny_config), ["train.ckpt_every=2", "loss.weights.perceptual=0",
                                                "loss.weights.style_out=0",
                                                "loss.weights.style_comp=0"])
    session.trainer.loss_fn = NaNFromStep(session.trainer.loss_fn, start=3)
    with pytest.raises(NonFiniteLossError) as info:
        session.trainer.fit()
    session.close()
    message = str(info.value)
    assert "between steps 3 and 3" in message and "last.pt (step 2)" in message
    state = load(tmp_path / "run" / "last.pt")
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_signal_finishes_the_step_and_saves(tiny_config, tmp_path):
    session = setup_training(str(tiny_config), ["train.max_steps=50", "train.log_every=10"])
    loss_fn = session.trainer.loss_fn

    def loss_then_signal(output, target, mask):
        if session.trainer.step == 1:  # during the second step
            os.kill(os.getpid(), signal.SIGTERM)
        return loss_fn(output, target, mask)

    session.trainer.loss_fn = loss_then_signal
    result = session.trainer.fit()
    session.close()
    assert result.stopped_by == "SIGTERM" and result.step == 2
    assert load(tmp_path / "run" / "last.pt")["step"] == 2
    assert "Resume with: python train.py --resume" in session.summary(result)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers restored


def test_finetune_phase_freezes_encoder_bn_and_switches_lr(tiny_config, tmp_path):
    run(tiny_config, ["train.max_steps=3", "train.finetune_step=2", "train.ckpt_every=1",
                      "train.keep_numbered=true", "loss.weights.perceptual=0",
                      "loss.weights.style_out=0", "loss.weights.style_comp=0"])
    run_dir = tmp_path / "run"
    lrs = scalars(run_dir, "train/lr")
    assert lrs == {1: pytest.approx(1e-3), 2: pytest.approx(1e-3), 3: pytest.approx(5e-5)}
    before = load(run_dir / "step_0000002.pt")["model"]
    after = load(run_dir / "step_0000003.pt")["model"]
    encoder_bn = [k for k in before if k.startswith("encoder.") and ".norm." in k]
    assert encoder_bn, "the tiny model has encoder BatchNorm layers"
    for key in encoder_bn:  # parameters and running statistics frozen
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["decoder.1.conv.weight"], after["decoder.1.conv.weight"])


def test_bf16_grad_accum_and_ema_on_cpu(tiny_config, tmp_path):
    session, result = run(tiny_config, ["train.max_steps=2", "train.precision=bf16",
                                        "train.grad_accum=2", "train.ema=0.9"])
    assert np.isfinite(list(scalars(tmp_path / "run", "train/total").values())).all()
    assert session.trainer.position == {"epoch": 1, "batch": 0}  # 2 steps x 2 batches
    state = load(tmp_path / "run" / "last.pt")
    assert state["ema"]["decay"] == 0.9
    model, config = load_model_from_checkpoint(tmp_path / "run", "cpu")
    assert not model.training and config["train"]["precision"] == "bf16"
    ema_weights = state["ema"]["model"]
    assert all(torch.equal(v, ema_weights[k]) for k, v in model.state_dict().items())
    assert not torch.equal(ema_weights["decoder.0.conv.weight"],
                           state["model"]["decoder.0.conv.weight"])


def test_fp16_on_cpu_is_a_config_error(tiny_config):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device; use bf16 or fp32 on CPU"):
        setup_training(str(tiny_config), ["train.precision=fp16"])


def test_load_model_from_checkpoint_and_init_from(tiny_config, tmp_path):
    session, _ = run(tiny_config, ["train.max_steps=1"])
    model, config = load_model_from_checkpoint(tmp_path / "run" / "last.pt", "cpu")
    assert not model.training and config["model"]["depth"] == 3
    image, mask = torch.rand(1, 3, 32, 32), torch.ones(1, 1, 32, 32)
    session.trainer.model.eval()
    expected, _ = session.trainer.model(image, mask)
    assert torch.allclose(model(image, mask)[0], expected)

    finetune = [f"train.run_dir={tmp_path / 'finetune'}", "train.max_steps=1",
                "model.freeze_encoder_bn=true"]
    session2 = setup_training(str(tiny_config), finetune, init_from=str(tmp_path / "run"))
    assert session2.trainer.step == 0 and session2.trainer.model.freeze_encoder_bn
    assert torch.equal(session2.trainer.model.state_dict()["decoder.0.conv.weight"],
                       model.state_dict()["decoder.0.conv.weight"])
    session2.close()
    with pytest.raises(ConfigError, match=r"different model \(depth\).*--set model.depth=3"):
        setup_training(str(tiny_config), [*finetune, "model.depth=2"],
                       init_from=str(tmp_path / "run"))


def test_existing_run_dir_and_finished_resume_are_user_errors(tiny_config, tmp_path):
    run(tiny_config, ["train.max_steps=1"])
    with pytest.raises(ConfigError, match="already holds a checkpoint; continue it with --resume"):
        setup_training(str(tiny_config), ["train.max_steps=1"])
    with pytest.raises(ConfigError, match="checkpoint is at step 1, train.max_steps is 1"):
        setup_training(None, [], resume=str(tmp_path / "run"))
    with pytest.raises(UserInputError, match="does not exist"):
        setup_training(None, [], resume=str(tmp_path / "missing"))


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1, "model": {"w": torch.ones(2)}}, path)

    def torn_save(obj, file):
        Path(file).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"step": 2, "model": {"w": torch.zeros(2)}}, path)
    assert load(path)["step"] == 1


def test_batch_stream_resumes_mid_epoch():
    class Indices(torch.utils.data.Dataset):
        def __len__(self):
            return 7

        def __getitem__(self, index):
            return {"index": index}

    def take(stream, count):
        return [next(stream)["index"].tolist() for _ in range(count)]

    loader = make_train_loader(Indices(), batch_size=2, num_workers=0, seed=3)
    full = take(BatchStream(loader), 8)  # 3 batches per epoch (the odd image is dropped)
    assert sorted(sum(full[:3], [])) != sorted(sum(full[3:6], [])) or full[:3] != full[3:6]
    stream = BatchStream(loader, epoch=1, batch=1)
    assert take(stream, 4) == full[4:8]
    assert stream.position == {"epoch": 2, "batch": 2}
    # the last batch of an epoch closes it at once: the position to save is the next epoch
    stream = BatchStream(loader)
    take(stream, 3)
    assert stream.position == {"epoch": 1, "batch": 0}
    # positions at or past an epoch's end (older checkpoints; a resume with a larger batch
    # size or more processes) continue with the next epoch instead of failing
    for batch in (3, 5):
        stream = BatchStream(loader, epoch=0, batch=batch)
        assert take(stream, 2) == full[3:5]
        assert stream.position == {"epoch": 1, "batch": 2}


def test_lr_schedules():
    cfg = load_config(None, ["train.max_steps=100", "optim.schedule=cosine"])
    assert lr_factor(0, cfg.optim, 100) == 1.0
    assert lr_factor(50, cfg.optim, 100) == pytest.approx(0.5)
    assert lr_factor(100, cfg.optim, 100) == pytest.approx(0.0)
    cfg = load_config(None, ["train.max_steps=100", "optim.schedule=step",
                             "optim.milestones=[10, 20]", "optim.gamma=0.5"])
    assert [lr_factor(s, cfg.optim, 100) for s in (9, 10, 20)] == [1.0, 0.5, 0.25]
    # the inpainting task's fine-tuning phase scales the schedule from its step on
    cfg = load_config(None, ["train.max_steps=100"])
    task = InpaintingTask(finetune_step=40, finetune_lr_scale=5e-5 / 2e-4)
    assert lr_factor(39, cfg.optim, 100, task.lr_scale) == 1.0
    assert lr_factor(40, cfg.optim, 100, task.lr_scale) == pytest.approx(5e-5 / 2e-4)


def test_train_step_overfits_one_batch(tmp_path):
    """The Trainer takes built objects: a tiny model, a pixel loss and Adam, no loaders."""
    torch.manual_seed(0)
    cfg = load_config(None, ["model.depth=3", "model.base_channels=8", "data.image_size=32"])
    model = build_model(**dataclasses.asdict(cfg.model))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    trainer = Trainer(model, PixelLoss({"valid": 1.0, "hole": 6.0, "tv": 0.1}), optimizer,
                      train_loader=None, val_loader=None, config=cfg, run_dir=tmp_path,
                      task=InpaintingTask())
    batch = {"image": torch.rand(2, 3, 32, 32), "mask": (torch.rand(2, 1, 32, 32) > 0.3).float()}
    losses = [trainer.train_step([batch]) for _ in range(40)]
    assert set(losses[0]) == {"valid", "hole", "tv", "total"}
    assert not losses[0]["total"].requires_grad
    assert losses[-1]["total"].item() < 0.5 * losses[0]["total"].item()
