"""What can go wrong, by meaning, and the exit code each meaning gets on the command line.

Every entry point (``train.py``, ``evaluate.py``, ``python -m inpainting.predict``,
``python -m masks``, ``python -m inpainting.data.demo``) follows one convention, printed in each
``--help`` (``EXIT_CODES_HELP``, added by ``inpainting.cli.OneLineParser``):

- ``UserInputError`` (exit 2): the command line, the config or the data the user named is
  wrong. Raised where the input is checked, with one line naming the input and the fix.
- ``EnvironmentProblem`` (exit 3): a file or folder the user named cannot be read or written, or
  the disk is full. The user can fix it outside the program (permissions, space, a path).
- Anything else is a bug or a failure of the machine (CUDA, NCCL) and keeps its traceback.

This module imports nothing from the project, so every layer (``masks`` included) may raise
these errors.
"""

from __future__ import annotations

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_ENVIRONMENT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "EnvironmentProblem",
    "UserInputError",
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
