"""Each claim's spread over seeds: the CPU default run at several `common.seed` values (on demand, ~45 min per
seed on 2 cores for the whole pipeline; not part of `make bench`).

    python -m benchmarks.seed_spread                       # seeds 1 and 2 + the committed seed-0 metrics
    python -m benchmarks.seed_spread --studies maze depth  # only these studies (and the data builds they need)
    python -m benchmarks.seed_spread --seeds 0 1 2 --no-locked   # rerun seed 0 too

Each seed runs in a fresh copy of the committed project (git's index) with only `common.seed` changed, through the
same flows as `make pipeline`. Writes benchmarks/seed_spread.json (per study and claim: the measured values, the
seeds, whether each held) and benchmarks/seed_spread.md; `tenfold report` puts the spread beside each claim and
flags a claim whose margin to its target is smaller than the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _run_seed(seed: int, studies: list[str], work: Path) -> dict[str, dict]:
    from flows.common import shared_data
    from tenfold.core.config import overlay_yaml_text
    from tenfold.registry import DATA_STAGES, STUDIES, load_params

    proj = work / f"seed{seed}" / "proj"
    proj.mkdir(parents=True)
    subprocess.run(["git", "checkout-index", "--all", "--force", f"--prefix={proj}/"], cwd=ROOT, check=True)
    params = proj / "params.yaml"
    params.write_text(overlay_yaml_text(params.read_text(), {"common": {"seed": seed}}))
    env = dict(
        os.environ,
        TENFOLD_SHARED_DATA=str(shared_data(load_params(ROOT / "params.yaml", [])["common"], ROOT)),
        PREFECT_HOME=str(proj / ".prefect"),
    )
    env.pop("MLFLOW_TRACKING_URI", None)
    stages = list(DATA_STAGES)  # shared data builds (seconds), then each study's stages after those it uses
    for slug in studies:
        for owner in (*STUDIES[slug].uses, slug):
            stages += [s for s in STUDIES[owner].stages if s not in stages]
    out = {}
    for stage in stages:
        t0 = time.time()
        r = subprocess.run(
            [sys.executable, "-m", "flows.cli", "run", stage], cwd=proj, env=env, capture_output=True, text=True
        )
        print(f"  seed {seed} {stage}: exit {r.returncode}, {time.time() - t0:.0f} s", flush=True)
        if r.returncode:
            print(r.stderr[-2000:], file=sys.stderr)
            raise SystemExit(f"seed {seed}: stage {stage} failed")
    for slug in studies:
        out[slug] = json.loads((proj / "metrics" / f"{slug}.json").read_text())["claims"]
    return out


def main(argv=None) -> int:
    from tenfold.core.runtime import machine_info
    from tenfold.registry import STUDIES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--studies", nargs="+", default=list(STUDIES))
    ap.add_argument("--no-locked", action="store_true", help="do not add the committed metrics as seed 0")
    ap.add_argument("--out", default=str(HERE / "seed_spread.json"))
    a = ap.parse_args(argv)
    per_seed: dict[int, dict] = {}
    if not a.no_locked and 0 not in a.seeds:
        per_seed[0] = {s: json.loads((ROOT / "metrics" / f"{s}.json").read_text())["claims"] for s in a.studies}
    with tempfile.TemporaryDirectory(prefix="tenfold-spread-") as tmp:
        for seed in a.seeds:
            t0 = time.time()
            per_seed[seed] = _run_seed(seed, a.studies, Path(tmp))
            print(f"seed {seed}: {time.time() - t0:.0f} s", flush=True)
    studies = {}
    for slug in a.studies:
        claims = {}
        for seed, res in sorted(per_seed.items()):
            for cid, c in res[slug].items():
                e = claims.setdefault(cid, {"seeds": [], "values": [], "holds": [], "target": c["target"]})
                if c["measured"] is not None:
                    e["seeds"].append(seed)
                    e["values"].append(c["measured"])
                    e["holds"].append(c["holds"])
        studies[slug] = claims
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    doc = {"commit": commit.stdout.strip(), "seeds": sorted(per_seed), "machine": machine_info(), "studies": studies}
    Path(a.out).write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        f"# Claims over seeds {sorted(per_seed)} (commit {doc['commit']}, CPU default)",
        "",
        "| study | claim | values | min | max | spread | held |",
        "|---|---|---|---|---|---|---|",
    ]
    for slug, claims in studies.items():
        for cid, e in claims.items():
            v = e["values"]
            if v:
                lines.append(
                    f"| {slug} | `{cid}` | {', '.join(f'{x:.3g}' for x in v)} | {min(v):.3g} | {max(v):.3g} "
                    f"| {max(v) - min(v):.3g} | {sum(e['holds'])} of {len(v)} |"
                )
    Path(a.out).with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
