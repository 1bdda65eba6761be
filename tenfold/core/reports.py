"""Markdown reports rendered from a study's results file: the claims table first, then tables, figures, notes."""
from __future__ import annotations

import json
from pathlib import Path

from tenfold.core.claims import claims_table


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


def render(metrics: dict, report_dir: str | Path = "reports") -> str:
    """Render one study's report from its results dict. Figure paths are relative to the repo root."""
    slug = metrics["study"]
    arxiv = metrics.get("arxiv", "")
    lines = [f"# {metrics.get('title', slug)} (arXiv:{arxiv})", ""]
    if metrics.get("description"):
        lines += [metrics["description"], ""]
    held = sum(c["holds"] for c in metrics.get("claims", []))
    lines += ["## Paper claims / this run measured", "",
              f"{held} of {len(metrics.get('claims', []))} claims hold in this run. `holds` is computed by the code "
              "from the measured value and the target; nothing in this table is written by hand.", "",
              claims_table(metrics.get("claims", [])), ""]
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


def render_all(metrics_dir: str | Path = "results", report_dir: str | Path = "reports") -> list[Path]:
    """Write reports/<slug>.md for every results file and reports/index.md summarising every claim."""
    from tenfold.core.runtime import atomic_write_text

    metrics_dir, report_dir = Path(metrics_dir), Path(report_dir)
    written, index = [], ["# tenfold: every study's claims", "",
                          "| study | claim | paper | measured | target | holds |", "|---|---|---|---|---|---|"]
    for path in sorted(metrics_dir.glob("*.json")):
        try:
            m = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e}); rerun that study's stage") from None
        if "study" not in m:
            continue
        written.append(atomic_write_text(report_dir / f"{m['study']}.md", render(m, report_dir)))
        for c in m.get("claims", []):
            meas = "n/a" if c.get("measured") is None else f"{c['measured']:.4g}"
            tgt = "" if c.get("target") is None else f"{c.get('comparison', '>=')} {c['target']}"
            index.append(f"| [{m['study']}]({m['study']}.md) | `{c['id']}` | {c['paper']} | {meas} | {tgt} | "
                         f"{'yes' if c['holds'] else '**no**'} |")
    written.append(atomic_write_text(report_dir / "index.md", "\n".join(index) + "\n"))
    return written
