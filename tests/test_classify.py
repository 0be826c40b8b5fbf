"""classify.py: NVIDIA's command line on a tiny synthetic ImageFolder (CPU, resnet18 at 48 px,
where the last stage is 2 px wide: reflect padding needs more than 1 px)."""

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from run_helpers import scalars
from test_limits import run

from inpainting.engine.checkpoint import load_checkpoint
from inpainting.tasks.classification.cli import run_folder
from inpainting.tasks.classification.nvidia import read_nvidia_checkpoint
from inpainting.tasks.classification.task import read_metrics

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import classify  # noqa: E402 (the script beside train.py)

CLASSES = ("cat", "dog", "fox")


def image_folder(root: Path, per_class: int, classes=CLASSES) -> Path:
    rng = np.random.default_rng(len(classes) * per_class)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            image = rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)
            cv2.imwrite(str(root / name / f"{index}.png"), image)
    return root


@pytest.fixture
def folders(tmp_path):
    return image_folder(tmp_path / "train", 4), image_folder(tmp_path / "val", 2)


def flags(folders, tmp_path, *extra, epochs=1):
    train, val = folders
    return ["-a", "resnet18", "--data_train", str(train), "--data_val", str(val), "-b", "4",
            "-j", "0", "--epochs", str(epochs), "--lr", "0.01", "--crop-size", "48",
            "--resize-size", "54", "--device", "cpu", "--ckptdirprefix", f"{tmp_path}/",
            "--prefix", "t", "-p", "1", *extra]


@pytest.mark.parametrize("padding", ["zero", "partial", "reflect", "replicate"])
def test_each_padding_trains_and_writes_nvidia_checkpoints(folders, tmp_path, padding, capsys):
    assert classify.main(flags(folders, tmp_path, "--padding", padding)) == 0
    name = {"zero": "resnet18", "partial": "pdresnet18"}.get(padding, f"resnet18_{padding}")
    run = tmp_path / f"checkpoint_{name}_t"
    checkpoint = read_nvidia_checkpoint(run / "checkpoint.pth.tar")
    assert checkpoint.arch == ("pdresnet18" if padding == "partial" else "resnet18")
    assert checkpoint.epoch == 1 and checkpoint.padding == padding
    assert "module.conv1.weight" in checkpoint.state_dict
    assert all(torch.isfinite(v).all() for v in checkpoint.state_dict.values())
    assert (run / "model_best.pth.tar").is_file()
    [record] = read_metrics(run)
    assert record["step"] == 3 and record["epoch"] == 1
    assert set(record) == {"step", "epoch", "top1", "top5", "loss"} and record["top5"] == 100.0
    out = capsys.readouterr().out
    assert f" * Prec@1 {record['top1']:.3f} Prec@5 100.000\n" in out
    losses = scalars(run, "train/total")
    assert sorted(losses) == [1, 2, 3] and all(np.isfinite(list(losses.values())))
    assert load_checkpoint(run)["step"] == 3  # our reader takes the folder and the layout
    config = yaml.safe_load((run / "config.yaml").read_text())  # what the padding table reads
    assert config["classifier"]["padding"] == padding and config["train"]["seed"] == 0


def test_resume_gives_the_losses_of_an_uninterrupted_run(folders, tmp_path):
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert classify.main(flags(folders, whole, epochs=2)) == 0
    assert classify.main(flags(folders, part, epochs=1)) == 0
    run = part / "checkpoint_resnet18_t"
    assert classify.main(flags(folders, part, "--resume", str(run / "checkpoint.pth.tar"),
                               epochs=2)) == 0
    expected = scalars(whole / "checkpoint_resnet18_t", "train/total")
    assert sorted(expected) == list(range(1, 7))
    assert scalars(run, "train/total") == expected
    assert read_metrics(run) == read_metrics(whole / "checkpoint_resnet18_t")


def test_evaluate_scores_a_checkpoint_as_validation_did(folders, tmp_path, capsys):
    assert classify.main(flags(folders, tmp_path)) == 0
    run = tmp_path / "checkpoint_resnet18_t"
    capsys.readouterr()
    assert classify.main(flags(folders, tmp_path, "-e", "--resume",
                               str(run / "checkpoint.pth.tar"))) == 0
    [record] = read_metrics(run)
    assert capsys.readouterr().out == f" * Prec@1 {record['top1']:.3f} Prec@5 100.000\n"


def loose_images(folder: Path) -> Path:
    image_folder(folder, 1, classes=("x",))
    (folder / "x" / "0.png").rename(folder / "loose.png")
    (folder / "x").rmdir()
    return folder


