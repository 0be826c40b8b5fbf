"""What can go wrong, by meaning, and the exit code each meaning gets on the command line.

Every entry point (``train.py``, ``evaluate.py``, ``python -m inpainting.predict``,
``python -m masks``, ``python -m inpainting.data.demo``) follows one convention, printed in each
``--help`` (``EXIT_CODES_HELP``, added by ``inpainting.engine.cli.OneLineParser``):

- ``UserInputError`` (exit 2): the command line, the config or the data the user named is
  wrong. Raised where the input is checked, with one line naming the input and the fix.
- ``EnvironmentProblem`` (exit 3): a file or folder the user named cannot be read or written, or
  the disk is full. The user can fix it outside the program (permissions, space, a path).
- Anything else is a bug or a failure of the machine (CUDA, NCCL) and keeps its traceback.

``one_line``, ``is_environment_error`` and ``environment_message`` turn an error into the line a
command prints. This module imports nothing from the project, so every layer (``masks``
included) may raise these errors.
"""

from __future__ import annotations

import errno

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_ENVIRONMENT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "EnvironmentProblem",
    "UserInputError",
    "environment_message",
    "is_environment_error",
    "one_line",
]

EXIT_OK = 0
EXIT_FAILED = 1  # the work ran but failed (a NaN loss, some inputs unusable), or a bug
EXIT_USAGE = 2  # bad command line, config or input data
EXIT_ENVIRONMENT = 3  # a named file or folder cannot be read or written, or the disk is full
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), where the command does not save and exit 0

EXIT_CODES_HELP = """exit codes:
  0    done
  1    the work failed (see the message), or a bug or CUDA failure (with its traceback)
  2    bad command line, config or input data (one line on stderr)
  3    a file or folder cannot be read or written, or the disk is full (one line)
  130  interrupted (Ctrl-C)"""


class UserInputError(ValueError):
    """The user's input (arguments, config, data files) is wrong; the message is one line.

    A ``ValueError`` so that library callers catching ``ValueError`` keep working.
    """


class EnvironmentProblem(OSError):
    """A file or folder cannot be read or written, or the disk is full; one line.

    Raised with the path and what to do (``EnvironmentProblem("cannot write 'x': disk full;
    free space or choose another folder")``).
    """


# errno values of an OSError that the user fixes outside the program: permissions, space,
# a path that is not what it should be (EEXIST: the project only sees it from ``mkdir`` on a
# path where a file stands).
_ENVIRONMENT_ERRNOS = {
    errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
    errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.EFBIG, errno.EEXIST,
}


def one_line(error: BaseException) -> str:
    """The error's message on one line (its type name when it has none).

    An error that a DataLoader worker raised comes back re-created from a message holding the
    worker's traceback; its last line, less the type name, is the original message.
    """
    text = str(error)
    if "\nOriginal Traceback" in text:
        last = text.strip().splitlines()[-1]
        prefix = f"{type(error).__module__}.{type(error).__qualname__}: "
        text = last[len(prefix):] if last.startswith(prefix) else last
    return " ".join(text.split()) or type(error).__name__


def is_environment_error(error: BaseException) -> bool:
    """True for ``EnvironmentProblem`` and OSErrors of permissions, space or paths."""
    if isinstance(error, EnvironmentProblem):
        return True
    return isinstance(error, OSError) and error.errno in _ENVIRONMENT_ERRNOS


def environment_message(error: OSError) -> str:
    """One line for an OSError: what failed on which path, and the usual fix."""
    if isinstance(error, EnvironmentProblem) or not error.strerror:
        return one_line(error)
    path = f" '{error.filename}'" if error.filename else ""
    fixes = {
        errno.ENOSPC: "free some space or choose another folder",
        errno.EDQUOT: "free some space or choose another folder",
        errno.EACCES: "check its permissions or choose another path",
        errno.EPERM: "check its permissions or choose another path",
        errno.EROFS: "choose a path on a writable file system",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EEXIST: "a file stands where a folder is needed; move it or choose another path",
        errno.EFBIG: "a file size limit (ulimit -f, the file system's) refuses it; choose "
                     "another folder",
        errno.EISDIR: "a folder stands where the file should be; move it or choose another "
                      "path",
    }
    fix = fixes.get(error.errno, "check the path")
    return f"{error.strerror.lower()}{':' if path else ''}{path}; {fix}"
