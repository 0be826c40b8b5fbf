"""Text lists of image files: Places2-style lists to read, and the run's ``splits/*.txt``.

A list holds one image path per line, relative to a root folder. ``write_file_list`` writes
lists that ``read_file_list`` reads back exactly, whatever the file names hold; see both
docstrings for the format.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from inpainting.data.io import IMAGE_EXTENSIONS
from inpainting.engine.errors import UserInputError
from inpainting.engine.files import atomic_write

__all__ = ["read_file_list", "write_file_list"]

# A plain list line's path ends at the first image extension followed by whitespace or the line's
# end, so paths may hold spaces and labels or other columns may follow ("/a/abbey/0001.jpg 0").
_EXTENSION_ALTERNATIVES = "|".join(ext.lstrip(".") for ext in IMAGE_EXTENSIONS)
_LISTED_PATH = re.compile(rf"(.+?\.(?:{_EXTENSION_ALTERNATIVES}))(?:\s.*)?", re.IGNORECASE)
_JSON = json.JSONDecoder()


def _listed_path(line: str) -> str | None:
    """The path a file-list line names, or None for a blank or comment line (see
    ``read_file_list`` for the format)."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    if text.startswith('"'):
        try:
            quoted, end = _JSON.raw_decode(text)
        except ValueError:
            quoted, end = None, 0
        if isinstance(quoted, str) and quoted and (end == len(text) or text[end].isspace()):
            return quoted
    listed = _LISTED_PATH.fullmatch(text)
    path = listed.group(1) if listed else text.split()[0]
    return path.lstrip("/")


def read_file_list(list_file: str | os.PathLike, root: str | os.PathLike) -> list[Path]:
    """Read a Places2-style file list: one image path per line, relative to ``root``.

    Blank lines and lines starting with ``#`` are ignored. A plain line's path runs to the first
    image extension followed by whitespace or the line's end (spaces inside are kept); what
    follows, e.g. the class label of ``places365_train_standard.txt``, is ignored. A line
    without an image extension gives its first whitespace-separated token. A leading ``/`` is
    stripped, as Places2 lists write ``/a/abbey/0001.jpg``.
    A line that starts with a JSON string (``"a.png b.png"``, ``"new\\nline.png" 3``) names
    exactly that path, whatever characters it holds; ``write_file_list`` writes this form for
    names a plain line cannot carry (a newline, a leading ``#``, a second extension, ...). A
    line starting with ``"`` that is not a JSON string is read as a plain line.
    Only the first listed file is checked for existence (to catch a wrong ``root`` at start-up
    without touching millions of files); later missing files are skipped as undecodable.

    Args:
        list_file: the text file (UTF-8).
        root: folder the listed paths are relative to.

    Returns:
        The listed paths joined to ``root``, in file order.

    Raises:
        UserInputError: the list file or ``root`` is missing, the list is empty, or its first
            entry does not exist under ``root``.
    """
    list_file, root = Path(list_file), Path(root)
    if not list_file.is_file():
        raise UserInputError(f"file list '{list_file}' does not exist; check the path in the "
                             "config")
    if not root.is_dir():
        raise UserInputError(
            f"image root '{root}' for file list '{list_file}' does not exist; set it to the "
            "folder the listed paths are relative to"
        )
    paths = []
    try:
        with open(list_file, encoding="utf-8") as handle:  # streamed: lists run to millions
            for line in handle:
                path = _listed_path(line)
                if path is not None:
                    paths.append(root / path)
    except UnicodeDecodeError:
        raise UserInputError(f"file list '{list_file}' is not UTF-8 text; give a text file "
                             "with one image path per line") from None
    if not paths:
        raise UserInputError(f"file list '{list_file}' lists no images; add one path per line")
    if not paths[0].exists():
        raise UserInputError(
            f"'{paths[0]}', the first entry of '{list_file}', does not exist; is '{root}' the "
            "folder the listed paths are relative to?"
        )
    return paths


def write_file_list(paths: Sequence[Path], list_file: Path) -> None:
    """Write ``paths`` one per line, relative to the list's folder (``read_file_list``'s root).

    ``read_file_list(list_file, list_file.parent)`` gives back exactly these files, for any
    file name: a name that reads back as it is (``a/b c.png``, ``été.png``) is written plain,
    any other (a newline or tab, a leading ``#`` or ``"``, a second extension as in
    ``a.png b.png``, bytes that are not UTF-8) as an ASCII JSON string line
    (``"a.png b.png"``). A symbolic link is written as the link, not its target.

    Args:
        paths: image files.
        list_file: the ``.txt`` to write (its folder is created), atomically.

    Raises:
        EnvironmentProblem: the file cannot be written; an earlier file there is intact.
    """
    list_file = Path(list_file)
    list_file.parent.mkdir(parents=True, exist_ok=True)
    base = list_file.parent.resolve()
    # Resolve the folder only: resolving a file would replace a link by its target, and
    # raise on a link that loops.
    lines = [_list_line(os.path.relpath(Path(p).parent.resolve() / Path(p).name, base))
             for p in paths]
    atomic_write(list_file, "".join(f"{line}\n" for line in lines))


def _list_line(path: str) -> str:
    """``path`` as a file-list line that ``_listed_path`` reads back exactly."""
    try:
        path.encode("utf-8")
        plain = "\n" not in path and "\r" not in path and _listed_path(path) == path
    except UnicodeEncodeError:  # undecodable bytes of a file name (surrogate escapes)
        plain = False
    return path if plain else json.dumps(path)
