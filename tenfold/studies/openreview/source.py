"""Build the normalized tables from the configured source: the offline dumps or the live API (resumable)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from tenfold.core.runtime import atomic_write_json, md5_file
from tenfold.studies.openreview.dumps import SOURCE as OFFLINE_SOURCE
from tenfold.studies.openreview.dumps import load_year
from tenfold.studies.openreview.params import OpenReviewParams
from tenfold.studies.openreview.schema import concat, read_tables, validate, write_tables
from tenfold.studies.openreview.scrape import SOURCE_LIVE, assemble_venue, make_client, scrape_venue

log = logging.getLogger("tenfold.studies.openreview.source")


def offline_tables(p: OpenReviewParams, shared_data: str | Path) -> tuple[dict[str, pd.DataFrame], dict]:
    """Every year of `p.years` from the dumps; returns the tables and {year: source}."""
    base = Path(shared_data) / p.dump_dir
    parts = []
    for y in p.years:
        spec = p.venues.get(y)
        parts.append(
            load_year(
                base / p.dump_pattern.format(year=y),
                y,
                spec.venue if spec else f"ICLR.cc/{y}/Conference",
                p.status_map,
                spec.rating_scale if spec else None,
                base / p.citations_pattern.format(year=y),
            )
        )
    tables = concat(parts)
    validate(tables)
    return tables, {y: OFFLINE_SOURCE for y in p.years}


def live_tables(
    p: OpenReviewParams, work_dir: str | Path, client_factory: Callable | None = None, on_page: Callable | None = None
) -> tuple[dict[str, pd.DataFrame], dict]:
    """Scrape every year of `p.years` (venues already complete in `work_dir` are not fetched again), then
    assemble. `client_factory(spec, scrape_params)` defaults to `make_client` (openreview-py)."""
    client_factory = client_factory or make_client
    parts = []
    for y in p.years:
        spec = p.venues[y]
        client = client_factory(spec, p.scrape)
        stats = scrape_venue(client, spec, y, work_dir, p.scrape, p.status_map, on_page)
        log.info("%s: %d new pages", spec.venue, stats["pages"])
        parts.append(assemble_venue(work_dir, spec))
    tables = concat(parts)
    validate(tables)
    return tables, {y: SOURCE_LIVE for y in p.years}


def cursor_dir(tables_dir: str | Path) -> Path:
    """`<tables_dir>/_scrape`, the live scrape's resume state: a persistent DVC output, so it exists (with a
    README) for offline builds too."""
    d = Path(tables_dir) / "_scrape"
    d.mkdir(parents=True, exist_ok=True)
    marker = d / "README"
    if not marker.exists():
        marker.write_text("Cursors and pages of the live openreview-py scrape (resume state); empty offline.\n")
    return d


def save_tables(
    tables: dict[str, pd.DataFrame], sources: dict, source: str, tables_dir: str | Path, seconds: float
) -> tuple[dict, dict[str, Path]]:
    """Write the tables and `manifest.json` (source, source per year, rows and md5 per table, wall seconds);
    returns the manifest and the table paths."""
    paths = write_tables(tables, tables_dir)
    manifest = {
        "source": source,
        "years": {str(y): s for y, s in sources.items()},
        "rows": {k: int(len(v)) for k, v in tables.items()},
        "md5": {k: md5_file(v) for k, v in paths.items()},
        "wall_seconds": round(seconds, 2),
    }
    atomic_write_json(Path(tables_dir) / "manifest.json", manifest)
    return manifest, paths


def analysis_tables(tables_dir: str | Path, years: list[int]) -> tuple[dict[str, pd.DataFrame], dict]:
    """The tables restricted to `years` (each must have rows) and the manifest ({} if absent)."""
    tdir = Path(tables_dir)
    tables = read_tables(tdir)
    missing = sorted(set(years) - set(tables["submissions"].year))
    if missing:
        raise FileNotFoundError(f"{tdir}: no rows for years {missing}; rerun `tenfold run scrape_openreview`")
    tables = {k: v[v.year.isin(years)].reset_index(drop=True) for k, v in tables.items()}
    manifest = json.loads((tdir / "manifest.json").read_text()) if (tdir / "manifest.json").exists() else {}
    return tables, manifest
