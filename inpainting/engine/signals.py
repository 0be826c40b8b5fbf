"""Graceful stop on SIGINT / SIGTERM, and the test hook that pauses the run at chosen points.

Test hook: ``PCONV_TEST_PAUSE="point:seconds[,point:seconds...]"`` makes ``pause_point(point)``
log ``test hook: pausing at <point>`` and sleep that long, so that a test can send a signal or
SIGKILL while the run is inside a step that otherwise lasts milliseconds. The points are
``checkpoint_write`` (the temporary file is written, not yet renamed), ``validation_batch``
(after each validation batch) and ``grid_sample`` (after each sample of an interval grid).
Unset (always, outside tests), ``pause_point`` does nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType, TracebackType

__all__ = ["PAUSE_VARIABLE", "StopSignals", "pause_point"]

logger = logging.getLogger(__name__)

PAUSE_VARIABLE = "PCONV_TEST_PAUSE"


def pause_point(point: str) -> None:
    """Sleep at ``point`` as ``PCONV_TEST_PAUSE`` asks (a test hook; see the module docstring).

    A signal handler runs during the sleep, so a stop request is seen when the sleep ends.
    """
    spec = os.environ.get(PAUSE_VARIABLE)
    if not spec:
        return
    for item in spec.split(","):
        name, _, seconds = item.partition(":")
        if name.strip() == point:
            logger.warning("test hook: pausing at %s", point)
            time.sleep(float(seconds or 1))


class StopSignals:
    """Context manager that records SIGINT / SIGTERM instead of dying on them.

    Inside the ``with`` block a first signal only sets ``received`` (its name, e.g.
    ``"SIGTERM"``); the loop checks it after each step, and validation and sample grids check it
    between batches. A second Ctrl-C raises ``KeyboardInterrupt`` at once, for a user who does
    not want to wait. The previous handlers come back on exit. Outside the main thread (where
    Python allows no handlers) it does nothing.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def requested(self) -> bool:
        """True once a signal was received (a callable for ``engine.validation``)."""
        return self.received is not None

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle)
                              for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
