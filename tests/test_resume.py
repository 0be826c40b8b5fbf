"""Reading what --resume and --config name, and resuming with a changed config."""

import pickle
from pathlib import PurePosixPath

import pytest
import torch

from inpainting.engine.checkpoint import load_checkpoint
from inpainting.errors import UserInputError


def _one_line_naming(error: BaseException, path) -> str:
    text = str(error)
    assert "\n" not in text and f"'{path}'" in text, text
    assert len(text) < 250, text
    return text


@pytest.mark.parametrize("content, reason", [
    (b"", "the file is empty"),
    (b"a text file, not a checkpoint\n", "not a file written by torch.save"),
    (pickle.dumps({"model": 1, "config": {}}, protocol=4), "not a file written by torch.save"),
])
def test_a_file_that_is_not_a_checkpoint_is_one_short_line(tmp_path, content, reason):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(UserInputError) as info:
        load_checkpoint(path)
    text = _one_line_naming(info.value, path)
    assert reason in text and "pass a .pt file written by train.py" in text, text
    assert "weights_only" not in text and "EOFError" not in text, text


def test_a_foreign_pickle_inside_a_torch_file_is_one_short_line(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"model": {}, "config": {}, "path": PurePosixPath("x")}, path)  # not weights
    with pytest.raises(UserInputError) as info:
        load_checkpoint(path)
    text = _one_line_naming(info.value, path)
    assert "objects other than tensors" in text and "weights_only" not in text, text


def test_a_torch_file_that_is_no_checkpoint_says_so(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2], path)
    with pytest.raises(UserInputError, match="is not a training checkpoint of this project"):
        load_checkpoint(path)
