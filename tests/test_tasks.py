"""Engine tasks: the classification task's counts, its sharded validation, DDP vs one process."""

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DataLoader, Dataset

from inpainting.engine.batches import ShardSampler
from inpainting.engine.distributed import DistInfo
from inpainting.engine.task import ValidationOptions
from inpainting.engine.trainer import Trainer
from inpainting.models import PConvUNet
from inpainting.tasks import load_config
from inpainting.tasks.classification.task import (
    ClassificationTask,
    CrossEntropyTerms,
    read_metrics,
)
from inpainting.tasks.inpainting import validation
from inpainting.tasks.inpainting.task import InpaintingTask

CLASSES = 6


class FixedLogits(Dataset):
    """Samples whose image *is* the logits: with ``nn.Identity`` as the model, the scores are
    known in advance and the hits can be counted by hand."""

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(1)
        self.logits = torch.randn(11, CLASSES, generator=generator)
        self.labels = torch.randint(0, CLASSES, (11,), generator=generator)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return {"image": self.logits[index], "label": int(self.labels[index])}


def hand_count(logits, labels, k):
    hits = 0
    for row, label in zip(logits.tolist(), labels.tolist()):
        ranked = sorted(range(CLASSES), key=lambda c: -row[c])
        hits += label in ranked[:k]
    return hits


def test_topk_equals_a_hand_count():
    data = FixedLogits()
    result = ClassificationTask.validate(nn.Identity(), DataLoader(data, batch_size=4),
                                         ValidationOptions(torch.device("cpu")))
    assert result.count == 11
    assert result.top1 == pytest.approx(100 * hand_count(data.logits, data.labels, 1) / 11)
    assert result.top5 == pytest.approx(100 * hand_count(data.logits, data.labels, 5) / 11)
    expected_loss = nn.functional.cross_entropy(data.logits, data.labels).item()
    assert result.loss == pytest.approx(expected_loss, rel=1e-6)
    assert result.summary() == f" * Prec@1 {result.top1:.3f} Prec@5 {result.top5:.3f}"


class ShiftedLogits(FixedLogits):
    """FixedLogits whose samples also carry other logits as ``image_shifted``: the first 7
    with the label's score raised by 10 (sure hits), the last 4 as they are."""

    def __init__(self) -> None:
        super().__init__()
        self.shifted = self.logits.clone()
        self.shifted[torch.arange(7), self.labels[:7]] += 10.0

    def __getitem__(self, index):
        return {**super().__getitem__(index), "image_shifted": self.shifted[index]}


def test_shifted_top1_equals_a_hand_count_and_is_absent_without_shifted_images():
    data = ShiftedLogits()
    result = ClassificationTask.validate(nn.Identity(), DataLoader(data, batch_size=4),
                                         ValidationOptions(torch.device("cpu")))
    hits = hand_count(data.shifted, data.labels, 1)
    assert hits == 7 + hand_count(data.logits[7:], data.labels[7:], 1)
    assert hits > hand_count(data.logits, data.labels, 1)
    assert result.top1_shifted == pytest.approx(100 * hits / 11)
    assert result.top1 == pytest.approx(100 * hand_count(data.logits, data.labels, 1) / 11)
    plain = ClassificationTask.validate(nn.Identity(), DataLoader(FixedLogits(), batch_size=4),
                                        ValidationOptions(torch.device("cpu")))
    assert plain.top1_shifted is None


@pytest.mark.parametrize(("length", "world_size"), [(7, 3), (2, 4), (8, 2)])
def test_shards_cover_every_index_once(length, world_size):
    shards = [list(ShardSampler(length, rank, world_size)) for rank in range(world_size)]
    assert sorted(i for shard in shards for i in shard) == list(range(length))
    assert [len(ShardSampler(length, r, world_size)) for r in range(world_size)] == list(
        map(len, shards))


def test_classification_checkpoint_names_and_layout():
    task = ClassificationTask("pdvgg11", "partial")
    assert task.checkpoint_file("last.pt") == "checkpoint.pth.tar"
    assert task.checkpoint_file("best.pt") == "model_best.pth.tar"
    model = nn.Sequential()
    model.features = nn.Sequential(nn.Conv2d(3, 4, 3))
    state = {"model": model.state_dict(), "optimizer": {"state": {}}, "best_metric": 50.0,
             "data_position": {"epoch": 3, "batch": 0}, "step": 9}
    packed = task.pack_checkpoint(state, model)
    assert "model" not in packed and packed["optimizer"] == {"state": {}}
    assert packed["epoch"] == 3 and packed["best_prec1"] == 50.0 and packed["arch"] == "pdvgg11"
    assert set(packed["state_dict"]) == {"features.module.0.weight", "features.module.0.bias"}
    assert InpaintingTask.checkpoint_file("last.pt") == "last.pt"


