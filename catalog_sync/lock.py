"""The run lock: two `run`s against the same LiteLLM cannot both apply.

An advisory `flock` on a file: the kernel releases it when the process ends, however it ends (SIGKILL
included), so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

log = structlog.get_logger("catalog_sync.lock")

POLL_SECONDS = 0.2  # how often a bounded wait tries again (a wait without a bound just blocks)


class LockHeld(Exception):
    """Another run holds the lock."""


def default_lock_path(litellm_url: str) -> Path:
    digest = hashlib.sha256(litellm_url.rstrip("/").encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"catalog-sync-{digest}.lock"


def _holder(fd: int) -> str:
    return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"


def _acquired(fd: int, wait: float) -> bool:
    """Waits for the lock: blocking when `wait` is infinite, else trying until `wait` seconds passed."""
    if math.isinf(wait):
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(POLL_SECONDS, left))


@contextmanager
def run_lock(path: Path, wait: float | None = None) -> Iterator[None]:
    """Holds the lock for the duration. If it is taken: raises LockHeld at once when `wait` is None, else
    waits for it, without end (`math.inf`) or at most `wait` seconds, and then raises LockHeld."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if wait is None:
                raise LockHeld(
                    f"another catalog-sync run (pid {holder}) holds the lock {path}; "
                    "not applying (use --wait-for-lock to wait for it)"
                ) from None
            limit = None if math.isinf(wait) else wait
            log.info("waiting_for_lock", lock=str(path), holder_pid=holder, timeout_seconds=limit)
            if not _acquired(fd, wait):
                raise LockHeld(
                    f"waited {wait:g} s, and another catalog-sync run (pid {_holder(fd)}) still holds the "
                    f"lock {path}; not applying"
                ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