@pytest.mark.parametrize(("case", "expected"), [
    ("missing", "does not exist"),
    ("not split", "no class folders"),
    ("classes differ", "class folders differ (only in train: fox)"),
    ("unknown arch", "unknown architecture 'resnet17'"),
    ("world size", "torchrun --nproc_per_node 4 classify.py"),
    ("start epoch", "--resume CHECKPOINT"),
    ("evaluate without weights", "--resume CHECKPOINT or --pretrained"),
    ("too small for reflect", "layer4.0.conv2 (Conv2d) pads 1 px by reflection, which needs "
                              "maps larger than that, but gets 1x1; raise classifier.crop_size "
                              "(classify.py --crop-size) to at least 33 px"),
])
def test_bad_input_is_one_line_and_exit_code_2(folders, tmp_path, capsys, case, expected):
    train, val = folders
    argv = flags(folders, tmp_path)
    if case == "missing":
        argv[argv.index(str(val))] = str(tmp_path / "nowhere")
    elif case == "not split":
        argv[argv.index(str(val))] = str(loose_images(tmp_path / "flat"))
    elif case == "classes differ":
        argv[argv.index(str(val))] = str(image_folder(tmp_path / "val2", 1, CLASSES[:2]))
    elif case == "unknown arch":
        argv[argv.index("resnet18")] = "resnet17"
    elif case == "world size":
        argv += ["--world-size", "4"]
    elif case == "start epoch":
        argv += ["--start-epoch", "3"]
    elif case == "too small for reflect":
        argv[argv.index("48")] = "28"
        argv += ["--padding", "reflect"]
    else:
        argv += ["-e"]
    assert classify.main(argv) == 2
    err = capsys.readouterr().err.strip()
    if case == "too small for reflect":  # found once the model is built, after its log lines
        assert "Traceback" not in err and err.splitlines()[0].startswith("built resnet18")
        err = err.splitlines()[-1]
    assert "\n" not in err and err.startswith("classify.py: error:") and expected in err, err
    assert not list(tmp_path.glob("checkpoint_*"))


SEED_COMMAND = ("python classify.py -a {arch} --data_train /path/ILSVRC/Data/CLS-LOC/train "
                "--data_val /path/ILSVRC/Data/CLS-LOC/perfolder_val --batch-size 192 "
                "--workers 32 --prefix multigpu_b192 --ckptdirprefix experiment_1/")


@pytest.mark.parametrize("arch", ["pdresnet50", "resnet50", "vgg16_bn", "pdvgg16_bn"])
def test_the_commands_of_the_report_parse(arch):
    args = classify.build_parser().parse_args(SEED_COMMAND.format(arch=arch).split()[2:])
    assert (args.arch, args.batch_size, args.workers, args.epochs, args.lr) == (
        arch, 192, 32, 100, 0.1)
    assert (args.momentum, args.weight_decay, args.print_freq) == (0.9, 1e-4, 10)
    assert run_folder(args) == f"experiment_1/checkpoint_{arch}_multigpu_b192"


def test_bf16_autocast_and_channels_last_reach_the_convolutions(folders, tmp_path):
    """The CPU twin of the GPU's mixed-precision path: every training and validation conv runs
    under bf16 autocast on channels-last input, and the run's weights stay finite fp32."""
    seen = []

    def record(module, inputs):
        # (the one-image probe of the input-size check runs before training, in fp32)
        if isinstance(module, torch.nn.Conv2d) and module.in_channels == 3 \
                and inputs[0].shape[0] > 1:
            seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"),
                         inputs[0].is_contiguous(memory_format=torch.channels_last)))

    hook = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        assert classify.main(flags(folders, tmp_path, "--padding", "partial", "--precision",
                                   "bf16", "--channels-last")) == 0
    finally:
        hook.remove()
    assert len(seen) == 3 + 2  # three training steps, two validation batches
    assert set(seen) == {(True, torch.bfloat16, True)}
    checkpoint = read_nvidia_checkpoint(tmp_path / "checkpoint_pdresnet18_t" / "checkpoint.pth.tar")
    assert all(v.dtype != torch.bfloat16 and torch.isfinite(v).all()
               for v in checkpoint.state_dict.values() if v.is_floating_point())


def test_resume_continues_a_checkpoint_of_nvidias_main_py(folders, tmp_path):
    """main.py saves epoch, arch, state_dict, best_prec1 and optimizer only; classify.py
    continues it at the next epoch with the flags' schedule, as main.py's own --resume does."""
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert classify.main(flags(folders, whole, "--lr", "0.05", epochs=2)) == 0
    assert classify.main(flags(folders, part, "--lr", "0.05", epochs=1)) == 0
    run = part / "checkpoint_resnet18_t"
    ours = torch.load(run / "checkpoint.pth.tar", weights_only=True)
    theirs = {key: ours[key] for key in ("epoch", "arch", "state_dict", "best_prec1",
                                         "optimizer")}
    for leftover in run.iterdir():  # only NVIDIA's file stays in the folder
        if leftover.is_file():
            leftover.unlink()
    torch.save(theirs, run / "checkpoint.pth.tar")
    assert classify.main(flags(folders, part, "--lr", "0.05", "--resume", str(run),
                               epochs=2)) == 0
    expected = scalars(whole / "checkpoint_resnet18_t", "train/total")
    # the data order and crops follow (seed, epoch): the same batches, so the same losses
    assert sorted(expected) == list(range(1, 7))
    assert scalars(run, "train/total") == pytest.approx(expected)
    assert read_metrics(run) == read_metrics(whole / "checkpoint_resnet18_t")[1:]
    resumed = read_nvidia_checkpoint(run / "checkpoint.pth.tar")
    assert resumed.epoch == 2 and resumed.optimizer["param_groups"][0]["lr"] == 0.05


