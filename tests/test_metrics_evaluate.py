"""evaluate.py --metrics with random-weight networks: columns, set scores, the feature cache,
and the one-line errors (unknown name: exit 2; missing weights: exit 3 before any work)."""

import csv
import json
import logging
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
from deploy_helpers import tiny_checkpoint
from metric_weights import random_inception_file, random_lpips_linear_file, random_vgg16_file
from PIL import Image

from inpainting.engine.errors import UserInputError
from inpainting.metrics.evaluation import EvalSettings, MaskRecord, Pair, PairDataset
from inpainting.metrics.inception import FEATURES, LOGITS, build_inception
from inpainting.metrics.suite import METRICS, MetricSuite
from inpainting.metrics.weights import ResolvedWeights, file_sha256

ROOT = Path(__file__).resolve().parents[1]
ALL = ",".join(METRICS)
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:torchvision.*")


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("metric_weights")
    return {"inception": random_inception_file(folder / "inception.pth"),
            "vgg16": random_vgg16_file(folder / "vgg16.pth"),
            "lpips-vgg": random_lpips_linear_file(folder / "lin.pth")}


@pytest.fixture
def setup(tmp_path):
    """A tiny checkpoint (evaluated at 32x32) and two 40x48 images (Inception is the cost)."""
    checkpoint = tmp_path / "run" / "best.pt"
    checkpoint.parent.mkdir()
    tiny_checkpoint(checkpoint)
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for index in range(2):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
            images / f"img{index}.png")
    return checkpoint, images


def _evaluate(setup, out, weight_files, metrics, *extra):
    checkpoint, images = setup
    flags = [item for name, path in weight_files.items()
             for item in ("--metric-weights", f"{name}={path}")]
    main = runpy.run_path(str(ROOT / "evaluate.py"))["main"]
    return main(["--checkpoint", str(checkpoint), "--images", str(images), "--out", str(out),
                 "--bins", "0.1-0.2", "--masks-per-bin", "1", "--device", "cpu",
                 "--workers", "0", "--batch-size", "8", "--grid-rows", "0",
                 "--feature-cache", str(out.parent / "cache"), "--metrics", metrics,
                 *flags, *extra])


def test_every_metric_one_column_set_scores_in_the_all_rows(setup, tmp_path, weight_files,
                                                            capsys):
    out = tmp_path / "report"
    assert _evaluate(setup, out, weight_files, ALL, "--baseline", "opencv-telea") == 0
    printed = capsys.readouterr().out
    assert "LPIPS" in printed and "grad" in printed
    assert "over all 2 pairs" in printed and "FID" in printed and "P-IDS" in printed
    rows = list(csv.reader(open(out / "metrics.csv")))
    assert rows[0] == ["method", "bin", "border", "count", "psnr", "ssim", "l1", "l1_hole",
                       "grad-ratio", "lpips", "fid", "kid", "is", "p-ids", "u-ids"]
    for row in rows[1:]:
        record = dict(zip(rows[0], row))
        assert float(record["lpips"]) > 0 and float(record["grad-ratio"]) > 0
        if record["bin"] == "all":
            assert all(np.isfinite(float(record[n])) for n in ("fid", "kid", "is"))
            assert 1 <= float(record["is"]) and 0 <= float(record["u-ids"]) <= 0.5
        else:  # over the whole set only
            assert all(record[n] == "" for n in ("fid", "kid", "is", "p-ids", "u-ids"))
    assert {row[0] for row in rows[1:]} == {"model", "opencv-telea"}
    content = json.loads((out / "metrics.json").read_text())
    assert content["overall"]["fid"] > 0 and "fid" not in content["rows"][0]
    assert "fid" in content["baselines"]["opencv-telea"]["overall"]
    per_image = next(csv.reader(open(out / "per_image.csv")))
    assert per_image[-3:] == ["l1_hole", "grad-ratio", "lpips"]


