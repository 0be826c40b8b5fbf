"""One run per run folder: an OS lock (``flock``) on ``RUN/run.lock`` while the run lives.

A second ``train.py`` into a folder in use (a new run or ``--resume``) is refused with
``EnvironmentProblem`` (exit 3) naming the folder and the holder's pid, which the lock file
holds. The kernel drops a ``flock`` when the process holding it ends, however it ends (kill -9
included), so a crashed run never leaves its folder locked; its stale ``run.lock`` is reused by
the next run. A run that ends normally removes the file.

Forked DataLoader workers would share the lock and keep it after a killed run until they
notice their parent is gone, so a fork closes the child's copy (``os.register_at_fork``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
from pathlib import Path

from inpainting.engine.errors import EnvironmentProblem

__all__ = ["LOCK_NAME", "RunLock", "acquire_run_lock"]

logger = logging.getLogger(__name__)

LOCK_NAME = "run.lock"

_held: set[int] = set()  # descriptors of the locks this process holds


def _close_in_child() -> None:
    for descriptor in _held:
        with contextlib.suppress(OSError):
            os.close(descriptor)
    _held.clear()


os.register_at_fork(after_in_child=_close_in_child)


class RunLock:
    """The held lock of a run folder; ``release()`` (idempotent) unlocks and removes the file."""

    def __init__(self, path: Path, descriptor: int | None) -> None:
        self.path = path
        self._descriptor = descriptor

    def release(self) -> None:
        """Remove the lock file, then unlock (in this order, see ``acquire_run_lock``)."""
        if self._descriptor is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        _held.discard(self._descriptor)
        os.close(self._descriptor)  # drops the flock
        self._descriptor = None


def acquire_run_lock(run_dir: str | os.PathLike) -> RunLock:
    """Lock ``run_dir`` (an existing folder) for this process.

    Returns:
        The held ``RunLock``; release it when the run ends (the OS does if the process dies).

    Raises:
        EnvironmentProblem: another process holds the folder; one line with its pid.
    """
    run_dir = Path(run_dir)
    path = run_dir / LOCK_NAME
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(descriptor)
            os.close(descriptor)
            raise EnvironmentProblem(
                f"run folder '{run_dir}' is in use by another run (pid {holder}); wait for it to "
                "end or stop it, or set another train.run_dir") from None
        except OSError as error:  # a file system without flock: say so, run unlocked
            os.close(descriptor)
            if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            logger.warning("cannot lock run folder %s (%s); make sure no other run uses it",
                           run_dir, error.strerror)
            return RunLock(path, None)
        # The previous holder removes the file before it unlocks: if it did so after we opened
        # it, we locked a removed file and must lock the one now at the path.
        if _same_file(path, descriptor):
            break
        os.close(descriptor)
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"{os.getpid()}\n".encode())
    _held.add(descriptor)
    return RunLock(path, descriptor)


def _same_file(path: Path, descriptor: int) -> bool:
    try:
        at_path, locked = os.stat(path), os.fstat(descriptor)
    except FileNotFoundError:
        return False
    return (at_path.st_dev, at_path.st_ino) == (locked.st_dev, locked.st_ino)


def _read_pid(descriptor: int) -> str:
    """The holder's pid as written in the lock file ("unknown" while it has not written it)."""
    text = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
    return text if text.isdigit() else "unknown"
