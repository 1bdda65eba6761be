"""CPU slots (tenfold.core.slots): stages side by side never run more task bodies at once than there are slots, a
dead process frees its slot, a thread keeps the slot it holds, and every tenfold task body runs inside one."""

from __future__ import annotations

import inspect
import subprocess
import sys
import threading
import time

import pytest

from tenfold.core import slots


def _hold(directory, seconds, log, lock):
    with slots.slot(directory, poll=0.005):
        with lock:
            log.append(("in", time.monotonic()))
        time.sleep(seconds)
        with lock:
            log.append(("out", time.monotonic()))


def _most_at_once(log):
    now = most = 0
    for kind, _ in sorted(log, key=lambda e: (e[1], e[0] == "in")):  # an exit before an entry at the same instant
        now += 1 if kind == "in" else -1
        most = max(most, now)
    return most


def test_off_without_the_variable(monkeypatch):
    monkeypatch.delenv(slots.ENV, raising=False)
    assert slots.slot_files() == []
    with slots.slot() as fd:
        assert fd is None


def test_at_most_n_bodies_at_once_and_all_n_used(tmp_path):
    d = slots.create(tmp_path / "s", 2)
    log, lock = [], threading.Lock()
    threads = [threading.Thread(target=_hold, args=(d, 0.15, log, lock)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(log) == 12
    assert _most_at_once(log) == 2


def test_a_slot_held_by_another_process_blocks_until_that_process_dies(tmp_path):
    d = slots.create(tmp_path / "s", 1)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from tenfold.core import slots\n"
         "with slots.slot(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)", str(d)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        got, release = [], threading.Event()

        def wait_for_slot():
            with slots.slot(d, poll=0.01) as fd:
                got.append(fd)
                release.wait(10)

        waiter = threading.Thread(target=wait_for_slot)
        waiter.start()
        waiter.join(timeout=0.5)
        assert waiter.is_alive() and not got  # the only slot is the other process's
        holder.kill()  # a killed stage: the kernel drops its flock
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
        assert got and got[0] is not None
        release.set()
        waiter.join(timeout=10)
    finally:
        holder.kill()
        holder.wait()


def test_a_thread_keeps_its_slot_in_nested_bodies(tmp_path):
    d = slots.create(tmp_path / "s", 1)
    with slots.slot(d) as outer:
        with slots.slot(d) as inner:  # would wait forever if it asked for a second slot
            assert outer is not None and inner is None
    with slots.slot(d, poll=0.01) as again:  # released after the outer body
        assert again is not None


def test_a_variable_naming_an_empty_folder_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(slots.ENV, str(tmp_path))
    with pytest.raises(RuntimeError, match="no slot files"):
        with slots.slot():
            pass


def test_create_replaces_old_slots_and_count_follows_the_threads(tmp_path):
    slots.create(tmp_path, 4)
    slots.create(tmp_path, 2)
    assert len(slots.slot_files(tmp_path)) == 2
    assert [slots.count(2, 1), slots.count(8, 2), slots.count(2, None), slots.count(1, 4)] == [2, 4, 1, 1]
    with pytest.raises(ValueError):
        slots.create(tmp_path, 0)


def test_every_tenfold_task_body_runs_in_a_slot(tmp_path, monkeypatch):
    """tasks._task.task keeps Prefect's name and the function's signature, and its body waits for a slot."""
    from tasks._task import task

    @task(name="slot-probe")
    def probe(x: int, y: int = 2) -> int:
        return x + y

    assert probe.name == "slot-probe" and list(inspect.signature(probe.fn).parameters) == ["x", "y"]
    assert probe.fn(1) == 3  # slots off: runs at once
    d = slots.create(tmp_path / "s", 1)
    monkeypatch.setenv(slots.ENV, str(d))
    done = []
    with slots.slot(d):
        t = threading.Thread(target=lambda: done.append(probe.fn(1, y=5)))
        t.start()
        t.join(timeout=0.5)
        assert t.is_alive() and not done  # waits for the slot this thread holds
    t.join(timeout=10)
    assert done == [6]


def test_every_task_module_uses_the_slot_decorator():
    """No task of tasks/ is a bare prefect.task (its body would run outside the slots)."""
    import importlib
    from pathlib import Path

    from prefect import Task

    found = 0
    for path in sorted((Path(__file__).resolve().parents[2] / "tasks").glob("*.py")):
        module = importlib.import_module(f"tasks.{path.stem}")
        for name, obj in vars(module).items():
            if isinstance(obj, Task) and obj.fn.__module__ == module.__name__:
                found += 1
                assert getattr(obj.fn, "__wrapped__", None) is not None, f"tasks/{path.name}: {name}"
    assert found >= 40
