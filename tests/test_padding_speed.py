"""benchmarks/padding_speed.py: the smoke run, its ratio rows, NVIDIA's models from a folder."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch

_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "padding_speed.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("padding_speed", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_nvidia_checkout(root: Path) -> Path:
    """A folder laid out as NVIDIA's repository, with a tiny pdresnet18 in models/pd_resnet.py."""
    models = root / "models"
    models.mkdir(parents=True)
    # their __init__ imports every family; it must not run (it would fail here)
    (models / "__init__.py").write_text("raise ImportError('models/__init__.py was run')\n")
    (models / "partialconv2d.py").write_text("from torch import nn\nLayer = nn.Linear\n")
    (models / "pd_resnet.py").write_text(
        "from torch import nn\nfrom .partialconv2d import Layer\n\n"
        "def pdresnet18(pretrained=False, num_classes=1000):\n"
        "    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), Layer(3, num_classes))\n"
    )
    return root


def _ratio(text: str, arch: str, pair: str) -> float:
    match = re.search(rf"^ratio {arch} {pair}: ([0-9.]+)x \(median of per-round ratios "
                      r"([0-9.]+)x\)", text, re.MULTILINE)
    assert match, f"no ratio row for {pair} in:\n{text}"
    return float(match.group(1))


def test_quick_run_prints_the_table_and_ratio_rows(bench, capsys):
    bench.main(["--quick", "--threads", "1"])  # one thread: steady on a busy machine
    out = capsys.readouterr().out
    assert out.startswith(f"torch {torch.__version__}, cpu, 1 threads")
    assert "batch 2, 32 px, 10 classes, fp32, NCHW" in out
    for variant in ("zero", "partial"):
        assert re.search(rf"^resnet18 +{variant} +[0-9.]+ +[0-9.]+ +[0-9.]+x +[0-9.]+ +[0-9.]+x$",
                         out, re.MULTILINE)
    assert re.search(r"^resnet18 +nvidia +absent \(no --nvidia-dir given\)$", out, re.MULTILINE)
    assert _ratio(out, "resnet18", "partial/zero") > 0
    assert re.search(r"target <= 1\.10x: (met|MISSED)$", out, re.MULTILINE)
    assert "nvidia/" not in out
    assert "SGD step (lr 0, momentum 0.9, wd 1e-4)" in out
    assert "warning" not in out


def test_a_diverged_run_is_flagged(bench, capsys):
    bench.main(["--quick", "--threads", "1", "--lr", "1e30"])
    out = capsys.readouterr().out
    assert re.search(r"^warning: resnet18 zero: the loss is no longer finite", out, re.MULTILINE)


def test_nvidia_variant_comes_from_the_given_folder(bench, tmp_path, capsys):
    folder = _fake_nvidia_checkout(tmp_path / "partialconv")
    bench.main(["--archs", "resnet18", "--size", "224", "--batch-size", "1", "--classes", "5",
                "--warmup", "0", "--rounds", "1", "--threads", "1", "--nvidia-dir", str(folder)])
    out = capsys.readouterr().out
    assert re.search(r"^resnet18 +nvidia +[0-9.]+ +[0-9.]+ +[0-9.]+x +[0-9.]+ +[0-9.]+x$", out,
                     re.MULTILINE)
    for pair in ("partial/zero", "nvidia/zero", "nvidia/partial"):
        assert _ratio(out, "resnet18", pair) >= 0  # the fake is a tiny model: close to 0


def test_nvidia_loader_finds_each_family_or_none(bench, tmp_path):
    folder = _fake_nvidia_checkout(tmp_path / "partialconv")
    model = bench.load_nvidia_builder(folder, "resnet18")(num_classes=4)
    assert model(torch.rand(2, 3, 8, 8)).shape == (2, 4)
    assert bench.load_nvidia_builder(folder, "resnet50") is None  # no pdresnet50 in the fake
    assert bench.load_nvidia_builder(folder, "vgg16_bn") is None  # no pd_vgg.py
    with pytest.raises(FileNotFoundError, match="NVIDIA/partialconv"):
        bench.load_nvidia_builder(tmp_path / "elsewhere", "resnet18")
    assert not [name for name in sys.modules if name == "models"]


def test_nvidia_absent_reasons(bench, tmp_path):
    folder = _fake_nvidia_checkout(tmp_path / "partialconv")
    args = bench.parse_args(["--nvidia-dir", str(folder), "--size", "32"])
    assert bench.nvidia_absent_reason("resnet18", args) == "their networks take 224 px input only"
    args = bench.parse_args(["--nvidia-dir", str(folder)])
    assert bench.nvidia_absent_reason("resnet18", args) is None
    assert bench.nvidia_absent_reason("vgg16_bn", args).startswith("no pdvgg16_bn in ")


def test_report_ratios_and_target(bench):
    times = {"zero": [1.0, 2.0, 1.0], "partial": [1.2, 2.2, 1.2], "nvidia": [1.5, 3.0, 1.5]}
    text = bench.report("resnet50", times, "")
    assert _ratio(text, "resnet50", "partial/zero") == pytest.approx(1.2, abs=1e-3)
    assert "(median of per-round ratios 1.200x)  target <= 1.10x: MISSED" in text
    assert _ratio(text, "resnet50", "nvidia/zero") == pytest.approx(1.5, abs=1e-3)
    assert _ratio(text, "resnet50", "nvidia/partial") == pytest.approx(1.5 / 1.2, abs=1e-3)
    cpu_times = {"zero": [2.0], "partial": [2.5]}
    fast = bench.report("vgg16_bn", {"zero": [1.0], "partial": [1.05]}, "no --nvidia-dir given",
                        cpu_times)
    assert "target <= 1.10x: met" in fast
    assert re.search(r"^vgg16_bn +partial +1\.050 +1\.050 +1\.050x +2\.500 +1\.250x$", fast,
                     re.MULTILINE)
    assert "absent (no --nvidia-dir given)" in fast


@pytest.mark.parametrize("argv, message", [
    (["--rounds", "0"], "must be >= 1"),
    (["--warmup", "-1"], "--warmup must be >= 0"),
    (["--nvidia-dir", "/nonexistent/partialconv"], "has no models/ folder"),
    (["--archs", "alexnet"], "invalid choice"),
    (["--device", "gpu"], "is not a device"),
])
def test_bad_arguments_exit_2(bench, argv, message, capsys):
    with pytest.raises(SystemExit) as raised:
        bench.parse_args(argv)
    assert raised.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_exits_2(bench, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--device", "cuda"])
    assert "CUDA is not available" in capsys.readouterr().err
