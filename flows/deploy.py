"""Scheduled runs go through DVC: the scheduled unit is `repro_flow`, which runs `dvc repro <targets>` in the
checkout (only stale stages run, dvc.lock is updated), then commits what changed and pushes to the DVC remote.

One machine (`serve`: this process runs the scheduled flows; Ctrl-C stops it):

    prefect server start --host 127.0.0.1 &
    PREFECT_API_URL=http://127.0.0.1:4200/api tenfold deploy

A cluster (a process work pool; `prefect worker start --pool tenfold` runs the flows, from this checkout):

    scripts/cluster.sh up && source .cluster/env       # or any Prefect server + `prefect work-pool create`
    tenfold deploy --pool tenfold                      # registers the deployments and exits
    tenfold deploy --pool tenfold --run maze           # ... and runs one now, waiting for it

Deployments (flow `tenfold-repro`), one per study (targets: its DVC stages), on the study's schedule from
the registry (nightly; OpenReview yearly), one per shared data build (nightly) and `report` (daily, after the
nightly studies: `dvc repro --single-item report`). A study whose params model has a `snapshot` field (OpenReview)
gets `<slug>.snapshot` set to the run's scheduled date before `dvc repro`: that param invalidates its scrape stage,
so the yearly re-scrape goes through DVC like every other change.

After `dvc repro` (parameters `commit` and `push`, both on by default):
- commit: `git commit` of dvc.lock, params.yaml, metrics/, results/, plots/ and reports/ when the checkout is a git
  repository and one of them changed (identity: git's own, else `tenfold scheduler <tenfold@localhost>`);
- push: `dvc push <targets>` when a default DVC remote is configured (`dvc remote add -d ...`), and `git push` when
  the current branch has an upstream. Neither happens otherwise; the run's result says what was done.
Runs on the same checkout wait for each other (a file lock), so nightly studies scheduled at the same minute run
one after the other.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

from prefect import flow
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

from tenfold.core.errors import TenfoldError

FLOW_NAME = "tenfold-repro"
ENTRYPOINT = "flows/deploy.py:repro_flow"
REPORT_SCHEDULE = "0 6 * * *"  # after the nightly studies (02:00)
COMMIT_PATHS = ("dvc.lock", "params.yaml", "metrics", "results", "plots", "reports")
DATE = "{date}"  # in `set_params` values: the run's scheduled date (YYYY-MM-DD)


class ServiceUnavailable(TenfoldError):
    """A server the command needs (Prefect API, work pool worker) does not answer; names it and its URL."""


class ReproFailed(TenfoldError):
    """`dvc repro` (or the commit / push after it) failed; the message carries the tail of its output."""


# --------------------------------------------------------------------------------------------------- repro flow
def _run(cmd: list[str], cwd: Path, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # stages' `python` = this one
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise ReproFailed(
            f"`{' '.join(cmd)}` failed in {cwd} ({r.returncode}): {(r.stdout + r.stderr).strip()[-3000:]}"
        )
    return r


def _dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


@contextlib.contextmanager
def _checkout_lock(root: Path):
    """One repro at a time per checkout (DVC would otherwise refuse the second with `Unable to acquire lock`)."""
    lock = root / ".dvc" / "tmp" / "tenfold-repro.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _scheduled_date() -> str:
    try:
        from prefect.runtime import flow_run

        when = flow_run.scheduled_start_time
        return when.date().isoformat() if when else date.today().isoformat()
    except Exception:  # noqa: BLE001 - outside a flow run (flow.fn in a test)
        return date.today().isoformat()


def write_params(params_path: Path, values: dict[str, str]) -> dict[str, str]:
    """Write dotted `section.key: value` pairs into params.yaml (comments kept), validated first. `{date}` in a
    value becomes the run's scheduled date. Returns what was written."""
    from tenfold.core.config import deep_merge, overlay_yaml_text, read_yaml, unflatten
    from tenfold.core.runtime import atomic_write_text
    from tenfold.registry import validate_section

    today = _scheduled_date()
    written = {
        dotted: value.replace(DATE, today) if isinstance(value, str) else value for dotted, value in values.items()
    }
    overlay = unflatten(written)
    merged = deep_merge(read_yaml(params_path), overlay)
    for section in overlay:
        validate_section(section, merged.get(section, {}), str(params_path))
    atomic_write_text(params_path, overlay_yaml_text(params_path.read_text(), overlay))
    return written


def _is_git(root: Path) -> bool:
    return _run(["git", "rev-parse", "--is-inside-work-tree"], root, check=False).stdout.strip() == "true"


def _commit(root: Path, message: str) -> str | None:
    """Commit dvc.lock and the small tracked outputs if they changed; the new commit's sha, else None."""
    paths = [p for p in COMMIT_PATHS if (root / p).exists()]
    if not paths or not _is_git(root):
        return None
    _run(["git", "add", "--", *paths], root)
    if _run(["git", "diff", "--cached", "--quiet", "--", *paths], root, check=False).returncode == 0:
        return None
    ident = (
        []
        if _run(["git", "config", "user.email"], root, check=False).stdout.strip()
        else ["-c", "user.name=tenfold scheduler", "-c", "user.email=tenfold@localhost"]
    )
    _run(["git", *ident, "commit", "-q", "-m", message, "--", *paths], root)
    return _run(["git", "rev-parse", "HEAD"], root).stdout.strip()


