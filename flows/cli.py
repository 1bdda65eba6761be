"""`tenfold` command line: run a study or data build, render reports, apply a profile, serve schedules.

tenfold run maze            # one study (or a data build such as build_mazes, or `all`)
tenfold report              # reports/<study>.md for every results file, plus reports/index.md
tenfold check               # validate params.yaml and exit
tenfold data                # every dataset and model file: present / missing / corrupt
tenfold profile paper       # merge profiles/paper.yaml into params.yaml (validated first)
tenfold deploy              # serve the scheduled `dvc repro` deployments against a Prefect server
tenfold deploy --pool tenfold [--run maze]   # or register them on a work pool (run by its workers)
tenfold release IN OUT      # protect a folder of images for release (secure_release study)
tenfold lowkey serve        # the LowKey web tool: upload a photo, download the protected one
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tasks import _env  # noqa: F401


class UserError(Exception):
    """Errors a person can fix (params, data, missing files): printed without a traceback."""


def _user_errors():
    from tenfold.core.errors import TenfoldError
    from tenfold.registry import UnknownStudy
    from tenfold.studies.maze.dataset import MazeDataError

    return (TenfoldError, MazeDataError, FileNotFoundError, UnknownStudy, UserError)


def stage_producing(path: str | Path, root: str | Path = ".") -> str | None:
    """The DVC stage whose outputs (or metrics/plots) contain `path`, from dvc.yaml (None if no stage writes it)."""
    import yaml

    root = Path(root).resolve()
    try:
        stages = (yaml.safe_load((root / "dvc.yaml").read_text()) or {}).get("stages", {})
        rel = Path(path).resolve().relative_to(root)
    except (OSError, ValueError, yaml.YAMLError):
        return None
    for name, st in stages.items():
        for kind in ("outs", "metrics", "plots"):
            for out in st.get(kind) or []:
                out = next(iter(out)) if isinstance(out, dict) else out
                if rel == Path(out) or Path(out) in rel.parents:
                    return name
    return None


def explain(e: Exception, root: str | Path = ".") -> str:
    """One line for an error: an unreadable file a DVC stage wrote gets the command that rebuilds it."""
    from tenfold.core.errors import ArtifactError

    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, ArtifactError) and "dvc repro" not in msg:
        stage = stage_producing(e.path, root)
        if stage:
            msg += f"; rebuild it with `dvc repro {stage}`"
    return msg


def _quiet_tracebacks() -> None:
    """Prefect logs a failing task's traceback; without --debug keep only its message (the CLI prints one line)."""
    import logging

    class NoTraceback(logging.Filter):
        def filter(self, record):
            record.exc_info, record.exc_text = None, None
            return True

    for name in ("prefect", "prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(NoTraceback())


def cmd_run(args) -> int:
    from flows.common import available_targets, flow_for, run_flow
    from tenfold.registry import flow_entry, load_params

    if not args.debug:
        _quiet_tracebacks()

    targets = available_targets(args.params) if args.target == "all" else [args.target]
    for t in targets:
        flow_entry(t)  # an unknown target lists the known ones
    load_params(args.params)  # validate the whole file before any compute or server start
    for t in targets:
        run_flow(flow_for(t), args.params, root=args.root)
    return 0


def cmd_report(args) -> int:
    from tenfold.core.reports import render_all
    from tenfold.registry import load_params

    params, root = Path(args.params), Path(args.root)
    # the seed of the committed run (the spread file may hold it at another CPU or commit), validated as every
    # command validates params: a malformed file is a clear error, not a traceback from a raw read
    seed = load_params(params)["common"].seed if params.exists() else 0
    spread = root / "benchmarks" / "seed_spread.json"
    for p in render_all(root / "results", root / "reports", spread, seed):
        print(p)
    return 0


def cmd_check(args) -> int:
    from tenfold.registry import load_params

    secs = load_params(args.params)
    print(f"{args.params}: valid ({', '.join(secs)})")
    return 0


def cmd_profile(args) -> int:
    from tenfold.core.config import overlay_yaml_text, read_yaml
    from tenfold.core.runtime import atomic_write_text
    from tenfold.registry import apply_profile

    prof = Path(args.name) if args.name.endswith(".yaml") else Path("profiles") / f"{args.name}.yaml"
    if not prof.exists():
        raise UserError(f"{prof}: no such profile (see profiles/)")
    apply_profile(args.params, prof)  # validate the merged result before writing anything
    text = overlay_yaml_text(Path(args.params).read_text(), read_yaml(prof))
    atomic_write_text(args.params, text)
    print(f"applied {prof} to {args.params} (comments kept); `git checkout {args.params}` restores the CPU default")
    return 0


def cmd_data(args) -> int:
    """Every data source of the table (tenfold/components/data/sources.py) with its state under the shared root."""
    from flows.common import shared_data
    from tenfold.components.data.sources import SOURCES, check
    from tenfold.registry import load_params

    root = shared_data(load_params(args.params, [])["common"], args.root)
    print(f"shared data: {root}")
    bad = 0
    for name, s in SOURCES.items():
        state, detail = check(name, root, thorough=args.thorough)
        bad += state != "present"
        print(
            f"  {state:8s} {name:20s} {s.what} (used by {', '.join(s.used_by)})"
            + ("" if state == "present" else f"\n           {detail}\n           to get it: {s.how_to_get()}")
        )
    return 2 if bad and args.strict else 0


def cmd_deploy(args) -> int:
    from flows.deploy import FLOW_NAME, deploy_to_pool, serve_all, trigger

    opts = {
        "params_path": args.params,
        "root": args.root,
        "cron": args.cron,
        "commit": not args.no_commit,
        "push": not args.no_push,
    }
    if args.run and not args.pool:
        raise UserError("--run needs --pool (with `serve`, this process itself runs the deployments)")
    if not args.pool:
        serve_all(**opts)
        return 0
    for s in deploy_to_pool(args.pool, **opts):
        print(
            f"{FLOW_NAME}/{s['name']:16s} on pool {args.pool}  cron {s['cron']:12s} "
            f"targets {' '.join(s['parameters']['targets'])}"
        )
    for name in args.run:
        fr = trigger(name, args.pool, timeout=args.timeout)
        print(f"{FLOW_NAME}/{name}: flow run {fr.name} {fr.state.name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="tenfold", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--root", default=".", help="project root where data/, metrics/, plots/ ... live")
    ap.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a study flow or a data build")
    r.add_argument("target")
    r.set_defaults(fn=cmd_run)
    sub.add_parser("report", help="render reports from results/").set_defaults(fn=cmd_report)
    sub.add_parser("check", help="validate params.yaml").set_defaults(fn=cmd_check)
    da = sub.add_parser("data", help="list every data source: present / missing / corrupt")
    da.add_argument("--thorough", action="store_true", help="also verify checksums and file counts (slower)")
    da.add_argument("--strict", action="store_true", help="exit 2 if any source is missing or corrupt")
    da.set_defaults(fn=cmd_data)
    pr = sub.add_parser("profile", help="apply profiles/<name>.yaml to params.yaml")
    pr.add_argument("name")
    pr.set_defaults(fn=cmd_profile)
    from flows.lowkey_cli import add_lowkey_command
    from flows.release_cli import add_release_command

    add_release_command(sub)
    add_lowkey_command(sub)
    d = sub.add_parser(
        "deploy",
        help="scheduled `dvc repro` deployments: served by this process, or on a work pool "
        "(needs PREFECT_API_URL of a running server)",
    )
    d.add_argument("--cron", default=None, help="override every study's cron schedule")
    d.add_argument(
        "--pool",
        default=None,
        help="register the deployments on this Prefect work pool and exit "
        "(its workers run them) instead of serving them from this process",
    )
    d.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="NAME",
        help="with --pool: run deployment NAME (a study, data build or `report`) now and wait for it",
    )
    d.add_argument("--timeout", type=float, default=3600, help="seconds to wait for a --run (default 3600)")
    d.add_argument("--no-commit", action="store_true", help="do not git-commit dvc.lock and outputs after a run")
    d.add_argument("--no-push", action="store_true", help="do not `dvc push` / `git push` after a run")
    d.set_defaults(fn=cmd_deploy)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run a command. A failure prints one line `tenfold: error: ...` and exits non-zero (2 for errors a person
    can fix: params, data, missing or corrupt files; 1 otherwise); `--debug` shows the traceback instead."""
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print("tenfold: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the CLI's one place that turns any failure into one line
        if args.debug:
            raise
        user = isinstance(e, _user_errors())
        msg = explain(e, args.root)
        hint = "" if user else f" ({type(e).__name__}; rerun with --debug for the traceback)"
        print(f"tenfold: error: {msg}{hint}", file=sys.stderr)
        return 2 if user else 1


if __name__ == "__main__":
    from flows.warm import delegate

    code = delegate(sys.argv)  # a stage of `make pipeline`: run by the warm interpreter's fork (flows/warm.py)
    if code is None:
        code = main()
        # the imported libraries' objects stay frozen: interpreter teardown then skips 2-3 s of collections
        import gc

        gc.freeze()
    sys.exit(code)
