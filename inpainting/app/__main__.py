"""Serve the inpainting page: ``python -m inpainting.app [--checkpoint RUN/best.pt]``.

Without ``--checkpoint`` the page runs the classical OpenCV methods only and says how to get a
model. A checkpoint that is not an inpainting checkpoint stops the command with one line
(exit 2) before anything is served. Ctrl-C and SIGTERM (``kill``, a service manager,
``docker stop``) both stop the server, remove its temporary folder of results and exit 0.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from inpainting.engine.cli import OneLineParser, choice, run_main, whole_number
from inpainting.engine.errors import EnvironmentProblem
from inpainting.export import load_inpainting_model
from inpainting.predict.inference import Inpainter

PROG = "python -m inpainting.app"
logger = logging.getLogger(__name__)


def build_parser() -> OneLineParser:
    """The command line of ``python -m inpainting.app``."""
    parser = OneLineParser(
        prog=PROG,
        description="Serve a local web page: upload or pick a photo, paint holes with a brush, "
                    "inpaint it with the model beside OpenCV Telea and Navier-Stokes, download "
                    "the PNG. Needs the app extra: pip install '.[app]'.",
    )
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint written by train.py (RUN/best.pt) or a run folder; "
                             "without it only the classical methods run")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=whole_number(1), default=7860,
                        help="port to listen on (default 7860)")
    parser.add_argument("--device", type=choice({"auto": "auto", "cpu": "cpu", "cuda": "cuda"}),
                        default="auto", help="where the model runs (default auto: CUDA if any)")
    return parser


def load_inpainter(checkpoint: str, device: str) -> Inpainter:
    """The checkpoint's model wrapped for any-size inpainting.

    Raises:
        UserInputError: not an inpainting checkpoint, or the device is not available.
    """
    model, _ = load_inpainting_model(checkpoint)
    return Inpainter(model, device=device)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM raises ``KeyboardInterrupt`` in the main thread, as Ctrl-C does.

    Gradio then closes the server, and every ``with`` block on the way out runs its clean-up
    (the temporary folder of results), where SIGTERM's default would end the process at once and
    leave them. Outside the main thread (where Python allows no handlers) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; serves until interrupted. Returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up requests

    def body() -> int:
        inpainter = load_inpainter(args.checkpoint, args.device) if args.checkpoint else None
        try:
            from inpainting.app.page import serve
        except ImportError as error:
            raise EnvironmentProblem(f"the app needs Gradio ({error}): pip install '.[app]'") \
                from None
        if inpainter is None:
            logger.info("no --checkpoint: the page runs the classical OpenCV methods only")
        else:
            logger.info("model: %s on %s", args.checkpoint, inpainter.device)
        with sigterm_as_interrupt(), \
                tempfile.TemporaryDirectory(prefix="inpainting-app-") as workdir:
            try:
                serve(inpainter, args.checkpoint or "", args.host, args.port, Path(workdir))
            except OSError as error:
                raise EnvironmentProblem(f"cannot serve on {args.host}:{args.port} ({error}); "
                                         "choose another --port") from None
        return 0

    return run_main(PROG, body, interrupted=lambda: 0)


if __name__ == "__main__":
    sys.exit(main())
