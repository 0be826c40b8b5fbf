"""The command-line toolkit: one parser, one exit-code convention, errors by meaning."""

import ast
import errno
import importlib
import runpy
from pathlib import Path

import pytest
import torch

from inpainting.data import ImageDecodeError
from inpainting.data import demo as demo_module
from inpainting.engine.cli import (
    OneLineParser,
    choice,
    parse_polarity,
    report,
    run_main,
    whole_number,
)
from inpainting.engine.config import ConfigError
from inpainting.engine.errors import EXIT_CODES_HELP, EnvironmentProblem, UserInputError
from inpainting.predict.cli import main as predict_main
from masks.__main__ import main as masks_main

ROOT = Path(__file__).resolve().parents[1]


def _script_main(name: str):
    return runpy.run_path(str(ROOT / name))["main"]


ENTRY_POINTS = {
    "train.py": lambda: _script_main("train.py"),
    "classify.py": lambda: _script_main("classify.py"),
    "evaluate.py": lambda: _script_main("evaluate.py"),
    "python -m inpainting.predict": lambda: predict_main,
    "python -m inpainting.data.demo": lambda: demo_module.main,
    "python -m masks": lambda: masks_main,
    "python -m inpainting.export": lambda: importlib.import_module("inpainting.export").main,
    "python -m inpainting.app": lambda: importlib.import_module("inpainting.app.__main__").main,
    "python -m inpainting.tasks.classification.padding_report":
        lambda: importlib.import_module(
            "inpainting.tasks.classification.padding_report.__main__").main,
}
# (entry point, leading arguments): every command and subcommand a user can run.
COMMANDS = [(name, []) for name in ENTRY_POINTS] + [
    ("python -m masks", [sub]) for sub in ("generate", "stats", "video")
]


@pytest.mark.parametrize("name, leading", COMMANDS)
def test_every_help_states_the_exit_codes(name, leading, capsys):
    with pytest.raises(SystemExit) as exit_info:
        ENTRY_POINTS[name]()([*leading, "--help"])
    printed = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert EXIT_CODES_HELP in printed, printed


@pytest.mark.parametrize("name, leading", COMMANDS)
def test_every_bad_argument_is_one_line_with_exit_code_2(name, leading, capsys):
    with pytest.raises(SystemExit) as exit_info:
        ENTRY_POINTS[name]()([*leading, "--no-such-option"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1, lines
    prog = " ".join([name, *leading])
    assert lines[0].startswith(f"{prog}: error: ") and lines[0].endswith("(see --help)"), lines


def test_script_docstrings_state_the_same_codes():
    for name in ("train.py", "evaluate.py", "inpainting/predict/cli.py", "masks/__main__.py",
                 "inpainting/data/demo.py"):
        docstring = ast.get_docstring(ast.parse((ROOT / name).read_text(encoding="utf-8")))
        assert "Exit codes" in docstring, name
        for code in ("0", "2", "3", "130"):
            assert f"{code} " in docstring, (name, code)


def test_parser_errors_are_one_line_and_subcommands_share_the_parser(capsys):
    parser = OneLineParser(prog="tool", epilog="a note")
    commands = parser.add_subparsers(dest="command", parser_class=OneLineParser)
    sub = commands.add_parser("run")
    sub.add_argument("--count", type=whole_number(1))
    assert isinstance(sub, OneLineParser)
    assert parser.epilog == f"a note\n\n{EXIT_CODES_HELP}" and sub.epilog == EXIT_CODES_HELP
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["run", "--count", "0"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err == "tool run: error: argument --count: must be >= 1, got 0 (see --help)\n"


@pytest.mark.parametrize("error, code, expected", [
    (UserInputError("bad --size\n  (use 32)"), 2, "bad --size (use 32)"),
    (ConfigError("unknown key 'optim.lrr'"), 2, "unknown key 'optim.lrr'"),
    (ImageDecodeError("x.png", "truncated"), 2, "cannot decode image 'x.png': truncated"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "x.png"), 2,
     "no such file or folder: 'x.png'"),
    (EnvironmentProblem("cannot write to 'out': disk full; free space"), 3,
     "cannot write to 'out': disk full; free space"),
    (PermissionError(errno.EACCES, "Permission denied", "out"), 3,
     "permission denied: 'out'; check its permissions or choose another path"),
    (OSError(errno.ENOSPC, "No space left on device", "out/last.pt"), 3,
     "no space left on device: 'out/last.pt'; free some space or choose another folder"),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "file/run"), 3,
     "not a directory: 'file/run'; a part of the path is a file, not a folder"),
    (FileExistsError(errno.EEXIST, "File exists", "run"), 3,
     "file exists: 'run'; a file stands where a folder is needed; move it or choose another path"),
])
def test_errors_by_meaning_get_one_line_and_their_code(error, code, expected, capsys):
    def body() -> int:
        raise error

    assert run_main("tool", body) == code
    assert capsys.readouterr().err == f"tool: error: {expected}\n"


