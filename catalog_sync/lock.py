"""The run lock: two `run`s against the same LiteLLM cannot both apply.

An advisory `flock` on a file: the kernel releases it when the process ends, however it ends (SIGKILL
included), so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class LockHeld(Exception):
    """Another run holds the lock."""


def default_lock_path(litellm_url: str) -> Path:
    digest = hashlib.sha256(litellm_url.rstrip("/").encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"catalog-sync-{digest}.lock"


@contextmanager
def run_lock(path: Path, wait: bool = False) -> Iterator[None]:
    """Holds the lock for the duration; raises LockHeld at once if it is taken and `wait` is false."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise LockHeld(
                f"another catalog-sync run (pid {holder}) holds the lock {path}; "
                "not applying (use --wait-for-lock to wait for it)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
