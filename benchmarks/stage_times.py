"""Per-study wall and CPU time of the last run of each study (from `results/<slug>.json`, written by `publish`),
kept in a marked section of `benchmarks/results.md` (`make bench` keeps that section). Run after `make pipeline`:

    python -m benchmarks.stage_times            # prints the table and updates benchmarks/results.md
    python -m benchmarks.stage_times --print    # only print it

Wall time covers the flow from `prepare` to `publish` (no interpreter start, no DVC); CPU time is that process's
(all threads; work on Dask workers is not counted). Budgets from the issues: each study <= 10 min on 2 cores.

On 2 cores `make pipeline` runs one stage at a time; with `JOBS=2`, or on a machine with more cores than one stage's
workers, scripts/repro.py runs independent stages side by side, and a study's wall time then includes the cores it
shared: a wall within 10 minutes is within budget alone too; a longer one is judged on its CPU seconds (alone on 2
cores the study flows took 1.06-1.34 times CPU/2, `ALONE_FACTOR` is the largest). A wall over 10 minutes with CPU
seconds that fit is marked "yes alone (~N s)": an estimate, not a measurement.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- stage-times:begin -->", "<!-- stage-times:end -->"
BUDGET_SECONDS = 600.0
ALONE_FACTOR = 1.34  # wall / (CPU s / 2) of the study flows run one at a time (7de8bd0's locked run, 2 cores)


def within_budget(wall: float, cpu: float | None, cores: int = 2) -> str:
    """'yes' when the wall is within budget; else, when the wall shared cores with another stage, whether the study
    alone would be (CPU s / cores x ALONE_FACTOR)."""
    if wall <= BUDGET_SECONDS:
        return "yes"
    if cpu is not None and cpu / cores * ALONE_FACTOR <= BUDGET_SECONDS:
        return f"yes alone (~{cpu / cores * ALONE_FACTOR:.0f} s)"
    return "**no**"


def host(cpuinfo: str | None = None, capability: str | None = None) -> str:
    """The CPU this table is made on, by family, model, stepping and vector width (`runtime.describe_host`): "AMD
    EPYC" alone named two hosts that ran the same code at twice the speed of each other."""
    from tenfold.core.runtime import describe_host

    return describe_host(cpuinfo, capability)


def table(results_dir: Path, host_line: str | None = None) -> str:
    rows, total_wall, total_cpu = [], 0.0, 0.0
    for f in sorted(results_dir.glob("*.json")):
        run = json.loads(f.read_text()).get("run", {})
        wall, cpu = run.get("wall_seconds"), run.get("cpu_seconds")
        if wall is None:
            continue
        total_wall += wall
        total_cpu += cpu or 0.0
        within = within_budget(wall, cpu)
        rows.append(f"| `{f.stem}` | {wall:.0f} | {'' if cpu is None else f'{cpu:.0f}'} | {within} |")
    head = [
        "## Per-study times of the last pipeline run",
        "",
        f"From `results/*.json`; wall and CPU seconds of each study flow. Host when this table was made (the run's "
        f"host when it is made right after the run): {host_line or host()}.",
        "",
        "| study | wall s | CPU s | within 10 min |",
        "|---|---|---|---|",
    ]
    return "\n".join([*head, *rows, f"| all studies | {total_wall:.0f} | {total_cpu:.0f} | |"])


def splice(text: str, block: str) -> str:
    """`text` with the marked section replaced by `block` (appended when there is none)."""
    marked = f"{BEGIN}\n{block}\n{END}"
    if BEGIN in text and END in text:
        return text[: text.index(BEGIN)] + marked + text[text.index(END) + len(END) :]
    return text.rstrip("\n") + "\n\n" + marked + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(ROOT / "results"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.md"))
    ap.add_argument("--print", action="store_true", dest="print_only")
    a = ap.parse_args(argv)
    block = table(Path(a.results))
    print(block)
    if not a.print_only:
        out = Path(a.out)
        out.write_text(splice(out.read_text() if out.exists() else "", block))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
