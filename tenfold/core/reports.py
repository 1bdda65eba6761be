"""Markdown reports rendered from a study's results file: the claims table first, then tables, figures, notes."""

from __future__ import annotations

import json
from pathlib import Path

from tenfold.core.claims import meets, tolerance_of


def study_seeds(spreads: dict | None) -> list[int]:
    """Every seed the seed-spread benchmark ran for one study: the union over its claims (a claim that is n/a at a
    seed has no value there, so its own `seeds` can be shorter)."""
    return sorted({int(s) for v in (spreads or {}).values() for s in v.get("seeds", [])})


def _with_this_run(c: dict, spread: dict, run_seed: int | None) -> tuple[list, list | None, bool]:
    """The spread's values and verdicts, plus this run's measurement when the spread has a value at this run's seed
    that differs from it (the spread was measured on another CPU or at another commit): then the range covers every
    measurement known, not only the benchmark's."""
    values, held = list(spread.get("values", [])), spread.get("holds")
    seeds = [int(s) for s in spread.get("seeds", [])]
    m = c.get("measured")
    if run_seed is None or m is None or run_seed not in seeds or len(seeds) != len(values):
        return values, held, False
    at = values[seeds.index(run_seed)]
    if abs(float(at) - float(m)) <= 1e-9 * max(1.0, abs(float(m))):
        return values, held, False
    return values + [m], (list(held) + [bool(c.get("holds"))]) if held else held, True


def _not_measured_at(seeds: list[int]) -> str:
    return f"n/a at seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def spread_verdict(
    c: dict, spread: dict | None, seeds_run: list[int] | None = None, run_seed: int | None = None
) -> tuple[str, bool]:
    """The seed spread of a claim's measurement (from benchmarks/seed_spread.json: values over >= 3 seeds) as a
    table cell, and whether the claim's margin to its target is smaller than that spread (then its `holds` could
    flip with the seed or the CPU). `seeds_run`: every seed the study ran (`study_seeds`); the cell names the seeds
    where the claim was not measurable, and a claim measured at one seed only shows that value; one the benchmark
    ran but never measured shows those seeds ("n/a at seeds 0, 1, 2")."""
    if not (spread or {}).get("values"):
        return (_not_measured_at(seeds_run) if spread is not None and seeds_run else ""), False
    seeds = [int(s) for s in spread.get("seeds", [])]
    missing = [s for s in seeds_run or [] if seeds and s not in seeds]
    na = f"; {_not_measured_at(missing)}" if missing else ""
    values, held, extra = _with_this_run(c, spread, run_seed)
    if len(values) == 1:
        at = f"seed {seeds[0]} only" if seeds else "1 seed"
        return f"{values[0]:.3g} ({at}" + (", held" if held and held[0] else "") + f"{na})", False
    lo, hi = min(values), max(values)
    n = len(values) - extra
    runs = f"{n} seeds" + (" + this run" if extra else "")
    cell = f"{lo:.3g} to {hi:.3g} ({runs}" + (f", held in {sum(map(bool, held))}" if held else "") + f"{na})"
    if c.get("measured") is None or c.get("target") is None:
        return cell, False
    gap = abs(float(c["measured"]) - float(c["target"]))
    tol = tolerance_of(c.get("comparison", ""))
    margin = gap if tol is None else abs(tol - gap)  # a tolerance claim flips at the edge of its band
    return cell, margin < (hi - lo)


def holds_cell(c: dict, fragile: bool = False) -> str:
    """The `holds` cell of a claim: yes or **no**; when a claim fails although its measured value meets the target
    (a claim with a second condition, e.g. CutMix's cut that must also keep clean accuracy), the claim's own note,
    which says what failed; then the seed-spread flag."""
    mark = "yes" if c["holds"] else "**no**"
    if not c["holds"] and c.get("note") and meets(c.get("comparison", ""), c.get("measured"), c.get("target")):
        mark += f" ({c['note']})"
    return mark + (" (margin < seed spread)" if fragile else "")


def claims_table(claims: list[dict], spreads: dict | None = None, run_seed: int | None = None) -> str:
    """Markdown table 'paper claims / this run measured' (with the seed spread when `spreads` is given)."""
    spreads = spreads or {}
    if not spreads:
        rows = ["| id | claim | paper | this run measured | target | holds |", "|---|---|---|---|---|---|"]
    else:
        rows = [
            "| id | claim | paper | this run measured | seed spread | target | holds |",
            "|---|---|---|---|---|---|---|",
        ]
    for c in claims:
        tgt = "" if c.get("target") is None else f"{c.get('comparison', '>=')} {c['target']}"
        meas = "n/a" if c.get("measured") is None else f"{c['measured']:.4g}"
        if not spreads:
            rows.append(f"| `{c['id']}` | {c['claim']} | {c['paper']} | {meas} | {tgt} | {holds_cell(c)} |")
            continue
        cell, fragile = spread_verdict(c, spreads.get(c["id"]), study_seeds(spreads), run_seed)
        mark = holds_cell(c, fragile)
        rows.append(f"| `{c['id']}` | {c['claim']} | {c['paper']} | {meas} | {cell} | {tgt} | {mark} |")
    return "\n".join(rows)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if v is None:
        return ""
    return str(v)


