"""Engine options and resume edge cases on tiny CPU runs (32x32, batch 2, depth 3)."""

import io
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from run_helpers import load, run, scalars

from inpainting.data import read_file_list, split_holdout, write_file_list
from inpainting.engine.config import ConfigError
from inpainting.engine.distributed import mean_over_ranks
from inpainting.engine.run import setup_training
from inpainting.engine.trainer import NonFiniteLossError
from inpainting.tasks import load_config


def steps_logged(run_dir: Path, tag: str = "train/total") -> list[int]:
    return sorted(scalars(run_dir, tag))


# ---------------------------------------------------------------------------------------------
# Train / val / test split


def test_split_holdout_is_seeded_disjoint_and_keeps_the_val_split():
    paths = [Path(f"img_{i:02d}.png") for i in range(20)]
    train, val, test = split_holdout(paths, seed=1, val_fraction=0.1, test_fraction=0.25)
    assert (len(train), len(val), len(test)) == (13, 2, 5)
    assert sorted(train + val + test) == paths and not set(val) & set(test)
    assert split_holdout(list(reversed(paths)), 1, 0.1, 0.25) == (train, val, test)
    # adding a test share does not move the validation images
    assert split_holdout(paths, 1, 0.1)[1] == val
    assert split_holdout(paths, 1, 0.0, 0.1)[1] == []
    with pytest.raises(ValueError, match=r"test_fraction must be in \[0, 1\)"):
        split_holdout(paths, 1, 0.1, 1.0)
    with pytest.raises(ValueError, match="cannot split 2 image"):
        split_holdout(paths[:2], 1, 0.1, 0.1)
    # a requested test share is never rounded away on a tiny set
    assert [len(part) for part in split_holdout(paths[:3], 0, 0.5, 0.3)] == [1, 1, 1]


def test_file_lists_round_trip_paths_with_spaces_and_read_places2_labels(tmp_path):
    folder = tmp_path / "My Photos"
    folder.mkdir()
    paths = [folder / "a b.png", folder / "c.png", folder / "d 7.png"]
    for path in paths:
        path.write_bytes(b"")
    write_file_list(paths, tmp_path / "run" / "splits" / "test.txt")
    splits = tmp_path / "run" / "splits"
    assert [p.resolve() for p in read_file_list(splits / "test.txt", splits)] == paths
    places = tmp_path / "places.txt"
    places.write_text("/a/abbey/00000001.jpg 0\n/b/bar/00000002.jpg 12\n", encoding="utf-8")
    (tmp_path / "a" / "abbey").mkdir(parents=True)
    (tmp_path / "a" / "abbey" / "00000001.jpg").write_bytes(b"")
    assert read_file_list(places, tmp_path) == [tmp_path / "a/abbey/00000001.jpg",
                                                tmp_path / "b/bar/00000002.jpg"]


