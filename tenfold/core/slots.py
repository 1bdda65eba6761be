"""CPU slots shared by every process of one pipeline run: stages side by side never run more task bodies at once
than the cores hold.

`scripts/repro.py` runs independent stages side by side. Each stage runs `common.max_workers` single-threaded
tasks, so two stages on 2 cores would run four compute threads on two cores (measured: 10-19% more CPU seconds per
study, and no gain). With slots, a task body first takes one of N slot files under `$TENFOLD_CPU_SLOTS` (an exclusive
`flock`), so at most N bodies compute at once across all stages, and a stage's idle worker lets the other stage's
task run instead of leaving a core idle.

- Not set (a plain `dvc repro`, `tenfold run`, tests): `slot()` does nothing.
- `flock` locks belong to the open file: the kernel drops them when a process dies, so a killed stage never keeps a
  slot.
- Re-entrant per thread: a task body that calls another task's function keeps the slot it holds.
- A task's inputs and outputs (Prefect's futures, state, MLflow logging in the flow) are outside the slot: only the
  task's own function holds one, so a task waiting for an upstream task never holds a core.

Slots change only when a body runs, never what it computes (each task keeps its own seeds and thread count).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ENV = "TENFOLD_CPU_SLOTS"
_local = threading.local()


def create(directory: str | Path, n: int) -> Path:
    """Make `n` slot files in `directory` (created if missing; stale slot files from an earlier run removed)."""
    if n < 1:
        raise ValueError(f"CPU slots: need at least 1 slot, got {n}")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("slot-*"):
        old.unlink()
    for i in range(n):
        (d / f"slot-{i}").touch()
    return d


def slot_files(directory: str | Path | None = None) -> list[Path]:
    """The slot files of `directory` (default: $TENFOLD_CPU_SLOTS); [] when slots are off. A set variable naming a
    folder without slot files is an error: the tasks would otherwise run unlimited without saying so."""
    directory = directory if directory is not None else os.environ.get(ENV)
    if not directory:
        return []
    files = sorted(Path(directory).glob("slot-*"))
    if not files:
        raise RuntimeError(f"{ENV}={directory}: no slot files there (scripts/repro.py creates them)")
    return files


def _try(files: list[Path], start: int) -> int | None:
    for k in range(len(files)):
        path = files[(start + k) % len(files)]
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            os.close(fd)
    return None


@contextlib.contextmanager
def slot(directory: str | Path | None = None, poll: float = 0.05) -> Iterator[int | None]:
    """Hold one CPU slot for the body (waiting until one is free); yields the slot's descriptor, or None when slots
    are off or this thread already holds one."""
    if getattr(_local, "depth", 0):
        _local.depth += 1
        try:
            yield None
        finally:
            _local.depth -= 1
        return
    files = slot_files(directory)
    if not files:
        yield None
        return
    start = threading.get_ident() % len(files)  # spread first tries over the slots
    fd = _try(files, start)
    while fd is None:
        time.sleep(poll)
        fd = _try(files, start)
    _local.depth = 1
    try:
        yield fd
    finally:
        _local.depth = 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def count(cores: int | None, threads: int | None) -> int:
    """Slots for `cores` cores when each task body runs `threads` torch threads (None: all cores)."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // (threads or cores))