def test_resume_refuses_an_nvidia_checkpoint_of_another_arch(folders, tmp_path, capsys):
    assert classify.main(flags(folders, tmp_path)) == 0
    run = tmp_path / "checkpoint_resnet18_t"
    ours = torch.load(run / "checkpoint.pth.tar", weights_only=True)
    torch.save({key: ours[key] for key in ("epoch", "arch", "state_dict", "best_prec1",
                                           "optimizer")}, tmp_path / "nvidia.pth.tar")
    capsys.readouterr()
    assert classify.main(flags(folders, tmp_path, "--padding", "partial", "--resume",
                               str(tmp_path / "nvidia.pth.tar"), epochs=2)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"classify.py: error: --resume {tmp_path}/nvidia.pth.tar is a resnet18 run, "
                   "the flags ask for pdresnet18; pass -a resnet18"]


def test_resume_takes_the_flags_not_given_from_the_checkpoint(folders, tmp_path, capsys):
    """``classify.py --resume RUN`` continues the run as it was; a flag given changes only
    what it sets (here the epochs: the schedule and the end follow, the crop stays 48)."""
    assert classify.main(flags(folders, tmp_path, "--lr", "0.05")) == 0
    run = tmp_path / "checkpoint_resnet18_t"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert classify.main(["--resume", str(run), "-p", "2", "--epochs", "2"]) == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["train"].pop("max_steps") == 6 and saved["train"].pop("max_steps") == 3
    assert config["train"].pop("log_every") == 2 and saved["train"].pop("log_every") == 1
    assert config == saved and config["classifier"]["crop_size"] == 48
    assert read_nvidia_checkpoint(run / "checkpoint.pth.tar").epoch == 2
    capsys.readouterr()
    assert classify.main(["-e", "--resume", str(run), "-j", "0"]) == 0  # -e takes them too
    assert capsys.readouterr().out.startswith(" * Prec@1 ")


def test_resume_of_nvidias_checkpoint_asks_for_the_data_flags_it_lacks(folders, tmp_path,
                                                                       capsys):
    assert classify.main(flags(folders, tmp_path)) == 0
    run = tmp_path / "checkpoint_resnet18_t"
    ours = torch.load(run / "checkpoint.pth.tar", weights_only=True)
    nvidia = tmp_path / "nvidia.pth.tar"
    torch.save({key: ours[key] for key in ("epoch", "arch", "state_dict", "best_prec1",
                                           "optimizer")}, nvidia)
    capsys.readouterr()
    assert classify.main(["--resume", str(nvidia)]) == 2
    assert capsys.readouterr().err == (
        f"classify.py: error: --resume '{nvidia}' is a checkpoint of NVIDIA's main.py, which "
        "records no data folders: pass --data_train and --data_val\n")
    assert classify.main(["--resume", str(run), "--prefix", "other"]) == 2
    assert capsys.readouterr().err.startswith(
        f"classify.py: error: --resume continues the run in its folder '{run}', not in "
        "'checkpoint_resnet18_other'; drop --prefix and --ckptdirprefix")


def test_a_folder_of_one_class_is_refused_before_the_run(tmp_path):
    one = image_folder(tmp_path / "one", 4, ("cat",))
    done = run("classify.py", "-a", "small_vgg", "--data_train", str(one), "--data_val",
               str(one), "-b", "2", "-j", "0", "--crop-size", "32", "--resize-size", "36",
               "--device", "cpu", "--ckptdirprefix", f"{tmp_path}/")
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f"classify.py: error: train folder '{one}' has one class folder "
                           "('cat'); a classifier needs at least 2 classes (one sub-folder "
                           "each)\n")
    assert not list(tmp_path.glob("checkpoint_*"))


def test_a_failed_validation_names_the_runs_own_checkpoint_file(folders, tmp_path, capsys,
                                                                 monkeypatch):
    """A classify run keeps checkpoint.pth.tar: its messages never name last.pt."""
    import errno

    from inpainting.engine.errors import UserInputError
    from inpainting.engine.trainer import Trainer
    from inpainting.tasks.classification.task import ClassificationTask

    def bad_val(*args, **kwargs):
        raise UserInputError("cannot decode image 'val/cat/0.png'")

    def full_disk(self, name):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ClassificationTask, "validate", staticmethod(bad_val))
    monkeypatch.setattr(Trainer, "save", full_disk)
    assert classify.main(flags(folders, tmp_path)) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "validation at step 3 failed: cannot decode image" in line, line
    assert "checkpoint.pth.tar could not be saved either" in line and "last.pt" not in line
