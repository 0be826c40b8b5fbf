"""The command-line toolkit every entry point uses: parser, argument types, error reporting.

``OneLineParser`` prints argument errors as one line (exit 2); ``run_main`` turns the errors
of ``inpainting.errors`` into one line and their exit code, and leaves bugs their traceback.
Imports nothing from the project but ``inpainting.errors``, so ``masks`` may use it too.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from inpainting.errors import (
    EXIT_CODES_HELP,
    EXIT_ENVIRONMENT,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    EnvironmentProblem,
    UserInputError,
)

__all__ = [
    "OneLineParser",
    "choice",
    "environment_message",
    "exit_on_interrupt",
    "is_environment_error",
    "one_line",
    "parse_polarity",
    "report",
    "run_main",
    "whole_number",
]

# errno values of an OSError that the user fixes outside the program: permissions, space,
# a path that is not what it should be (EEXIST: the project only sees it from ``mkdir`` on a
# path where a file stands).
_ENVIRONMENT_ERRNOS = {
    errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
    errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.EFBIG, errno.EEXIST,
}


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (no usage block), exit 2, and
    whose ``--help`` ends with the exit-code convention."""

    def __init__(self, *args, **kwargs) -> None:
        epilog = kwargs.pop("epilog", None)
        kwargs["epilog"] = f"{epilog}\n\n{EXIT_CODES_HELP}" if epilog else EXIT_CODES_HELP
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


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
    }
    fix = fixes.get(error.errno, "check the path")
    return f"{error.strerror.lower()}{':' if path else ''}{path}; {fix}"


def report(prog: str, error: BaseException) -> int:
    """Print ``prog: error: ...`` as one line on stderr and return the error's exit code.

    ``UserInputError`` and ``FileNotFoundError`` (a path the user named does not exist) -> 2,
    an environment error (``is_environment_error``) -> 3.

    Raises:
        The error itself when it is neither (a bug keeps its traceback).
    """
    if isinstance(error, UserInputError):
        code, message = EXIT_USAGE, one_line(error)
    elif isinstance(error, FileNotFoundError) and error.filename:
        code, message = EXIT_USAGE, f"no such file or folder: '{error.filename}'"
    elif is_environment_error(error):
        code, message = EXIT_ENVIRONMENT, environment_message(error)  # type: ignore[arg-type]
    else:
        raise error
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


def run_main(prog: str, body: Callable[[], int],
             interrupted: Callable[[], int] | None = None) -> int:
    """Run ``body`` and map the convention's errors to one line and an exit code.

    Args:
        prog: the command's name, the prefix of every error line.
        body: the command's work; returns its exit code.
        interrupted: called on Ctrl-C for the exit code (default: a line and 130).

    Returns:
        ``body``'s exit code, or the error's (see ``inpainting.errors``).
    """
    try:
        return body()
    except KeyboardInterrupt:
        if interrupted is not None:
            return interrupted()
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UserInputError, OSError) as error:
        return report(prog, error)


@contextlib.contextmanager
def exit_on_interrupt(prog: str, active: bool = True) -> Iterator[None]:
    """Ctrl-C inside the block prints ``prog: interrupted`` and exits 130 at once.

    For an entry point's import block: torch takes seconds to load, before ``run_main`` can
    catch anything, and a ``KeyboardInterrupt`` raised inside torch's C++ start-up aborts the
    process (``terminate called ...``) rather than reaching an ``except``. So the block runs
    under a SIGINT handler that exits directly; nothing has been written yet.

    Args:
        prog: the command's name, the prefix of the line.
        active: false leaves Ctrl-C alone (a module imported as a library, not run).
    """
    if not active or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        os._exit(EXIT_INTERRUPTED)

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an int >= ``minimum``, else a one-line error naming the value."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def choice(valid: dict[str, str]) -> Callable[[str], str]:
    """An argparse ``type`` mapping spellings (``-`` or ``_``, any case) to canonical values.

    Args:
        valid: spelling shown to the user -> value returned.
    """
    lookup = {key.lower().replace("_", "-"): value for key, value in valid.items()}

    def parse(text: str) -> str:
        key = text.strip().lower().replace("_", "-")
        if key not in lookup:
            raise argparse.ArgumentTypeError(f"unknown value {text!r} (valid: {', '.join(valid)})")
        return lookup[key]

    return parse


parse_polarity = choice({"known-white": "known_white", "hole-white": "hole_white"})
