"""A checkpoint of the wrong task, or a file that is no checkpoint, given to any command: exit 2
with one line under ~200 characters (besides the path) saying what was found, never torch's
advice to load the file with ``weights_only=False``."""

import sys
from pathlib import Path, PurePosixPath

import pytest
import torch
from test_classify import image_folder
from test_limits import ROOT, run

FIXTURES = ROOT / "tests" / "fixtures" / "checkpoints_v1"
CLASSIFICATION = FIXTURES / "classification_checkpoint.pth.tar"
NVIDIA = FIXTURES / "nvidia_main_checkpoint.pth.tar"
INPAINTING = FIXTURES / "inpainting_last.pt"

sys.path.insert(0, str(ROOT))
import classify  # noqa: E402
import evaluate  # noqa: E402


def one_short_line(stderr: str, prog: str, path: Path) -> str:
    line = stderr.strip().splitlines()[-1]
    assert line.startswith(f"{prog}: error: '{path}' is ") or f"'{path}'" in line, stderr
    assert len(line) - len(str(path)) < 200, line
    assert "weights_only" not in line and "Traceback" not in stderr, stderr
    return line


@pytest.mark.parametrize("command", [
    ["evaluate.py", "--images", "tests/fixtures"],
    ["-m", "inpainting.predict", "--image", "docs/app.png", "--out", "{tmp}/out.png"],
    ["-m", "inpainting.export", "--format", "onnx", "--out", "{tmp}/model.onnx"],
])
def test_a_classification_checkpoint_given_to_an_inpainting_command(command, tmp_path):
    argv = [word.format(tmp=tmp_path) for word in command]
    done = run(*argv, "--checkpoint", str(CLASSIFICATION))
    assert done.returncode == 2, done.stderr
    prog = "evaluate.py" if argv[0] == "evaluate.py" else f"python {argv[0]} {argv[1]}"
    line = one_short_line(done.stderr, prog, CLASSIFICATION)
    assert line == (f"{prog}: error: '{CLASSIFICATION}' is a classification checkpoint (arch "
                    "small_vgg), not an inpainting one; pass an inpainting checkpoint of "
                    "train.py (RUN/best.pt) or its run folder")
    assert not list(tmp_path.iterdir())


def test_an_nvidia_checkpoint_given_to_evaluate_and_the_app(tmp_path, capsys):
    from inpainting.app.__main__ import main as app

    assert evaluate.main(["--checkpoint", str(NVIDIA), "--images", "tests/fixtures"]) == 2
    assert app(["--checkpoint", str(NVIDIA), "--port", "1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-2].startswith(f"evaluate.py: error: '{NVIDIA}' is a checkpoint of NVIDIA's "
                                "main.py (arch small_vgg), not an inpainting one; ")
    assert lines[-1].startswith(f"python -m inpainting.app: error: '{NVIDIA}' is a checkpoint "
                                "of NVIDIA's main.py (arch small_vgg), not an inpainting one; ")
    assert all(len(line) - len(str(NVIDIA)) < 200 for line in lines[-2:])


def class_folders(tmp_path):
    return (image_folder(tmp_path / "train", 2, ("cat", "dog")),
            image_folder(tmp_path / "val", 1, ("cat", "dog")))


def classify_flags(tmp_path, *extra):
    train, val = class_folders(tmp_path)
    return ["-a", "small_vgg", "--data_train", str(train), "--data_val", str(val), "-b", "2",
            "-j", "0", "--epochs", "1", "--crop-size", "32", "--resize-size", "36", "--device",
            "cpu", "--ckptdirprefix", f"{tmp_path}/", *extra]


@pytest.mark.parametrize("mode", [["--resume"], ["-e", "--resume"], ["--finetune-from"]])
def test_an_inpainting_checkpoint_given_to_classify(mode, tmp_path):
    done = run("classify.py", *classify_flags(tmp_path, *mode, str(INPAINTING)))
    assert done.returncode == 2, done.stderr
    line = one_short_line(done.stderr, "classify.py", INPAINTING)
    assert line == (f"classify.py: error: '{INPAINTING}' is an inpainting checkpoint (pconv_unet, "
                    "depth 3), not a classification one; pass a checkpoint.pth.tar of "
                    "classify.py or NVIDIA's main.py")
    assert "train.run_dir" not in done.stderr
    assert not list(tmp_path.glob("checkpoint_*"))


def bad_files(folder: Path) -> dict[str, Path]:
    """name -> a file that is no checkpoint of this project, and what the message says."""
    text = folder / "notes.pth.tar"
    text.write_text("hello")
    whole = folder / "whole.pt"
    torch.save({"weights": torch.zeros(3)}, whole)
    truncated = folder / "truncated.pt"
    truncated.write_bytes(whole.read_bytes()[:300])
    foreign = folder / "foreign.pt"
    torch.save({"state_dict": {}, "where": PurePosixPath("x")}, foreign)  # not weights
    return {"not a file written by torch.save": text,
            "the file is truncated or corrupt": truncated,
            "it holds objects other than tensors": foreign}


@pytest.mark.parametrize("mode", [["-e", "--resume"], ["--finetune-from"]])
def test_classify_says_what_an_unreadable_file_is_without_torchs_advice(mode, tmp_path,
                                                                        capsys):
    for says, path in bad_files(tmp_path).items():
        capsys.readouterr()
        assert classify.main(classify_flags(tmp_path, *mode, str(path))) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith(f"classify.py: error: cannot read checkpoint '{path}': {says}"), err
        assert err.endswith("; pass a checkpoint.pth.tar of classify.py or NVIDIA's main.py")
        assert len(err) - len(str(path)) < 200 and "weights_only" not in err, err
