"""Tests for inpainting.tasks.classification.nvidia: NVIDIA's checkpoint format, both ways."""

import copy

import pytest
import torch
from torch import nn

from inpainting.engine.errors import UserInputError
from inpainting.layers.padding import convert_to_partial_conv
from inpainting.tasks.classification.models import build_classifier, pdresnet18
from inpainting.tasks.classification.nvidia import (
    load_nvidia_checkpoint,
    make_nvidia_checkpoint,
    nvidia_state_dict,
    read_nvidia_checkpoint,
    save_nvidia_checkpoint,
)


class _TinyVgg(nn.Module):
    """VGG's layout (``features`` then ``classifier``) at a size that saves in milliseconds;
    torchvision's VGG classifier alone holds 120M parameters."""

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.features = convert_to_partial_conv(nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2)))
        self.avgpool = nn.AdaptiveAvgPool2d(2)
        self.classifier = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _classifier(arch: str) -> nn.Module:
    return _TinyVgg() if "vgg" in arch else build_classifier(arch, num_classes=4)


def _sgd_with_state(model: nn.Module) -> torch.optim.SGD:
    """NVIDIA's optimizer (SGD, momentum, weight decay over model.parameters()) after a step."""
    optimizer = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9, weight_decay=1e-4)
    model(torch.rand(2, 3, 32, 32)).sum().backward()
    optimizer.step()
    return optimizer


def _load_as_nvidia_main_py_does(path, arch: str, model: nn.Module) -> tuple[nn.Module, dict]:
    """NVIDIA's main.py --resume: wrap as it wraps, then plain load_state_dict calls."""
    if arch.startswith("alexnet") or "vgg" in arch:
        model.features = nn.DataParallel(model.features)
    else:
        model = nn.DataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9, weight_decay=1e-4)
    checkpoint = torch.load(path)
    model.load_state_dict(checkpoint["state_dict"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    return model, checkpoint


@pytest.mark.parametrize("arch", ["pdresnet18", "pdvgg11_bn"])
def test_our_checkpoint_loads_in_nvidia_script_and_round_trips(tmp_path, arch):
    model = _classifier(arch)
    optimizer = _sgd_with_state(model)
    checkpoint = make_nvidia_checkpoint(model, arch, epoch=7, best_prec1=61.5,
                                        optimizer=optimizer)
    save_nvidia_checkpoint(checkpoint, tmp_path / "run", is_best=True)
    path = tmp_path / "run" / "checkpoint.pth.tar"
    assert (tmp_path / "run" / "model_best.pth.tar").read_bytes() == path.read_bytes()
    assert not list((tmp_path / "run").glob("*.tmp"))

    keys = list(torch.load(path)["state_dict"])
    if "vgg" in arch:
        assert "features.module.0.weight" in keys and "classifier.2.weight" in keys
    else:
        assert all(k.startswith("module.") for k in keys)

    theirs, raw = _load_as_nvidia_main_py_does(path, arch, _classifier(arch))
    assert raw["epoch"] == 7 and raw["best_prec1"] == 61.5 and raw["arch"] == arch
    reference = model.state_dict()
    assert all(torch.equal(v, reference[k.replace("module.", "")])
               for k, v in theirs.state_dict().items())

    ours = load_nvidia_checkpoint(_classifier(arch), path)
    assert all(torch.equal(v, reference[k]) for k, v in ours.state_dict().items())
    read = read_nvidia_checkpoint(path)
    assert (read.epoch, read.arch, read.best_prec1, read.padding) == (7, arch, 61.5, None)
    resumed = torch.optim.SGD(ours.parameters(), 0.1, momentum=0.9, weight_decay=1e-4)
    resumed.load_state_dict(read.optimizer)
    buffers = [resumed.state[p]["momentum_buffer"] for p in ours.parameters()]
    expected = [optimizer.state[p]["momentum_buffer"] for p in model.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(buffers, expected))


def test_checkpoint_written_by_hand_in_nvidia_layout_reads_here(tmp_path):
    """What NVIDIA's main.py writes for a VGG, built key by key: features wrapped in
    DataParallel, a 0-dim tensor best_prec1, the optimizer's state dict."""
    source = _TinyVgg(num_classes=3)
    source.features[1].running_var.fill_(2.5)
    state = {}
    for key, value in source.state_dict().items():
        if key.startswith("features."):
            key = "features.module." + key[len("features."):]
        state[key] = value.clone()
    optimizer = torch.optim.SGD(source.parameters(), 0.1, momentum=0.9)
    path = tmp_path / "model_best.pth.tar"
    torch.save({"epoch": 100, "arch": "pdvgg11", "state_dict": state,
                "best_prec1": torch.tensor(72.25), "optimizer": optimizer.state_dict()}, path)

    read = read_nvidia_checkpoint(path)
    assert (read.epoch, read.arch, read.best_prec1) == (100, "pdvgg11", 72.25)
    target = load_nvidia_checkpoint(_TinyVgg(num_classes=3), path)
    assert torch.equal(target.features[0].weight, source.features[0].weight)
    assert torch.equal(target.features[1].running_var, source.features[1].running_var)
    assert torch.equal(target.classifier[2].bias, source.classifier[2].bias)


def test_nvidia_state_dict_layout_and_padding_entry():
    model = nn.DataParallel(pdresnet18(num_classes=2))  # a wrapper is looked through
    assert next(iter(nvidia_state_dict(model, "pdresnet18"))) == "module.conv1.weight"
    vgg_keys = nvidia_state_dict(build_classifier("vgg11", num_classes=2), "vgg11")
    assert "features.module.0.weight" in vgg_keys and "classifier.6.weight" in vgg_keys
    checkpoint = make_nvidia_checkpoint(pdresnet18(num_classes=2), "resnet18", 1, 0.0, None,
                                        padding="reflect")
    assert checkpoint["padding"] == "reflect" and checkpoint["optimizer"] == {}


def test_read_nvidia_checkpoint_refuses_other_files(tmp_path):
    path = tmp_path / "last.pt"
    torch.save({"model": {}, "step": 3}, path)
    with pytest.raises(UserInputError, match="not a checkpoint of NVIDIA's format.*epoch"):
        read_nvidia_checkpoint(path)
    with pytest.raises(FileNotFoundError) as error:
        read_nvidia_checkpoint(tmp_path / "missing.pth.tar")
    assert error.value.filename == str(tmp_path / "missing.pth.tar")
    with pytest.raises(ValueError, match="needs the keys"):
        save_nvidia_checkpoint({"epoch": 1}, tmp_path, is_best=False)


def _nvidia_style_checkpoint(model: nn.Module, vgg: bool = False) -> dict:
    """What NVIDIA's main.py saves: DataParallel keys inside a training-state dict."""
    state = model.state_dict()
    if vgg:  # main.py wraps only model.features in DataParallel for VGG
        state = {k.replace("features.", "features.module.", 1): v for k, v in state.items()}
    else:
        state = {f"module.{k}": v for k, v in state.items()}
    return {"epoch": 100, "arch": "pdresnet18", "state_dict": state,
            "best_prec1": torch.tensor(70.1), "optimizer": {"state": {}, "param_groups": []}}


def test_load_nvidia_checkpoint_round_trips_a_dataparallel_checkpoint(tmp_path):
    source = pdresnet18(num_classes=5)
    path = tmp_path / "model_best.pth.tar"
    torch.save(_nvidia_style_checkpoint(source), path)
    assert all(k.startswith("module.") for k in torch.load(path)["state_dict"])

    target = pdresnet18(num_classes=5)
    assert not torch.equal(target.conv1.weight, source.conv1.weight)
    assert load_nvidia_checkpoint(target, path) is target
    loaded, reference = target.state_dict(), source.state_dict()
    assert all(torch.equal(loaded[k], reference[k]) for k in reference)


def test_load_nvidia_checkpoint_vgg_layout_and_old_batchnorm_keys():
    source = nn.Sequential()
    source.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))
    source.classifier = nn.Linear(4, 2)
    checkpoint = _nvidia_style_checkpoint(convert_to_partial_conv(source), vgg=True)
    # torch < 0.4.1 checkpoints have no num_batches_tracked
    checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items()
                                if not k.endswith("num_batches_tracked")}
    target = copy.deepcopy(source)
    for parameter in target.parameters():
        nn.init.zeros_(parameter)
    load_nvidia_checkpoint(target, checkpoint)
    assert torch.equal(target.features[0].weight, source.features[0].weight)
    assert torch.equal(target.classifier.weight, source.classifier.weight)