# ---------------------------------------------------------------------------------------------
# Two gloo processes against one process on the same global batch

class TinyNet(nn.Sequential):
    """No BatchNorm and no dropout, whose per-process statistics or randomness would make two
    processes differ from one by design."""

    def __init__(self) -> None:
        super().__init__(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 3))


def _batches(count, size):
    generator = torch.Generator().manual_seed(7)
    return [{"image": torch.randn(size, 3, 8, 8, generator=generator),
             "label": torch.randint(0, 3, (size,), generator=generator)} for _ in range(count)]


class Samples(Dataset):
    def __init__(self, batch):
        self.batch = batch

    def __len__(self):
        return len(self.batch["label"])

    def __getitem__(self, index):
        return {key: value[index] for key, value in self.batch.items()}


def _train(rank, world_size, port, out_dir):
    if world_size > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        torch.distributed.init_process_group("gloo", rank=rank, world_size=world_size)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = TinyNet()
    config = load_config(None, ["task=classification", "data.train=x", "data.val=y",
                                "train.device=cpu", "log.progress=false"])
    val = _batches(1, 10)[0]
    val_loader = DataLoader(Samples(val), batch_size=3,
                            sampler=ShardSampler(10, rank, world_size))
    trainer = Trainer(model, CrossEntropyTerms(), torch.optim.SGD(model.parameters(), lr=0.5),
                      None, val_loader, config, out_dir, dist=DistInfo(rank, world_size),
                      task=ClassificationTask("custom"))
    losses = []
    for batch in _batches(3, 8):  # the global batch: each rank takes its half
        share = {key: value[rank * 8 // world_size:(rank + 1) * 8 // world_size]
                 for key, value in batch.items()}
        losses.append(trainer.train_step([share])["total"])
    result = trainer.validate()
    if rank == 0:
        weights = torch.cat([p.detach().flatten() for p in model.parameters()]).tolist()
        record = {"weights": weights, "top1": result.top1, "count": result.count,
                  "loss": result.loss}
        (out_dir / "result.json").write_text(json.dumps(record))
    if world_size > 1:
        torch.distributed.destroy_process_group()


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_processes_match_one_on_the_same_global_batch(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    _train(0, 1, 0, one)
    mp.spawn(_train, args=(2, _free_port(), two), nprocs=2, join=True)
    single, double = (json.loads((p / "result.json").read_text()) for p in (one, two))
    assert double["count"] == single["count"] == 10  # every val image once, none twice
    assert double["top1"] == pytest.approx(single["top1"])
    assert double["loss"] == pytest.approx(single["loss"], rel=1e-5)
    assert double["weights"] == pytest.approx(single["weights"], rel=1e-5, abs=1e-6)
    assert len(read_metrics(two)) == 1 and read_metrics(two)[0]["step"] == 0


def test_a_stopped_classification_run_names_its_own_checkpoint_and_command(tmp_path):
    from types import SimpleNamespace

    from inpainting.engine.run import Session
    from inpainting.engine.task import FitResult

    session = Session(SimpleNamespace(task=ClassificationTask("small_vgg")), None, tmp_path,
                      None)
    result = FitResult(3, "SIGTERM", None, None, None)
    text = session.summary(result, "classify.py")
    assert f"saved to {tmp_path / 'checkpoint.pth.tar'}" in text
    assert f"python classify.py --resume {tmp_path}" in text


def test_inpainting_baselines_are_scored_once_for_the_fixed_pairs(monkeypatch):
    calls = []

    def counted_fill(image, mask):
        calls.append(len(image))
        return image.flip(-1)

    monkeypatch.setattr(validation, "get_baseline", lambda name: counted_fill)
    generator = torch.Generator().manual_seed(0)
    mask = (torch.rand(6, 1, 16, 16, generator=generator) > 0.4).float()
    pairs = [{"image": image, "mask": m}
             for image, m in zip(torch.rand(6, 3, 16, 16, generator=generator), mask)]
    loader = DataLoader(pairs, batch_size=4)
    task = InpaintingTask(val_bins=[(0.0, 1.0)], grid_size=0, baselines=["opencv-ns"])
    model = PConvUNet(depth=2, base_channels=4)
    tables = [task.validate(model, loader, ValidationOptions(torch.device("cpu"))).table()
              for _ in range(2)]
    assert calls == [4, 2]  # the first validation's two batches, nothing after
    assert tables[0] == tables[1] and "opencv-ns" in tables[0]