def test_ground_truth_features_are_cached_and_a_changed_image_misses(setup, tmp_path,
                                                                     weight_files, caplog):
    cache = tmp_path / "cache"
    weights = {"inception": weight_files["inception"]}

    def fid(out):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            assert _evaluate(setup, tmp_path / out, weights, "fid") == 0
        overall = json.loads((tmp_path / out / "metrics.json").read_text())["overall"]
        return overall["fid"], "from the cache" in caplog.text

    first, hit = fid("first")
    assert not hit and len(list(cache.glob("*.pt"))) == 1
    second, hit = fid("second")  # another report folder: another checkpoint or run
    assert hit and second == pytest.approx(first, rel=1e-6)
    image = setup[1] / "img0.png"
    Image.fromarray(np.full((40, 48, 3), 128, np.uint8)).save(image)
    third, hit = fid("third")
    assert not hit and third != pytest.approx(first, rel=1e-3)
    assert len(list(cache.glob("*.pt"))) == 2


def test_unknown_metric_is_exit_2_listing_the_names(setup, tmp_path, weight_files, capsys):
    with pytest.raises(SystemExit) as caught:
        _evaluate(setup, tmp_path / "report", weight_files, "psnr,fidd")
    assert caught.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "unknown metric 'fidd'" in lines[0]
    assert "l1, psnr, ssim, lpips, fid, kid, is, p-ids, u-ids, grad-ratio" in lines[0]


def test_missing_weights_are_exit_3_before_any_work(setup, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty_hub"))
    out = tmp_path / "report"
    assert _evaluate(setup, out, {}, "l1,kid") == 3
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "pt_inception-2015-12-05-6726825d.pth" in lines[0]
    assert "https://github.com/mseitzer/pytorch-fid/releases" in lines[0]
    assert "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2" in lines[0]
    assert "--metric-weights inception=PATH" in lines[0]
    assert not out.exists()  # no mask generated, no report begun


def test_suite_needs_no_ground_truth_for_is_and_lpips_refuses_tiny_images(tmp_path,
                                                                          weight_files):
    given = [f"{name}={path}" for name, path in weight_files.items()]
    suite = MetricSuite(["is"], given, "cpu", tmp_path / "cache")
    suite.begin(_dataset(tmp_path / "absent.png", 3, 32))  # no file is read
    image = torch.rand(3, 3, 32, 32)
    suite.observe_truth([0, 1, 2], image)
    assert suite.observe("model", [0, 1, 2], image, image) == {}
    assert list(suite.finish()["model"]) == ["is"] and not (tmp_path / "cache").exists()
    lpips = MetricSuite(["lpips"], given, "cpu", tmp_path / "cache")
    with pytest.raises(UserInputError, match="lpips needs images of at least 16x16"):
        lpips.begin(_dataset(tmp_path / "a.png", 1, 11))
    own_sizes = _dataset(tmp_path / "a.png", 2, 0)
    own_sizes.sizes = [(40, 30), (12, 30)]  # --pair-by-name: each pair at its own size
    with pytest.raises(UserInputError, match="a side of 12"):
        lpips.begin(own_sizes)


def _dataset(image: Path, count: int, size: int) -> PairDataset:
    """``count`` pairs of one image at ``size`` (0: own sizes, set ``.sizes``)."""
    pairs = [Pair(image, image.name, MaskRecord(image, f"m{i}.png")) for i in range(count)]
    return PairDataset(pairs, EvalSettings(size, size, "center_crop" if size else "none"))


def test_inception_features_take_grey_and_round_to_8_bits(weight_files):
    path = weight_files["inception"]
    network = build_inception(ResolvedWeights("inception", path, file_sha256(path)))
    grey = torch.rand(2, 1, 20, 24)
    outputs = network(grey)
    assert outputs[FEATURES].shape == (2, 2048) and outputs[LOGITS].shape == (2, 1008)
    levels = grey.expand(-1, 3, -1, -1).mul(255).round().to(torch.uint8)
    expected = network.extractor(levels)[0]
    assert torch.equal(outputs[FEATURES], expected)
    assert torch.isfinite(outputs[FEATURES]).all()
