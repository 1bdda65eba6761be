"""Progress of long loops, for a person at a terminal and for the Prefect UI.

    with progress("train recurrent net", total=epochs, enabled=ctx.progress) as step:
        train(..., on_epoch=lambda rec: step())

`step(n=1)` advances a tqdm bar (only when `enabled`, i.e. `common.progress` resolved: on in a terminal, off in CI
and under DVC without a TTY) and a Prefect progress artifact of the running flow (shown in the Prefect UI; updated
at most every 2 s and at the end). Outside a flow or task run the artifact part does nothing. The library never
imports this: tasks hand `step` to library loops as a callback.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("tenfold.progress")


def _artifact(label: str):
    """(create, update) for a Prefect progress artifact, or None when there is no run context or API."""
    try:
        from prefect.artifacts import create_progress_artifact, update_progress_artifact
        from prefect.context import FlowRunContext, TaskRunContext

        if FlowRunContext.get() is None and TaskRunContext.get() is None:
            return None
        key = re.sub(r"[^a-z0-9-]+", "-", label.lower()).strip("-")[:60] or "progress"
        aid = create_progress_artifact(0.0, key=key, description=label)
        return lambda pct: update_progress_artifact(aid, pct)
    except Exception as e:  # noqa: BLE001 - progress must never break a run
        log.debug("no progress artifact for %s: %s", label, e)
        return None


@contextmanager
def progress(
    label: str, total: int | None, enabled: bool = False, artifact: bool = True
) -> Iterator[Callable[[int], None]]:
    """`total=None`: an open-ended count (e.g. pages of a scrape): a counting bar, no percentage artifact."""
    bar = None
    if enabled:
        from tqdm import tqdm

        # disable=False explicitly: a TQDM_DISABLE in the environment already counted when `enabled` was resolved
        bar = tqdm(total=total, desc=label, leave=False, disable=False)
    update = _artifact(label) if artifact and total else None
    done, last = 0, 0.0

    def step(n: int = 1) -> None:
        nonlocal done, last
        done += n
        if bar is not None:
            bar.update(n)
        if update is not None and (time.monotonic() - last > 2.0 or done >= total):
            last = time.monotonic()
            try:
                update(min(100.0, 100.0 * done / total))
            except Exception as e:  # noqa: BLE001
                log.debug("progress artifact update failed: %s", e)

    try:
        yield step
    finally:
        if bar is not None:
            bar.close()
        if update is not None and done < total:
            try:
                update(100.0 * done / total)
            except Exception:  # noqa: BLE001
                pass


def results(futures: list, label: str, enabled: bool = False) -> list:
    """The results of submitted tasks (Prefect futures, any task runner), in order, counting each one done on a bar
    and on the flow's progress artifact: how far a fan-out (a grid of cells, a set of nets) has come."""
    out = []
    with progress(label, len(futures), enabled) as step:
        for f in futures:
            out.append(f.result())
            step()
    return out
