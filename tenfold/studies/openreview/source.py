"""Build the normalized tables from the configured source: the offline dumps or the live API (resumable)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import pandas as pd

from tenfold.studies.openreview.dumps import SOURCE as OFFLINE_SOURCE, load_year
from tenfold.studies.openreview.params import OpenReviewParams
from tenfold.studies.openreview.schema import concat, validate
from tenfold.studies.openreview.scrape import SOURCE_LIVE, assemble_venue, make_client, scrape_venue

log = logging.getLogger("tenfold.studies.openreview.source")


def offline_tables(p: OpenReviewParams, shared_data: str | Path) -> tuple[dict[str, pd.DataFrame], dict]:
    """Every year of `p.years` from the dumps; returns the tables and {year: source}."""
    base = Path(shared_data) / p.dump_dir
    parts = []
    for y in p.years:
        spec = p.venues.get(y)
        parts.append(load_year(base / p.dump_pattern.format(year=y), y,
                               spec.venue if spec else f"ICLR.cc/{y}/Conference", p.status_map,
                               spec.rating_scale if spec else None, base / p.citations_pattern.format(year=y)))
    tables = concat(parts)
    validate(tables)
    return tables, {y: OFFLINE_SOURCE for y in p.years}


def live_tables(p: OpenReviewParams, work_dir: str | Path, client_factory: Callable | None = None,
                on_page: Callable | None = None) -> tuple[dict[str, pd.DataFrame], dict]:
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