@pytest.mark.parametrize("overrides, message", [
    (["data.test_fraction=-0.1"], "data.test_fraction must be in [0, 1) (0: off), got -0.1"),
    (["data.val_fraction=0.5", "data.test_fraction=0.5"],
     "data.val_fraction + data.test_fraction must be < 1"),
    (["data.test=x", "data.test_fraction=0.1"], "set either data.test"),
    (["data.train=demo", "data.test_fraction=0.1"], "do not apply to the demo data"),
])
def test_test_split_config_errors(overrides, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    assert message in str(info.value)


def test_run_records_val_and_test_lists_that_evaluate_can_read(tiny_config, tmp_path):
    session, result = run(tiny_config, ["train.max_steps=1", "data.test_fraction=0.2"])
    splits = tmp_path / "run" / "splits"
    test = read_file_list(splits / "test.txt", splits)
    val = read_file_list(splits / "val.txt", splits)
    assert len(test) == 2 and len(val) == 2 and all(p.is_file() for p in test + val)
    images = sorted((tmp_path / "images").iterdir())
    train_paths = {p.resolve() for p in images} - {p.resolve() for p in test + val}
    assert len(train_paths) == 6  # 10 images: 2 val, 2 test, 6 train (3 batches of 2)
    assert load(tmp_path / "run" / "last.pt")["data_position"] == {"epoch": 0, "batch": 1}
    assert f"--images {splits / 'test.txt'}" in session.summary(result)


def test_separate_test_folder_is_recorded(tiny_config, tmp_path):
    test_dir = tmp_path / "test_images"
    test_dir.mkdir()
    for name in ("a.png", "b.png"):
        shutil.copy(tmp_path / "images" / "image_00.png", test_dir / name)
    run(tiny_config, ["train.max_steps=1", f"data.test={test_dir}"])
    splits = tmp_path / "run" / "splits"
    assert [p.name for p in read_file_list(splits / "test.txt", splits)] == ["a.png", "b.png"]


# ---------------------------------------------------------------------------------------------
# Failures before anything is written


@pytest.mark.parametrize("overrides, message", [
    (["model.name=unet"], "unet"),
    (["loss.vgg_weights=/nowhere/vgg16.pth"], "/nowhere/vgg16.pth"),
    (["masks.source=folder", "masks.folder=/nowhere/masks"], "/nowhere/masks"),
    (["data.batch_size=9"], "fewer than data.batch_size 9"),
])
def test_user_errors_leave_no_run_folder(tiny_config, tmp_path, overrides, message):
    with pytest.raises((ConfigError, ValueError, FileNotFoundError)) as info:
        setup_training(str(tiny_config), overrides)
    assert message in str(info.value)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# Resume edge cases


def test_resume_from_an_older_checkpoint_purges_the_later_events(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    run(tiny_config, ["train.max_steps=4", "train.ckpt_every=2", "train.keep_numbered=true"])
    assert steps_logged(run_dir) == [1, 2, 3, 4]
    run(None, ["train.max_steps=5"], resume=str(run_dir / "step_0000002.pt"))
    assert steps_logged(run_dir) == [1, 2, 3, 4, 5]  # 3 and 4 once: from the resumed run


def test_ema_switched_on_at_resume_starts_from_the_trained_weights(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    run(tiny_config, ["train.max_steps=2", "train.ckpt_every=2"])
    trained = load(run_dir / "last.pt")["model"]
    session = setup_training(None, ["train.max_steps=3", "train.ema=0.999"],
                             resume=str(run_dir))
    ema = session.trainer.ema
    session.close()
    assert ema.decay == 0.999
    for name, value in ema.module.state_dict().items():
        assert torch.equal(value, trained[name]), name


def test_resume_keeps_the_ema_weights_but_takes_the_new_decay(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    run(tiny_config, ["train.max_steps=2", "train.ema=0.9"])
    saved = load(run_dir / "last.pt")["ema"]["model"]
    session = setup_training(None, ["train.max_steps=3", "train.ema=0.5"], resume=str(run_dir))
    ema = session.trainer.ema
    session.close()
    assert ema.decay == 0.5
    assert all(torch.equal(v, saved[k]) for k, v in ema.module.state_dict().items())


def test_init_from_uses_the_ema_weights_when_the_run_kept_them(tiny_config, tmp_path):
    run(tiny_config, ["train.max_steps=2", "train.ema=0.9"])
    saved = load(tmp_path / "run" / "last.pt")
    session = setup_training(str(tiny_config), [f"train.run_dir={tmp_path / 'ft'}"],
                             init_from=str(tmp_path / "run"))
    weights = session.trainer.model.state_dict()
    session.close()
    assert all(torch.equal(v, saved["ema"]["model"][k]) for k, v in weights.items())
    assert not torch.equal(weights["decoder.0.conv.weight"],
                           saved["model"]["decoder.0.conv.weight"])


class NaNGradientAtCall:
    """A loss that stays finite while its n-th call's backward gives one weight a NaN grad."""

    def __init__(self, loss, model, call):
        self.loss, self.call, self.calls = loss, call, 0
        next(model.parameters()).register_hook(self._hook)

    def _hook(self, grad):
        return grad * float("nan") if self.calls == self.call else grad

    def __call__(self, output, target, mask):
        self.calls += 1
        return self.loss(output, target, mask)


def test_non_finite_weights_never_reach_best_pt(tiny_config, tmp_path):
    session = setup_training(str(tiny_config), ["train.val_every=2", "train.ckpt_every=100",
                                                "train.log_every=100"])
    trainer = session.trainer
    trainer.loss_fn = NaNGradientAtCall(trainer.loss_fn, trainer.model, call=2)  # a val step
    with pytest.raises(NonFiniteLossError, match="no checkpoint was written"):
        trainer.fit()
    session.close()
    assert not (tmp_path / "run" / "best.pt").exists()


def test_non_finite_weights_are_never_saved(tiny_config, tmp_path):
    session = setup_training(str(tiny_config), ["train.ckpt_every=2", "train.log_every=100"])
    trainer = session.trainer
    trainer.loss_fn = NaNGradientAtCall(trainer.loss_fn, trainer.model, call=4)  # a save step
    with pytest.raises(NonFiniteLossError, match="last.pt \\(step 2\\)"):
        trainer.fit()
    session.close()
    state = load(tmp_path / "run" / "last.pt")
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


# ---------------------------------------------------------------------------------------------
# Options wired from the config


def test_channels_last_run_matches_the_contiguous_run(tiny_config, tmp_path):
    run(tiny_config, ["train.max_steps=2", f"train.run_dir={tmp_path / 'a'}"])
    session, _ = run(tiny_config, ["train.max_steps=2", f"train.run_dir={tmp_path / 'b'}",
                                   "train.channels_last=true"])
    weight = session.trainer.model.encoder[1].conv.weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    a, b = load(tmp_path / "a" / "last.pt")["model"], load(tmp_path / "b" / "last.pt")["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)


def test_compile_option_wraps_the_model_in_torch_compile(tiny_config, monkeypatch):
    compiled = []

    def fake_compile(model, **kwargs):
        compiled.append(model)
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    session = setup_training(str(tiny_config), ["train.compile=true"])
    session.close()
    assert compiled == [session.trainer.model]


def test_training_masks_from_a_folder_with_hole_white_polarity(tiny_config, tmp_path):
    folder = tmp_path / "masks"
    folder.mkdir()
    for index in range(3):
        hole_white = np.zeros((48, 48), np.uint8)
        hole_white[10 + index:30, 8:28 + index] = 255  # white = hole
        cv2.imwrite(str(folder / f"m{index}.png"), hole_white)
    session = setup_training(str(tiny_config), [
        "masks.source=folder", f"masks.folder={folder}", "masks.polarity=hole_white",
        "masks.augment=false"])
    sample = session.trainer.train_loader.dataset[0]
    session.close()
    mask = sample["mask"]
    assert mask.shape == (1, 32, 32)
    hole_share = 1 - float(mask.mean())  # a 20x20 hole in 48x48, resized: about 17 %
    assert 0.08 < hole_share < 0.3


# ---------------------------------------------------------------------------------------------
# Distributed helpers under a real 2-process gloo group


def _mean_worker(rank: int, port: int, results) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        results[rank] = mean_over_ranks(torch.tensor([float(rank), 10.0 * rank])).tolist()
    finally:
        dist.destroy_process_group()


def test_mean_over_ranks_averages_across_two_gloo_processes():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_mean_worker, args=(port, results), nprocs=2, join=True)
        assert dict(results) == {0: [0.5, 5.0], 1: [0.5, 5.0]}
    assert mean_over_ranks(torch.tensor([3.0])).item() == 3.0  # no process group


# ---------------------------------------------------------------------------------------------
# Sample grids


def test_spread_indices_cover_first_and_last():
    from inpainting.tasks.inpainting.validation import spread_indices

    assert spread_indices(48, 6) == [0, 9, 19, 28, 38, 47]
    assert spread_indices(3, 6) == [0, 1, 2]
    assert spread_indices(10, 1) == [0] and spread_indices(10, 0) == []


def test_validation_and_interval_grids_show_the_same_spread_samples(tiny_config, tmp_path):
    session, _ = run(tiny_config, ["train.max_steps=3", "train.val_every=3",
                                   "log.image_every=2", "log.grid_size=3"])
    samples = tmp_path / "run" / "samples"
    interval = cv2.imread(str(samples / "step_0000002.png"))
    validation = cv2.imread(str(samples / "step_0000003.png"))
    assert interval.shape == validation.shape == (3 * 34 + 2, 5 * 34 + 2, 3)
    # the ground-truth column (last) is the same images, picked 0, 2 and 5 of the 6 val pairs
    column = slice(4 * 34 + 2, 5 * 34)
    assert np.array_equal(interval[:, column], validation[:, column])
    dataset = session.trainer.val_loader.dataset
    expected = torch.stack([dataset[i]["image"] for i in (0, 2, 5)])
    for row in range(3):
        tile = validation[2 + 34 * row:34 * (row + 1), column][..., ::-1]  # BGR -> RGB
        truth = expected[row].permute(1, 2, 0).numpy()
        assert np.abs(tile / 255.0 - truth).max() < 1 / 255 + 1e-6, row


# ---------------------------------------------------------------------------------------------
# CPU memory reuse


def test_keep_freed_memory_configures_glibc_or_declines():
    import ctypes
    import sys

    from inpainting.engine.memory import _SETTINGS, keep_freed_memory

    class FakeGlibc:
        def __init__(self, answer):
            self.answer, self.calls = answer, []
            self.gnu_get_libc_version = lambda: b"2.36"

        def mallopt(self, parameter, value):
            self.calls.append((parameter, value))
            return self.answer

    accepting = FakeGlibc(1)
    assert keep_freed_memory(accepting) is True
    assert accepting.calls == [(parameter, values[0]) for parameter, values in _SETTINGS]
    rejecting = FakeGlibc(0)
    assert keep_freed_memory(rejecting) is False  # rejected: reported, not raised
    assert [p for p, _ in rejecting.calls] == [-3, -3, -1, -2]  # every setting still tried

    class OldGlibc(FakeGlibc):  # before 2.35: mmap threshold at most 32 MiB
        def mallopt(self, parameter, value):
            self.calls.append((parameter, value))
            return 0 if parameter == -3 and value > 1 << 25 else 1

    old = OldGlibc(1)
    assert keep_freed_memory(old) is True
    assert old.calls[:2] == [(-3, 1 << 30), (-3, 1 << 25)]

    class NotGlibc:  # e.g. musl: no mallopt
        pass

    assert keep_freed_memory(NotGlibc()) is False
    if sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "gnu_get_libc_version"):
        assert keep_freed_memory() is True  # the real C library of this process


@pytest.mark.parametrize("enabled", [True, False])
def test_cpu_runs_keep_freed_memory_unless_switched_off(tiny_config, monkeypatch, enabled):
    import inpainting.engine.run as run_setup_module

    calls = []
    monkeypatch.setattr(run_setup_module, "keep_freed_memory", lambda: calls.append(1) or True)
    setup_training(str(tiny_config), [f"train.cpu_keep_freed_memory={str(enabled).lower()}"]
                   ).close()
    assert calls == ([1] if enabled else [])


# ---------------------------------------------------------------------------------------------
# Progress bar


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal, enabled", [(True, True), (True, False), (False, True)])
def test_progress_bar_on_a_terminal_only_and_unless_switched_off(tiny_config, monkeypatch,
                                                                 terminal, enabled):
    stderr = FakeTerminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    run(tiny_config, ["train.max_steps=3", "train.val_every=3",
                      f"log.progress={str(enabled).lower()}"])
    bars = [line for line in stderr.getvalue().replace("\r", "\n").splitlines()
            if "step/s" in line or "s/step" in line]
    if not (terminal and enabled):
        assert bars == []
        return
    final = bars[-1]  # e.g. "100%|####| 3/3 [00:01<00:00,  2.1step/s, loss=0.41, img_s=4.2]"
    assert "3/3" in final and "<00:00" in final  # steps and ETA
    assert "loss=" in final and "img_s=" in final  # loss and images/s
