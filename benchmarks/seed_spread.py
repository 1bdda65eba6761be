"""Each claim's spread over seeds: the CPU default run at several `common.seed` values (on demand, ~45 min per
seed on 2 cores for the whole pipeline; not part of `make bench`).

    python -m benchmarks.seed_spread                       # seeds 1 and 2 + the committed seed-0 metrics
    python -m benchmarks.seed_spread --studies maze depth  # only these studies (and the data builds they need)
    python -m benchmarks.seed_spread --seeds 0 1 2 --no-locked   # rerun seed 0 too
    python -m benchmarks.seed_spread --studies augmentation --work DIR --refresh \
        --reuse build_cifar10 craft_poisons security   # only augmentation's own stage changed since DIR's run
    python -m benchmarks.seed_spread --studies security --seeds 0 1 2 \
        --set security.craft.targets=24 --out benchmarks/spread_gm24.json   # another configuration, every seed run

Each seed runs in a fresh copy of the committed project (git's index) with only `common.seed` changed (and the
`--set` params, if any), through the same flows as `make pipeline`, study by study. After each study it writes
benchmarks/seed_spread.json (per study and claim: the measured values, the seeds, whether each held; the commit each
study was measured at) and benchmarks/seed_spread.md; studies already in the file and not rerun are kept. `tenfold
report` puts the spread beside each claim and flags a claim whose margin to its target is smaller than the spread. A
run with `--set` measures another configuration than the CPU default: it needs its own `--out` (the reports read
only seed_spread.json), runs every seed itself (the committed metrics are the default's) and keeps its projects
apart.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


class StageFailed(RuntimeError):
    pass


def parse_sets(items: list[str]) -> dict[str, object]:
    """`section.key=value` strings (the value read as YAML: `24`, `[1, 2]`, `null`) -> {dotted key: value}."""
    import yaml

    out: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ValueError(f"--set {item!r}: expected section.key=value, e.g. security.craft.targets=24")
        out[key.strip()] = yaml.safe_load(raw)
    return out


def _project_dir(seed: int, work: Path, sets: dict[str, object] | None = None) -> Path:
    name = f"seed{seed}" + "".join(f"-{k}={v}" for k, v in sorted((sets or {}).items()))
    return work / re.sub(r"[^\w.=,+-]", "", name) / "proj"  # a plain folder name: no quotes, brackets, spaces


def _project(seed: int, work: Path, refresh: bool = False, sets: dict[str, object] | None = None) -> Path:
    """A copy of the committed project (git's index) with only `common.seed` changed, and the `sets` params; kept
    under `work` so that a later study at the same seed reuses the data stages already built there (a project with
    `sets` under its own name, never one of the default's). `refresh`: copy the committed files again over a kept
    project (its data and outputs stay), for a rerun after a code change."""
    from tenfold.core.config import deep_merge, overlay_yaml_text, unflatten

    proj = _project_dir(seed, work, sets)
    if refresh or not (proj / "params.yaml").exists():
        proj.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "checkout-index", "--all", "--force", f"--prefix={proj}/"], cwd=ROOT, check=True)
        params = proj / "params.yaml"
        overlay = deep_merge(unflatten(sets or {}), {"common": {"seed": seed}})
        params.write_text(overlay_yaml_text(params.read_text(), overlay))
    return proj


RUN_MARK = ".seed_spread_stages.json"  # the stages that finished in a project (its metrics files are committed ones
# until its own stage overwrites them, so only this list says what ran there)


def _mark_run(proj: Path, stage: str) -> None:
    ran = _ran(proj)
    (proj / RUN_MARK).write_text(json.dumps(sorted({*ran, stage})))


def _ran(proj: Path) -> set[str]:
    f = proj / RUN_MARK
    return set(json.loads(f.read_text())) if f.exists() else set()


def _run_study(seed: int, slug: str, proj: Path, done: set[str]) -> dict:
    """Run `slug`'s stages (after the data builds and the stages of the studies it uses) in `proj`, skipping the
    stages in `done` (already run in this project); return its metrics file (`claims` and the scalar metrics)."""
    from flows.common import shared_data
    from tenfold.registry import DATA_STAGES, STUDIES, load_params

    env = dict(
        os.environ,
        # the project's own params: the working tree's params.yaml may be mid-edit (a new key the committed code
        # rejects stopped a run here once)
        TENFOLD_SHARED_DATA=str(shared_data(load_params(proj / "params.yaml", [])["common"], ROOT)),
        PREFECT_HOME=str(proj / ".prefect"),
    )
    env.pop("MLFLOW_TRACKING_URI", None)
    stages = list(DATA_STAGES)  # shared data builds (seconds), then the stages of the studies it uses, then its own
    for owner in (*STUDIES[slug].uses, slug):
        stages += [s for s in STUDIES[owner].stages if s not in stages]
    for stage in [s for s in stages if s not in done]:
        t0 = time.time()
        r = subprocess.run(
            [sys.executable, "-m", "flows.cli", "run", stage], cwd=proj, env=env, capture_output=True, text=True
        )
        print(f"  seed {seed} {stage}: exit {r.returncode}, {time.time() - t0:.0f} s", flush=True)
        if r.returncode:
            print(r.stderr[-2000:], file=sys.stderr)
            raise StageFailed(f"seed {seed}: stage {stage} failed (exit {r.returncode})")
        done.add(stage)
        _mark_run(proj, stage)
    return json.loads((proj / "metrics" / f"{slug}.json").read_text())


def spread_entry(per_seed: dict[int, dict]) -> dict:
    """One study's claims over seeds: {claim id: {seeds, values, holds, target}} from {seed: {claim id: claim}}
    (a claim whose measurement is missing at a seed is left out at that seed)."""
    claims: dict[str, dict] = {}
    for seed, res in sorted(per_seed.items()):
        for cid, c in res.items():
            e = claims.setdefault(cid, {"seeds": [], "values": [], "holds": [], "target": c["target"]})
            if c["measured"] is not None:
                e["seeds"].append(seed)
                e["values"].append(c["measured"])
                e["holds"].append(c["holds"])
    return claims


def machine_of(doc: dict, slug: str) -> str:
    """The CPU a study's spread was measured on: its own entry in `machines`, else the file-wide `machine` of files
    written before the per-study entries, else 'an unrecorded CPU'."""
    cpu = (doc.get("machines") or {}).get(slug)
    return cpu or (doc.get("machine") or {}).get("machine.cpu") or "an unrecorded CPU"


def write_outputs(doc: dict, out: Path) -> None:
    out.write_text(json.dumps(doc, indent=2) + "\n")
    sets = doc.get("sets") or {}
    try:
        shown = out.resolve().relative_to(ROOT).as_posix()
    except ValueError:  # written outside the project
        shown = out.name
    title = (
        "CPU default with " + ", ".join(f"`{k}={v}`" for k, v in sets.items()) + "; every seed run here"
        if sets
        else "CPU default; seed 0 is the run that was locked when the benchmark ran"
    )
    lines = [
        f"# Claims over seeds ({title})",
        "",
        f"Each study was measured at the commit and on the CPU named in its row; `{shown}` holds "
        + (
            "the values and every scalar metric per seed. The reports do not read this file: it measures another "
            "configuration than the CPU default."
            if sets
            else "the values. A locked run on another CPU gives other floats: the reports then show it beside this "
            "spread (`3 seeds + this run`)."
        ),
        "",
        "| study | commit | CPU | claim | seeds | values | min | max | spread | held |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for slug, claims in doc["studies"].items():
        commit = doc.get("commits", {}).get(slug, "")
        cpu = machine_of(doc, slug)
        for cid, e in claims.items():
            v = e["values"]
            if v:
                lines.append(
                    f"| {slug} | {commit} | {cpu} | `{cid}` | {', '.join(map(str, e['seeds']))} "
                    f"| {', '.join(f'{x:.3g}' for x in v)} | {min(v):.3g} | {max(v):.3g} "
                    f"| {max(v) - min(v):.3g} | {sum(e['holds'])} of {len(v)} |"
                )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    from tenfold.core.runtime import describe_host
    from tenfold.registry import STUDIES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--studies", nargs="+", default=list(STUDIES))
    ap.add_argument("--no-locked", action="store_true", help="do not add the committed metrics as seed 0")
    ap.add_argument("--out", default=str(HERE / "seed_spread.json"))
    ap.add_argument("--work", default=None, help="keep the per-seed projects here (default: a temporary folder)")
    ap.add_argument("--refresh", action="store_true", help="copy the committed code again into kept projects")
    ap.add_argument(
        "--reuse",
        nargs="+",
        default=[],
        help="stages whose outputs in projects kept from an earlier run are used as they are (only if their code and "
        "params did not change since they ran there); new projects run them",
    )
    ap.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="measure another configuration (repeatable; the value is read as YAML); needs its own --out",
    )
    a = ap.parse_args(argv)
    out = Path(a.out)
    try:
        sets = parse_sets(a.sets)
    except ValueError as e:
        ap.error(str(e))
    if sets and out.resolve() == (HERE / "seed_spread.json").resolve():
        ap.error(
            "--set measures another configuration than the CPU default: give it its own --out (the reports "
            "read benchmarks/seed_spread.json as the default's spread)"
        )
    if "common.seed" in sets:
        ap.error("--set common.seed: use --seeds")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    commit = commit.stdout.strip()
    # studies already in the file (measured at their own commits) are kept; the ones run now replace theirs
    doc = json.loads(out.read_text()) if out.exists() else {}
    if doc.get("sets", {}) != sets and doc.get("studies"):
        ap.error(f"{out} holds another configuration ({doc.get('sets') or 'the CPU default'}); give another --out")
    doc.setdefault("studies", {})
    doc.setdefault("commits", {})
    if sets:
        doc["sets"] = sets
    # each study keeps the CPU it was measured on (a partial rerun on another machine must not relabel the others)
    machines = doc.setdefault("machines", {})
    for slug in doc["studies"]:
        machines.setdefault(slug, machine_of(doc, slug))
    doc.pop("machine", None)
    cpu = describe_host()  # family, model, stepping and vector width: two CPUs named "AMD EPYC" differed 2x in speed
    doc.pop("commit", None)
    doc.pop("seeds", None)
    with tempfile.TemporaryDirectory(prefix="tenfold-spread-") as tmp:
        work = Path(a.work or tmp)
        # --reuse only applies to stages that finished in a project kept from an earlier run
        done = {seed: set(a.reuse) & _ran(_project_dir(seed, work, sets)) for seed in a.seeds}
        if a.refresh:
            for seed in a.seeds:
                if (_project_dir(seed, work, sets) / "params.yaml").exists():
                    _project(seed, work, refresh=True, sets=sets)
        failed = []
        for slug in a.studies:  # study by study, so that every finished study is written even if a later one stops
            per_seed: dict[int, dict] = {}
            if not a.no_locked and not sets and 0 not in a.seeds:  # the committed metrics are the default's
                per_seed[0] = json.loads((ROOT / "metrics" / f"{slug}.json").read_text())["claims"]
            try:
                for seed in a.seeds:
                    t0 = time.time()
                    metrics = _run_study(seed, slug, _project(seed, work, sets=sets), done[seed])
                    per_seed[seed] = metrics["claims"]
                    if sets:  # another configuration: keep every scalar metric per seed (counts behind the rates)
                        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) or v is None}
                        doc.setdefault("metrics", {}).setdefault(slug, {})[str(seed)] = scalars
                    print(f"{slug} seed {seed}: {time.time() - t0:.0f} s", flush=True)
            except StageFailed as e:  # the other studies still run; this one keeps its earlier entry, if any
                print(f"{slug}: {e}; skipped", file=sys.stderr, flush=True)
                failed.append(slug)
                continue
            doc["studies"][slug] = spread_entry(per_seed)
            doc["commits"][slug] = commit
            machines[slug] = cpu
            write_outputs(doc, out)
            print(f"wrote {slug} into {out}", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