@pytest.mark.parametrize("error", [
    RuntimeError("CUDA error: an illegal memory access was encountered"),
    RuntimeError("NCCL error: unhandled system error"),
    ValueError("a bug: shapes (2, 3) and (4,) do not match"),
    KeyError("model"),
    OSError(errno.EIO, "Input/output error", "disk"),
    FileNotFoundError("a path the program built itself"),
])
def test_bugs_and_machine_failures_keep_their_traceback(error):
    def body() -> int:
        raise error

    with pytest.raises(type(error)):
        run_main("tool", body)
    with pytest.raises(type(error)):
        report("tool", error)


def test_ctrl_c_is_130_or_what_the_command_says(capsys):
    def body() -> int:
        raise KeyboardInterrupt

    assert run_main("tool", body) == 130
    assert capsys.readouterr().err == "tool: interrupted\n"
    assert run_main("tool", body, interrupted=lambda: 0) == 0
    assert run_main("tool", lambda: 1) == 1


def test_argument_types():
    assert whole_number(0)("0") == 0 and whole_number(1)("12") == 12
    for text, message in [("0", "must be >= 1, got 0"), ("1.5", "expected a whole number")]:
        with pytest.raises(Exception, match=message):
            whole_number(1)(text)
    assert parse_polarity("hole-white") == parse_polarity("HOLE_WHITE") == "hole_white"
    assert parse_polarity("known-white") == "known_white"
    with pytest.raises(Exception, match=r"unknown value 'white' \(valid: known-white, hole-white"):
        parse_polarity("white")
    fit = choice({"center-crop": "center_crop", "none": "none"})
    assert fit("center_crop") == fit("Center-Crop") == "center_crop"


def test_user_input_errors_stay_value_errors_for_library_callers():
    assert issubclass(UserInputError, ValueError) and issubclass(ConfigError, UserInputError)
    assert issubclass(ImageDecodeError, UserInputError)
    assert issubclass(EnvironmentProblem, OSError)


def test_masks_imports_only_the_leaf_modules_of_inpainting():
    for path in (ROOT / "masks").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                     for alias in node.names}
        from_inpainting = {name for name in imported if name and name.startswith("inpainting")}
        # the leaves: each imports nothing of the project but engine.errors
        leaves = {"inpainting.engine.errors", "inpainting.engine.cli", "inpainting.engine.files",
                  "inpainting.engine.images"}
        assert from_inpainting <= leaves, (path.name, from_inpainting)


class _BadImages(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int):
        raise UserInputError("8 image files in a row from 'a.jpg' on could not be decoded")


def test_a_user_error_from_a_dataloader_worker_is_still_one_line(capsys):
    """The worker's traceback travels in the message; the line shows the original message."""

    def body() -> int:
        next(iter(torch.utils.data.DataLoader(_BadImages(), num_workers=1)))
        return 0

    assert run_main("train.py", body) == 2
    assert capsys.readouterr().err == (
        "train.py: error: 8 image files in a row from 'a.jpg' on could not be decoded\n")
