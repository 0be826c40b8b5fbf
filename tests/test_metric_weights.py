"""Metric weights offline: --metric-weights, the usual places, the one-line errors."""

import dataclasses
import logging

import pytest
import torch

from inpainting.engine.errors import EnvironmentProblem, UserInputError
from inpainting.metrics import weights as weights_module
from inpainting.metrics.weights import (
    WEIGHT_FILES,
    file_sha256,
    load_state_dict,
    parse_metric_weights,
    resolve_weights,
)


@pytest.fixture
def empty_places(tmp_path, monkeypatch):
    """No torch hub cache and no package shipping a file: nothing is found by default."""
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.setattr(weights_module, "_package_file",
                        lambda package, *parts: tmp_path / "site-packages" / package / parts[-1])
    return hub


def test_parse_metric_weights(tmp_path):
    given = parse_metric_weights(["inception=~/w.pth", " vgg16 = /x/vgg.pth "])
    assert given["inception"].name == "w.pth" and str(given["vgg16"]) == "/x/vgg.pth"
    for item, message in (("inception", "must be NAME=PATH"), ("inception=", "must be NAME=PATH"),
                          ("alex=/a.pth", "unknown weights 'alex' \\(valid: inception, vgg16, "
                                          "lpips-vgg\\)")):
        with pytest.raises(UserInputError, match=message):
            parse_metric_weights([item])
    with pytest.raises(UserInputError, match="given twice"):
        parse_metric_weights(["vgg16=/a", "vgg16=/b"])


@pytest.mark.parametrize("name", list(WEIGHT_FILES))
def test_a_missing_file_names_file_url_sha_places_and_the_flag(name, empty_places):
    with pytest.raises(EnvironmentProblem) as caught:
        resolve_weights(name, None, "fid, kid")
    message = str(caught.value)
    spec = WEIGHT_FILES[name]
    for part in (spec.filename, spec.url, spec.sha256, f"--metric-weights {name}=PATH",
                 "fid, kid needs"):
        assert part in message, (part, message)
    assert "\n" not in message
    if name != "lpips-vgg":
        assert str(empty_places / "checkpoints") in message


def test_found_in_the_hub_cache_with_the_published_sha(empty_places, monkeypatch):
    checkpoints = empty_places / "checkpoints"
    checkpoints.mkdir(parents=True)
    # torch-fidelity's name for the FID Inception, the second place looked at
    file = checkpoints / "weights-inception-2015-12-05-6726825d.pth"
    torch.save({"w": torch.ones(2)}, file)
    published = dataclasses.replace(WEIGHT_FILES["inception"], sha256=file_sha256(file))
    monkeypatch.setitem(WEIGHT_FILES, "inception", published)
    resolved = resolve_weights("inception", None, "fid")
    assert resolved.path == file and resolved.official


def test_a_torn_download_in_the_cache_is_refused(empty_places):
    checkpoints = empty_places / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "vgg16-397923af.pth").write_bytes(b"half a file")
    with pytest.raises(UserInputError, match="torn download.*delete it"):
        resolve_weights("vgg16", None, "lpips")


def test_a_given_file_may_differ_with_a_warning(tmp_path, caplog):
    file = tmp_path / "mine.pth"
    torch.save({"w": torch.zeros(1)}, file)
    with caplog.at_level(logging.WARNING):
        resolved = resolve_weights("inception", file, "fid")
    assert resolved.path == file and not resolved.official
    assert "not comparable with published ones" in caplog.text
    with pytest.raises(UserInputError, match="no such file"):
        resolve_weights("inception", tmp_path / "absent.pth", "fid")


def test_load_state_dict_reads_only_plain_tensors(tmp_path):
    text = tmp_path / "text.pth"
    text.write_text("hello")
    module = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(2, 2), module)  # a pickled module, not a state dict
    for path in (text, module):
        with pytest.raises(UserInputError, match="cannot be read as a state dict") as caught:
            load_state_dict(resolve_weights("inception", path, "fid"))
        assert "\n" not in str(caught.value)
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(UserInputError, match="hold no state dict"):
        load_state_dict(resolve_weights("inception", tensor, "fid"))
