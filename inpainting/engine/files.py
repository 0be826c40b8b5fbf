"""Writing files: the one atomic writer every output of the project goes through.

:func:`atomic_write` writes a file's content to a hidden temporary file in the destination
folder (``.NAME.PID.XXXXXXXX.tmp``) and renames it over the target with ``os.replace``, so a
reader, a kill or a full disk never sees a partial file: until the new file is complete, the
earlier one stays intact. On failure the temporary file is removed, and an ``OSError`` (also
one raised inside a serialiser, such as ``torch.save``'s writer, which re-raises it as a
``RuntimeError``) becomes an :class:`~inpainting.engine.errors.EnvironmentProblem` that names
the target and the fix: one line and exit code 3 on the command line.

:func:`check_output_file` refuses, before any work, an output file option that names a folder.

Library code that serialises through a C++ writer (``torch.export.save``, ``torch.jit.save``,
``torch.save`` to a path) serialises into memory (``io.BytesIO``) or into the handle that
``atomic_write`` passes it, never to a path: those writers abort the process on a full disk.

This module imports nothing from the project but ``inpainting.engine.errors``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from inpainting.engine.errors import EnvironmentProblem, UserInputError, environment_message

__all__ = ["TMP_PREFIX", "TMP_SUFFIX", "atomic_write", "check_output_file"]

TMP_PREFIX = "."  # hidden: folder listings (images, masks) never see a temporary file
TMP_SUFFIX = ".tmp"
_MAX_NAME = 200  # of the target's name kept in the temporary name (file names stop at 255)

Content = bytes | bytearray | memoryview | str | Callable[[BinaryIO], object]


def atomic_write(path: str | os.PathLike, content: Content) -> Path:
    """Write ``content`` to ``path`` atomically (see the module docstring).

    Args:
        path: the file to write; its folder must exist.
        content: the bytes, or text (written as UTF-8), or a function that writes the file
            into the binary handle it is given (``lambda handle: image.save(handle, "PNG")``).

    Returns:
        ``path``.

    Raises:
        EnvironmentProblem: the file cannot be written (a full disk, permissions, a read-only
            file system, a missing folder, a folder at ``path``); one line naming ``path``
            and the fix. Nothing is left behind, and an earlier file at ``path`` is intact.
        Exception: whatever ``content`` raises that is no ``OSError`` (a bug keeps its
            traceback), after the temporary file is removed.
    """
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name[:_MAX_NAME]}.{os.getpid()}."
                         f"{secrets.token_hex(4)}{TMP_SUFFIX}")
    try:
        # os.open, not mkstemp: the file gets the usual permissions (0o666 less the umask)
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as error:
        raise _write_problem(path, error) from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            if callable(content):
                content(handle)
            else:
                handle.write(content.encode("utf-8") if isinstance(content, str) else content)
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        cause = _os_error_in(error)
        if cause is None or isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        raise _write_problem(path, cause) from error
    return path


def check_output_file(path: str | os.PathLike, option: str) -> Path:
    """Refuse an output file option that names an existing folder, before any work is done.

    Args:
        path: the file the command will write.
        option: how the message names it (``"--out"``).

    Returns:
        ``path`` as a ``Path``.

    Raises:
        UserInputError: ``path`` is a folder (exit 2, one line).
    """
    path = Path(path)
    if path.is_dir():
        raise UserInputError(f"{option} '{path}' is a folder; name a file to write (a "
                             "folder there is not replaced)")
    return path


def _os_error_in(error: BaseException) -> OSError | None:
    """``error`` itself when it is an OSError, else the first one it was raised from."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _write_problem(path: Path, error: OSError) -> EnvironmentProblem:
    """``cannot write 'PATH': REASON; FIX``, with the errno kept for callers."""
    if isinstance(error, EnvironmentProblem):
        return error
    # the reason and fix for the error's errno, without the temporary file's name
    reason = environment_message(OSError(error.errno, error.strerror)) if error.strerror \
        else " ".join(str(error).split()) or type(error).__name__
    problem = EnvironmentProblem(f"cannot write '{path}': {reason}")
    problem.errno = error.errno
    return problem