def _push(root: Path, targets: list[str]) -> dict:
    done = {"dvc": False, "git": False}
    remote = _run(_dvc("remote", "default"), root, check=False)  # exit 1: "No default remote set"
    if remote.returncode == 0 and remote.stdout.strip():
        _run(_dvc("push", *targets), root)
        done["dvc"] = True
    if (
        _is_git(root)
        and _run(["git", "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{u}"], root, check=False).returncode
        == 0
    ):
        _run(["git", "push", "-q"], root)
        done["git"] = True
    return done


@flow(name=FLOW_NAME)
def repro_flow(
    targets: list[str],
    root: str = ".",
    commit: bool = True,
    push: bool = True,
    set_params: dict[str, str] | None = None,
    single_item: bool = False,
) -> dict:
    """`dvc repro <targets>` in `root` (only stale stages run; dvc.lock is updated), after writing `set_params`
    into params.yaml; then commit and push (see the module docstring). Returns the stages that ran, the commit
    and what was pushed."""
    try:
        log = get_run_logger()
    except MissingContextError:  # called as repro_flow.fn(...)
        log = logging.getLogger("tenfold.deploy")
    root_path = Path(root).resolve()
    if not (root_path / "dvc.yaml").exists():
        raise ReproFailed(f"{root_path}: no dvc.yaml (the deployment's `root` must be the project checkout)")
    t = time.time()
    with _checkout_lock(root_path):
        params_file = root_path / "params.yaml"
        before = params_file.read_text() if set_params else None
        written = write_params(params_file, set_params) if set_params else {}
        if written:
            log.info("params set before repro: %s", written)
        cmd = _dvc("repro", *(["--single-item"] if single_item else []), *targets)
        log.info("running `%s` in %s", " ".join(cmd[2:]), root_path)
        try:
            r = _run(cmd, root_path)
        except ReproFailed:
            if before is not None:  # a failed run leaves params.yaml as it found it (a retry sets them again)
                params_file.write_text(before)
            raise
        ran = re.findall(r"Running stage '([^']+)'", r.stdout)
        log.info("dvc repro: %s", f"ran {', '.join(ran)}" if ran else "every stage up to date, nothing ran")
        status = _run(_dvc("status", *targets), root_path).stdout.strip()
        if "up to date" not in status:
            log.warning("dvc status after repro is not clean:\n%s", status)
        sha = (
            _commit(
                root_path,
                f"tenfold: scheduled dvc repro {' '.join(targets)}" + (f" ({', '.join(ran)} ran)" if ran else ""),
            )
            if commit
            else None
        )
        if sha:
            log.info("committed %s", sha[:12])
        pushed = _push(root_path, targets) if push else {"dvc": False, "git": False}
    return {
        "targets": list(targets),
        "ran": ran,
        "params_set": written,
        "status": status,
        "commit": sha,
        "pushed": pushed,
        "seconds": round(time.time() - t, 1),
    }


# -------------------------------------------------------------------------------------------------- deployments
def _dvc_stages(root: Path) -> set[str]:
    import yaml

    path = root / "dvc.yaml"
    return set((yaml.safe_load(path.read_text()) or {}).get("stages", {})) if path.exists() else set()


def deployment_specs(
    params_path: str = "params.yaml", root: str = ".", cron: str | None = None, commit: bool = True, push: bool = True
) -> list[dict]:
    """What to deploy (plain data, no Prefect): one entry per study present in params.yaml and dvc.yaml, per shared
    data build and for the report, each with its name, schedule and the parameters of `repro_flow`."""
    from flows.common import available_targets
    from tenfold.registry import DATA_STAGES, NIGHTLY, STUDIES

    root_path = Path(root).resolve()
    in_dvc = _dvc_stages(root_path)
    present = set(available_targets(params_path)) & in_dvc
    base = {"root": str(root_path), "commit": commit, "push": push}
    specs = [
        {"name": stage, "cron": cron or NIGHTLY, "parameters": {**base, "targets": [stage]}}
        for stage in DATA_STAGES
        if stage in present
    ]
    for study in STUDIES.values():
        targets = [s for s in study.stages if s in present]
        if not targets:
            continue
        params = {**base, "targets": targets}
        if "snapshot" in study.params.model_fields:
            params["set_params"] = {f"{study.slug}.snapshot": DATE}
        specs.append({"name": study.slug, "cron": cron or study.schedule, "parameters": params})
    if "report" in in_dvc:
        specs.append(
            {
                "name": "report",
                "cron": cron or REPORT_SCHEDULE,
                "parameters": {**base, "targets": ["report"], "single_item": True},
            }
        )
    return specs


def api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise ServiceUnavailable(
            "no Prefect server configured: start one (`prefect server start --host 127.0.0.1` "
            "or `scripts/cluster.sh up`) and set PREFECT_API_URL (e.g. "
            "http://127.0.0.1:4200/api; `source .cluster/env`)"
        )
    return url.rstrip("/")


