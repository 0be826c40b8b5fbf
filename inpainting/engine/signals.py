"""Graceful stop on SIGINT / SIGTERM: the trainer finishes its step, saves and returns."""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

__all__ = ["StopSignals"]


class StopSignals:
    """Context manager that records SIGINT / SIGTERM instead of dying on them.

    Inside the ``with`` block a first signal only sets ``received`` (its name, e.g.
    ``"SIGTERM"``); the loop checks it after each step. A second Ctrl-C raises
    ``KeyboardInterrupt`` at once, for a user who does not want to wait. The previous handlers
    come back on exit. Outside the main thread (where Python allows no handlers) it does nothing.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

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
