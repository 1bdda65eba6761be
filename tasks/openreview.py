"""Prefect tasks of the OpenReview study: build the tables (offline or live), read them for the analysis, analyse
each year, cross-year."""

from __future__ import annotations

import numpy as np
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks._task import task
from tasks.progress import progress
from tenfold.studies.openreview import analysis as A
from tenfold.studies.openreview.source import analysis_tables, live_tables, offline_tables


@task(name="openreview-offline-tables", cache_policy=NO_CACHE)
def build_offline(p, shared_data: str):
    tables, sources = offline_tables(p, shared_data)
    get_run_logger().info("offline dumps: %s", {k: len(v) for k, v in tables.items()})
    return tables, sources


@task(name="openreview-scrape", cache_policy=NO_CACHE)
def build_live(p, work_dir: str, show_progress: bool = False):
    log = get_run_logger()
    with progress("openreview: scrape pages", None, show_progress) as step:

        def on_page(inv, k, n):
            log.info("%s page %d: %d notes", inv, k, n)
            step()

        tables, sources = live_tables(p, work_dir, on_page=on_page)
    log.info("live scrape: %s", {k: len(v) for k, v in tables.items()})
    return tables, sources


@task(name="openreview-read-tables", cache_policy=NO_CACHE)
def read_tables_for_analysis(tables_dir: str, years: list[int], ap):
    """The normalized tables of `years`, the per-paper frame and the manifest."""
    tables, manifest = analysis_tables(tables_dir, years)
    return tables, A.papers(tables, ap.accept_categories, ap.exclude_categories), manifest


def _year(tables, y):
    return {k: v[v.year == y] for k, v in tables.items()}


@task(name="openreview-year", cache_policy=NO_CACHE)
def analyse_year(tables, paper_df, year: int, ap, seed: int) -> dict:
    """The per-year analyses with their own random stream (`seed`, one per year from the flow): results do not
    depend on scheduling."""
    rng = np.random.default_rng(seed)
    counts = ap.reviewer_counts if year == ap.reviewer_count_year else None
    out = A.year_summary(
        _year(tables, year), paper_df[paper_df.year == year], ap, rng, counts, ap.reviewer_count_iterations
    )
    get_run_logger().info(
        "ICLR %d: reproducibility %.3f, alpha %.3f", year, out["reproducibility"]["median"], out["alpha"]["alpha"]
    )
    return out


@task(name="openreview-cross-year", cache_policy=NO_CACHE)
def analyse_cross_year(tables, paper_df, years: list[int], ap, seed: int) -> dict:
    """Citations vs rating, institution effect (per year and pooled), gender gap, trends."""
    rng = np.random.default_rng(seed)
    authors, cites = tables["authors"], tables["citations"]
    lists = {
        "paper_top10": ap.top_institutions,
        "top_by_submissions": A.top_by_submissions(authors, ap.top_k_by_submissions, ap.personal_domains),
    }
    inst = {}
    for name, group in lists.items():
        if not group:
            continue
        inst[name] = {"domains": group, "per_year": {}}
        for y in years:
            inst[name]["per_year"][y] = A.institution_effect(
                paper_df[paper_df.year == y], authors, group, ap.personal_domains, ap.ci_level
            )
        if len(years) > 1:
            inst[name]["pooled"] = A.institution_effect(
                paper_df, authors, group, ap.personal_domains, ap.ci_level, pooled=True
            )
    genders = A.author_genders(authors, ap.gender_min_confidence)
    gender = {y: A.gender_gap(paper_df[paper_df.year == y], genders, ap.ci_level, cites) for y in years}
    cit_years = sorted(set(cites.year) & set(years))
    citations = {
        y: A.citations_vs_rating(paper_df[paper_df.year == y], cites, rng, ap.n_boot, ap.ci_level) for y in cit_years
    }
    return {"institutions": inst, "gender": gender, "citations": citations, "trends": A.trends(tables, paper_df)}