def table_md(columns: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def render(
    metrics: dict, report_dir: str | Path = "reports", spreads: dict | None = None, run_seed: int | None = None
) -> str:
    """Render one study's report from its results dict. Figure paths are relative to the repo root. `spreads`
    (claim id -> {"values": [...]}) adds each trained claim's seed spread and flags a margin smaller than it."""
    slug = metrics["study"]
    arxiv = metrics.get("arxiv", "")
    lines = [f"# {metrics.get('title', slug)} (arXiv:{arxiv})", ""]
    if metrics.get("description"):
        lines += [metrics["description"], ""]
    held = sum(c["holds"] for c in metrics.get("claims", []))
    lines += [
        "## Paper claims / this run measured",
        "",
        f"{held} of {len(metrics.get('claims', []))} claims hold in this run. `holds` is computed by the code "
        "from the measured value and the target; nothing in this table is written by hand.",
        "",
        claims_table(metrics.get("claims", []), spreads, run_seed),
        "",
    ]
    if spreads:
        lines += [
            "Seed spread: the claim's measurement over several seeds of the CPU default "
            "(`benchmarks/seed_spread.json`, from `python -m benchmarks.seed_spread`). Another seed or "
            "another CPU gives other floats; a claim whose margin to its target is smaller than that spread "
            "is flagged. Where this run's value differs from the spread's value at this run's seed (the spread "
            "was measured on another CPU or at another commit), the range includes this run (`+ this run`).",
            "",
        ]
    for name, t in (metrics.get("tables") or {}).items():
        lines += [f"## {t.get('title', name)}", ""]
        if t.get("caption"):
            lines += [t["caption"], ""]
        lines += [table_md(t["columns"], t["rows"]), ""]
    figs = metrics.get("figures") or []
    if figs:
        lines += ["## Figures", ""]
        for f in figs:
            rel = Path("..") / f["path"] if not Path(report_dir).is_absolute() else Path(f["path"]).resolve()
            lines += [f"**{f.get('caption', '')}**", "", f"![{f.get('caption', '')}]({rel.as_posix()})", ""]
    if metrics.get("notes"):
        lines += ["## Honest notes", ""] + [f"- {n}" for n in metrics["notes"]] + [""]
    run = metrics.get("run") or {}
    if run:
        lines += ["## This run", ""] + [f"- {k}: `{_fmt(v)}`" for k, v in run.items()] + [""]
    return "\n".join(lines)


def render_all(
    metrics_dir: str | Path = "results",
    report_dir: str | Path = "reports",
    spread_file: str | Path | None = None,
    run_seed: int | None = None,
) -> list[Path]:
    """Write reports/<slug>.md for every results file and reports/index.md summarising every claim. `run_seed`:
    the seed the results were run at (`common.seed`), to tell whether the spread file holds this very run."""
    from tenfold.core.runtime import atomic_write_text

    metrics_dir, report_dir = Path(metrics_dir), Path(report_dir)
    all_spreads = {}
    if spread_file is not None and Path(spread_file).exists():
        all_spreads = json.loads(Path(spread_file).read_text()).get("studies", {})
    written, index = (
        [],
        [
            "# tenfold: every study's claims",
            "",
            "| study | claim | paper | measured | seed spread | target | holds |",
            "|---|---|---|---|---|---|---|",
        ],
    )
    for path in sorted(metrics_dir.glob("*.json")):
        try:
            m = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e}); rerun that study's stage") from None
        if "study" not in m:
            continue
        spreads = all_spreads.get(m["study"], {})
        written.append(atomic_write_text(report_dir / f"{m['study']}.md", render(m, report_dir, spreads, run_seed)))
        for c in m.get("claims", []):
            meas = "n/a" if c.get("measured") is None else f"{c['measured']:.4g}"
            tgt = "" if c.get("target") is None else f"{c.get('comparison', '>=')} {c['target']}"
            cell, fragile = spread_verdict(c, spreads.get(c["id"]), study_seeds(spreads), run_seed)
            holds = holds_cell(c, fragile)
            index.append(
                f"| [{m['study']}]({m['study']}.md) | `{c['id']}` | {c['paper']} | {meas} | {cell} | {tgt} | {holds} |"
            )
    written.append(atomic_write_text(report_dir / "index.md", "\n".join(index) + "\n"))
    return written
