"""The one atomic writer (issue 20, rule 2): a temporary file in the destination folder renamed
over the target; on failure nothing is left, an earlier file is intact, and an OSError becomes
one ``EnvironmentProblem`` line naming the target. A source check keeps every writer on it."""

import errno
import os
import re
import subprocess
from pathlib import Path

import pytest
import torch

from inpainting.engine.errors import EnvironmentProblem, UserInputError
from inpainting.engine.files import atomic_write, check_output_file

ROOT = Path(__file__).resolve().parents[1]
EARLIER = b"an earlier, good file"


def _files(folder: Path) -> list[str]:
    """Every entry of ``folder``, hidden ones included (``glob('*')`` skips them)."""
    return sorted(path.name for path in folder.iterdir())


def test_bytes_text_and_writers_land_whole_with_the_usual_permissions(tmp_path):
    atomic_write(tmp_path / "a.bin", b"\x00\x01")
    atomic_write(tmp_path / "b.txt", "héllo\n")
    atomic_write(tmp_path / "c.pt", lambda handle: torch.save({"x": torch.ones(3)}, handle))
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo\n"
    assert torch.load(tmp_path / "c.pt", weights_only=True)["x"].sum() == 3
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    assert _files(tmp_path) == ["a.bin", "b.txt", "c.pt"]


def _full_disk_writer(handle) -> None:
    handle.write(b"half of the new file")
    raise OSError(errno.ENOSPC, "No space left on device")


def _torch_full_disk_writer(handle) -> None:
    # torch.save re-raises its Python writer's OSError as a RuntimeError (the OSError chained)
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError:
        raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos") from None


@pytest.mark.parametrize("writer", [_full_disk_writer, _torch_full_disk_writer])
def test_a_full_disk_keeps_the_earlier_file_and_leaves_nothing(tmp_path, writer):
    target = tmp_path / "model.pt2"
    target.write_bytes(EARLIER)
    with pytest.raises(EnvironmentProblem) as caught:
        atomic_write(target, writer)
    message = str(caught.value)
    assert message == (f"cannot write '{target}': no space left on device; free some space or "
                       "choose another folder")
    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == EARLIER and _files(tmp_path) == ["model.pt2"]


def test_a_bug_in_the_writer_keeps_its_type_and_leaves_nothing(tmp_path):
    def buggy(handle):
        handle.write(b"x")
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        atomic_write(tmp_path / "x.json", buggy)
    assert _files(tmp_path) == []


def test_a_missing_or_unwritable_folder_and_a_folder_at_the_target_are_one_line(
        tmp_path, monkeypatch):
    with pytest.raises(EnvironmentProblem, match=r"cannot write '.*nowhere/x.csv': no such"):
        atomic_write(tmp_path / "nowhere" / "x.csv", "a,b\n")
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "folder.png" / "keep").write_text("kept")
    with pytest.raises(EnvironmentProblem, match="a folder stands where the file should be"):
        atomic_write(tmp_path / "folder.png", b"png")
    assert (tmp_path / "folder.png" / "keep").read_text() == "kept"
    real_open = os.open

    def refused(path, *args, **kwargs):  # root ignores permissions: refuse as the OS would
        if Path(path).parent == tmp_path:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refused)
    with pytest.raises(EnvironmentProblem) as caught:
        atomic_write(tmp_path / "y.txt", "y")
    assert str(caught.value) == (f"cannot write '{tmp_path / 'y.txt'}': permission denied; "
                                 "check its permissions or choose another path")


def test_an_output_file_option_naming_a_folder_is_refused(tmp_path):
    assert check_output_file(tmp_path / "model.onnx", "--out") == tmp_path / "model.onnx"
    with pytest.raises(UserInputError, match=r"--out '.*' is a folder; name a file"):
        check_output_file(tmp_path, "--out")


# Writing a file anywhere else would skip the temporary file and the error mapping. A writer
# that serialises into atomic_write's handle (``.save(handle, ...)``) is fine.
WRITERS = re.compile(r"\.write_text\(|\.write_bytes\(|\bopen\([^)]*[\"'][wax]b?\+?[\"']|"
                     r"imwrite\(|savefig\(|\.to_csv\(|torch\.save\((?!.*\bhandle\))|"
                     r"(\bImage\.fromarray\(.*\)|\b\w*image|\bpicture)\.save\((?!handle)")
# file -> why it may write in place: it writes nothing that replaces an earlier output
ALLOWED = {
    "inpainting/engine/files.py": "the atomic writer itself",
    "inpainting/engine/checkpoint.py": "tmp + os.replace of its own, mapping torch's errors",
    "inpainting/data/demo.py": "crops go into a temporary folder that is renamed whole",
    "inpainting/tasks/classification/task.py": "appends one metrics line per epoch",
    "masks/dataset.py": "a write probe of the output folder",
}


def test_every_writer_goes_through_the_atomic_writer():
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    sources = [name for name in files if name.startswith(("inpainting/", "masks/"))]
    writing = {name for name in sources
               if WRITERS.search((ROOT / name).read_text(encoding="utf-8"))}
    assert sorted(writing - set(ALLOWED)) == []
