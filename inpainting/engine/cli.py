"""The command-line toolkit every entry point uses: parser, argument types, error reporting.

``OneLineParser`` prints argument errors as one line (exit 2); ``run_main`` turns the errors
of ``inpainting.engine.errors`` into one line and their exit code, and leaves bugs their traceback.
Imports nothing from the project but ``inpainting.engine.errors``, so ``masks`` may use it too.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from inpainting.engine.errors import (
    EXIT_CODES_HELP,
    EXIT_ENVIRONMENT,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    UserInputError,
    environment_message,
    is_environment_error,
    one_line,
)

__all__ = [
    "OneLineParser",
    "choice",
    "exit_on_interrupt",
    "given_options",
    "parse_polarity",
    "report",
    "run_main",
    "whole_number",
]

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


def given_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """The ``dest`` of every option ``argv`` sets: what the user typed, not a default.

    For a command whose options, when left out, take their value from elsewhere (a run being
    resumed) rather than from their defaults. Parses ``argv`` once more with a copy of
    ``parser`` whose defaults are all suppressed.
    """
    probe = copy.deepcopy(parser)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
    return set(vars(probe.parse_args(argv)))


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
        ``body``'s exit code, or the error's (see ``inpainting.engine.errors``).
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


def whole_number(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an int in ``[minimum, maximum]``, else a one-line error naming
    the value and the bound (``argument --size: must be <= 4096, got 9000``).

    Every size or count a user controls gets a ``maximum``, so that a typo cannot start work
    that never ends or fills the memory; name it in the option's help too.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum}, got {value}")
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
