"""Study `openreview` (arXiv:2011.12919): an open review of OpenReview, ICLR 2017-2020 (and any year added).

Two flows, two DVC stages:
- `scrape_openreview_flow` (stage `scrape_openreview`): the live API through openreview-py when
  `openreview.source: live` (resumable; venues already scraped are not fetched again), else the offline dumps,
  into the normalized tables `data/openreview/{submissions,reviews,authors,decisions,citations}.parquet` and
  `data/openreview/manifest.json` (source per year).
- `openreview_flow` (stage `openreview`): the paper's analyses on those tables -> results/openreview.json,
  metrics/openreview.json, plots/openreview/, models/openreview/, an MLflow run with the registered acceptance
  model.

Scheduling: flows/deploy.py serves the yearly run (the registry's schedule): it sets `openreview.snapshot` to the
run's date and runs `dvc repro`, so the re-scrape and the analysis go through DVC; a new year is a new entry under
`openreview.years`/`venues` in params.yaml.
Credentials (OPENREVIEW_USERNAME / OPENREVIEW_PASSWORD) are read by openreview-py from the environment; nothing
here reads, logs or passes them.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from prefect import flow
from prefect.logging import get_run_logger

from flows.common import StudyContext, prepare, publish, tracked
from tasks.openreview import analyse_cross_year, analyse_year, build_live, build_offline, read_tables_for_analysis
from tenfold.core.runtime import atomic_torch_save, md5_file
from tenfold.studies.openreview import outcome
from tenfold.studies.openreview.model import AcceptanceModel
from tenfold.studies.openreview.schema import TABLES
from tenfold.studies.openreview.source import cursor_dir, save_tables

SLUG = "openreview"


def tables_dir(ctx: StudyContext) -> Path:
    return ctx.data_root / ctx.params.tables_dir


@flow(name="scrape_openreview")
def scrape_openreview_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    """Build the normalized tables from the configured source and record the source on an MLflow run."""
    ctx = prepare(SLUG, params_path, root)
    p, out_dir = ctx.params, tables_dir(ctx)
    with tracked(ctx, stage="scrape_openreview", tags={"data_source": p.source}) as run:
        run.set_tags({"mlflow.runName": "scrape_openreview"})
        work = cursor_dir(out_dir) / p.snapshot  # resume state per snapshot: a new snapshot fetches every venue again
        if p.source == "live":
            work.mkdir(parents=True, exist_ok=True)
            built = build_live.submit(p, str(work), ctx.progress)
        else:
            built = build_offline.submit(p, str(ctx.shared_data))
        tables, sources = built.result()
        manifest, paths = save_tables(tables, sources, p.source, out_dir, time.time() - ctx.started)
        run.set_tags({f"data_source.{y}": s for y, s in sources.items()})
        for name, path in paths.items():
            run.log_dataset(f"openreview_{name}", manifest["md5"][name], str(path), "scraped")
        run.log_metrics({f"rows_{k}": v for k, v in manifest["rows"].items()})
        get_run_logger().info("openreview tables (%s): %s", p.source, manifest["rows"])
        return manifest


@flow(name="openreview")
def openreview_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    """The paper's analyses on the normalized tables; publishes results, metrics, plots, the model and a run."""
    ctx = prepare(SLUG, params_path, root)
    p, ap, tdir, years = ctx.params, ctx.params.analysis, tables_dir(ctx), sorted(ctx.params.years)
    tables, paper_df, manifest = read_tables_for_analysis.submit(str(tdir), years, ap).result()
    tags = {
        "data_source": manifest.get("source", "unknown"),
        **{f"data_source.{y}": s for y, s in manifest.get("years", {}).items()},
    }
    with tracked(ctx, tags=tags) as run:
        for name in TABLES:
            run.log_dataset(
                f"openreview_{name}", md5_file(tdir / f"{name}.parquet"), str(tdir / f"{name}.parquet"), "analysis"
            )
        futures = {y: analyse_year.submit(tables, paper_df, y, ap, ctx.seed_for("year", y)) for y in years}
        cross = analyse_cross_year.submit(tables, paper_df, years, ap, ctx.seed_for("cross_year")).result()
        measured = outcome.Measured(
            {y: f.result() for y, f in futures.items()},
            cross,
            manifest,
            len(tables["submissions"]),
            len(tables["reviews"]),
        )
        out = outcome.build(p, measured)
        outcome.write_figures(out, p, measured, tables["reviews"], paper_df, tables["citations"], ctx.path("plots"))
        per_year = measured.per_year
        model = AcceptanceModel(
            years, [per_year[y]["intercept"] for y in years], [per_year[y]["slope"] for y in years], ap.round_mean_to
        )
        atomic_torch_save(ctx.path("models", "acceptance.pt"), model.state_dict())
        for y in years:
            run.log_metrics(
                {"reproducibility": per_year[y]["reproducibility"]["median"], "alpha": per_year[y]["alpha"]["alpha"]},
                step=y,
            )
        return publish(
            ctx,
            run,
            out,
            model=model,
            model_name="acceptance_model",
            input_example=torch.tensor([[years[-1], 5.0], [years[-1], 6.5]]).numpy(),
            model_description=f"P(accept | year, mean rating), logistic per year {years}",
            log=get_run_logger(),
        )
