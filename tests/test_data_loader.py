"""The long-lived training loader: workers across epochs, exact resume, the decode cache."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

import inpainting.data.dataset as dataset_module
from inpainting.data import InpaintingDataset
from inpainting.data.dataset import DecodeCache
from inpainting.engine.batches import BatchStream, EpochKeyed, make_train_loader
from masks import MaskGenerator


class EpochIndices(torch.utils.data.Dataset):
    """Samples that name their epoch, index and the process that read them."""

    def __init__(self, length: int = 7) -> None:
        self.length, self.epoch = length, 0

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, int]:
        return {"epoch": self.epoch, "index": index, "pid": os.getpid()}


def _take(stream: BatchStream, count: int) -> list[tuple[list[int], list[int]]]:
    batches = [next(stream) for _ in range(count)]
    return [(b["epoch"].tolist(), b["index"].tolist()) for b in batches]


@pytest.mark.parametrize("workers", [0, 2])
def test_one_iterator_serves_every_epoch_with_the_epochs_own_samples(workers):
    loader = make_train_loader(EpochIndices(), batch_size=2, num_workers=workers, seed=3)
    stream = BatchStream(loader)
    batches = [next(stream) for _ in range(9)]  # 3 batches per epoch, the odd image dropped
    stream.close()
    epochs = [b["epoch"].tolist() for b in batches]
    assert epochs == [[e, e] for e in (0, 0, 0, 1, 1, 1, 2, 2, 2)]
    for epoch in range(3):  # each epoch: 6 distinct images of the 7
        indices = sum((b["index"].tolist() for b in batches[3 * epoch:3 * epoch + 3]), [])
        assert len(set(indices)) == 6
    if workers:  # the same two worker processes from the first epoch to the last
        pids = {pid for b in batches for pid in b["pid"].tolist()}
        assert len(pids) == 2 and os.getpid() not in pids


def test_a_resumed_stream_with_workers_sees_the_uninterrupted_samples():
    loader = make_train_loader(EpochIndices(), batch_size=2, num_workers=2, seed=5)
    full = _take(BatchStream(loader), 8)
    for epoch, batch in ((0, 1), (1, 0), (1, 2), (2, 1)):
        start = 3 * epoch + batch
        stream = BatchStream(make_train_loader(EpochIndices(), 2, 2, seed=5), epoch, batch)
        assert _take(stream, 8 - start) == full[start:]
        stream.close()


def test_epoch_keyed_reads_plain_indices_as_the_dataset_does():
    keyed = EpochKeyed(EpochIndices())
    assert len(keyed) == 7 and keyed[3]["index"] == 3 and keyed[3]["epoch"] == 0
    assert keyed[(4, 3)]["epoch"] == 4 and keyed.dataset.epoch == 4


def _photos(folder, count=3, size=(96, 80)):
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        path = folder / f"p{index}.jpg"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), np.uint8)).save(path)
        paths.append(path)
    return paths


def _dataset(paths, cache_mb, **options):
    return InpaintingDataset(paths, 32, train=True, mask_source=MaskGenerator(32, 32), seed=1,
                             decode_cache_mb=cache_mb, **options)


@pytest.mark.parametrize("train_resize", ["crop", "resize", "random_resized_crop"])
def test_the_decode_cache_changes_no_sample_and_decodes_each_file_once(tmp_path, monkeypatch,
                                                                       train_resize):
    paths = _photos(tmp_path)
    decodes = []
    load = dataset_module.load_image

    def counting_load(path, reduce_to=None):
        decodes.append(path)
        return load(path, reduce_to=reduce_to)

    monkeypatch.setattr(dataset_module, "load_image", counting_load)
    plain, cached = _dataset(paths, 0, train_resize=train_resize), _dataset(
        paths, 16, train_resize=train_resize)
    for epoch in range(3):
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        for index in range(len(paths)):
            expected, got = plain[index], cached[index]
            assert torch.equal(expected["image"], got["image"])
            assert torch.equal(expected["mask"], got["mask"])
            assert got["path"] == expected["path"] and got["bad_files"] == 0
    assert len(decodes) == 3 * len(paths) + len(paths)  # plain: every sample; cached: once


def test_the_decode_cache_stays_within_its_budget_least_recently_used_out():
    image = np.zeros((10, 10, 3), np.uint8)  # 300 bytes
    cache = DecodeCache(max_bytes=700)
    cache.put(0, image)
    cache.put(1, image.copy())
    assert cache.get(0) is image  # 0 is now the most recently used
    cache.put(2, image.copy())  # no room for three: 1 goes
    assert cache.get(1) is None and cache.get(0) is image and cache.get(2) is not None
    assert cache.bytes == 600 and len(cache) == 2
    cache.put(3, np.zeros((20, 20, 3), np.uint8))  # larger than the whole budget: not kept
    assert cache.get(3) is None and len(cache) == 2
    off = DecodeCache(max_bytes=0)
    off.put(0, image)
    assert len(off) == 0


def test_an_undecodable_file_is_skipped_every_epoch_and_never_cached(tmp_path, caplog):
    paths = _photos(tmp_path, count=2)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    dataset = _dataset([bad, *paths], 16)
    for epoch in range(2):
        dataset.set_epoch(epoch)
        sample = dataset[0]
        assert sample["bad_files"] == 1 and sample["path"] == str(paths[0])
    assert len(dataset.cache) == 1  # paths[0] only
    assert caplog.text.count("skipping undecodable image") == 2
