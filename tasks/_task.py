"""The `task` decorator of every tenfold task: Prefect's `task`, with the task's function run inside a CPU slot
(tenfold.core.slots; a no-op unless scripts/repro.py runs stages side by side)."""

from __future__ import annotations

import functools

from prefect import task as prefect_task

from tenfold.core import slots


def task(fn=None, /, **options):
    """`@task(name=..., cache_policy=...)` as in Prefect; the wrapped function keeps its name and signature, so
    Prefect's parameters, names and `.fn(...)` calls behave as before."""
    if fn is None:
        return lambda f: task(f, **options)

    @functools.wraps(fn)
    def body(*args, **kwargs):
        with slots.slot():
            return fn(*args, **kwargs)

    return prefect_task(body, **options)