def check_prefect(url: str | None = None, timeout: float = 3.0) -> str:
    """The Prefect API URL, once `GET /health` answers within `timeout` s; else ServiceUnavailable naming it."""
    url = url or api_url()
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as r:
            if r.status == 200:
                return url
            why = f"HTTP {r.status}"
    except urllib.error.HTTPError as e:
        why = f"HTTP {e.code}"
    except (OSError, urllib.error.URLError) as e:
        why = str(getattr(e, "reason", e))
    raise ServiceUnavailable(
        f"Prefect server at {url} is not answering ({why}): start it (`prefect server start "
        "--host 127.0.0.1` or `scripts/cluster.sh up`) or fix PREFECT_API_URL"
    )


def build_deployments(
    params_path: str = "params.yaml", root: str = ".", cron: str | None = None, commit: bool = True, push: bool = True
) -> list:
    """`repro_flow` deployments for `serve` (this process runs them)."""
    return [
        repro_flow.to_deployment(
            name=s["name"], cron=s["cron"], parameters=s["parameters"], tags=["tenfold", s["name"]]
        )
        for s in deployment_specs(params_path, root, cron, commit, push)
    ]


def serve_all(
    params_path: str = "params.yaml", root: str = ".", cron: str | None = None, commit: bool = True, push: bool = True
) -> None:
    from prefect import serve

    check_prefect()
    serve(*build_deployments(params_path, root, cron, commit, push))


def _pool(pool: str) -> dict:
    """The work pool as the server has it: {status, workers online}; ServiceUnavailable if it does not exist."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    url = check_prefect()
    with get_client(sync_client=True) as c:
        try:
            wp = c.read_work_pool(pool)
        except ObjectNotFound:
            raise ServiceUnavailable(
                f"work pool {pool!r} does not exist at {url}: create it (`prefect work-pool "
                f"create {pool} --type process`; scripts/cluster.sh up does)"
            ) from None
        workers = c.read_workers_for_work_pool(pool)
    online = [w.name for w in workers if str(getattr(w.status, "value", w.status)).upper() == "ONLINE"]
    return {"url": url, "type": wp.type, "status": str(getattr(wp.status, "value", wp.status)), "online": online}


def deploy_to_pool(
    pool: str,
    params_path: str = "params.yaml",
    root: str = ".",
    cron: str | None = None,
    commit: bool = True,
    push: bool = True,
) -> list[dict]:
    """Register every deployment on work pool `pool`, its code taken from the checkout `root`
    (`flow.from_source(root, "flows/deploy.py:repro_flow")`): a worker on any machine with that checkout at the
    same path runs them. Returns the specs deployed (with their deployment ids)."""
    root_path = Path(root).resolve()
    if not (root_path / ENTRYPOINT.split(":")[0]).exists():
        raise ServiceUnavailable(f"{root_path} has no {ENTRYPOINT.split(':')[0]}: --root must be the checkout")
    info = _pool(pool)
    specs = deployment_specs(params_path, str(root_path), cron, commit, push)
    source = repro_flow.from_source(source=str(root_path), entrypoint=ENTRYPOINT)
    for s in specs:
        s["id"] = str(
            source.deploy(
                name=s["name"],
                work_pool_name=pool,
                cron=s["cron"],
                parameters=s["parameters"],
                tags=["tenfold", s["name"]],
                print_next_steps=False,
                ignore_warnings=True,
            )
        )
    s_pool = info["status"]
    if not info["online"]:
        print(
            f"deploy: no worker polls pool {pool!r} at {info['url']} yet (status {s_pool}): runs wait for "
            f"`prefect worker start --pool {pool}`",
            file=sys.stderr,
        )
    return specs


def trigger(name: str, pool: str, timeout: float = 1800, parameters: dict | None = None):
    """Run deployment `tenfold-repro/<name>` now and wait for it; fails at once when no worker polls `pool` (a run
    would otherwise wait forever). Returns the finished flow run."""
    from prefect.deployments import run_deployment

    info = _pool(pool)
    if not info["online"]:
        raise ServiceUnavailable(
            f"no worker polls work pool {pool!r} at {info['url']}: start one "
            f"(`prefect worker start --pool {pool}`; scripts/cluster.sh up does)"
        )
    fr = run_deployment(f"{FLOW_NAME}/{name}", parameters=parameters or {}, timeout=timeout)
    if not fr.state or not fr.state.is_final():
        raise ReproFailed(
            f"deployment {FLOW_NAME}/{name}: flow run {fr.name} not finished after {timeout:.0f} s "
            f"(state {fr.state.name if fr.state else 'unknown'}; see {info['url'].removesuffix('/api')})"
        )
    if not fr.state.is_completed():
        raise ReproFailed(
            f"deployment {FLOW_NAME}/{name}: flow run {fr.name} ended {fr.state.name}: {fr.state.message or ''}"
        )
    return fr


if __name__ == "__main__":
    serve_all()