def test_load_nvidia_checkpoint_errors_clearly(tmp_path):
    checkpoint = _nvidia_style_checkpoint(pdresnet18(num_classes=5))
    checkpoint["state_dict"]["module.extra.weight"] = torch.zeros(1)
    del checkpoint["state_dict"]["module.fc.bias"]
    path = tmp_path / "mismatch.pth"
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match=r"missing keys \['fc.bias'\].*unexpected keys "
                                         r"\['extra.weight'\]"):
        load_nvidia_checkpoint(pdresnet18(num_classes=5), path)

    partial = load_nvidia_checkpoint(pdresnet18(num_classes=5), path, strict=False)
    assert torch.equal(partial.fc.weight, checkpoint["state_dict"]["module.fc.weight"])

    with pytest.raises(ValueError, match="shapes do not match.*fc.weight"):
        load_nvidia_checkpoint(pdresnet18(num_classes=3), path, strict=False)

    not_a_state_dict = tmp_path / "training_log.pth"
    torch.save({"epoch": 3, "arch": "pdresnet18"}, not_a_state_dict)
    with pytest.raises(ValueError, match="not a state dict"):
        load_nvidia_checkpoint(pdresnet18(), not_a_state_dict)

    garbage = tmp_path / "notes.txt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        load_nvidia_checkpoint(pdresnet18(), garbage)
    with pytest.raises(FileNotFoundError):
        load_nvidia_checkpoint(pdresnet18(), tmp_path / "missing.pth")
