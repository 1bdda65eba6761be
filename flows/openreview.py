"""Study `openreview` (arXiv:2011.12919): an open review of OpenReview, ICLR 2017-2020 (and any year added).

Two flows, two DVC stages:
- `scrape_openreview_flow` (stage `scrape_openreview`): the live API through openreview-py when
  `openreview.source: live` (resumable; venues already scraped are not fetched again), else the offline dumps,
  into the normalized tables `data/openreview/{submissions,reviews,authors,decisions,citations}.parquet` and
  `data/openreview/manifest.json` (source per year).
- `openreview_flow` (stage `openreview`): the paper's analyses on those tables -> metrics/openreview.json,
  plots/openreview/, models/openreview/, an MLflow run with the registered acceptance model.

Scheduling: `deployment(cron=...)` returns a Prefect deployment of `rescrape_flow` (scrape, then analyse) that
`flows/deploy.py` can serve; a new year is a new entry under `openreview.years`/`venues` in params.yaml.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from prefect import flow
from prefect.logging import get_run_logger

from flows.common import data_root as _data_root, prepare, publish, run_flow
from tasks.openreview import analyse_cross_year, analyse_year, build_live, build_offline
from tasks.track import study_run
from tenfold.registry import get as get_study
from tenfold.core.claims import claim
from tenfold.core.plotting import write_csv
from tenfold.studies.openreview import plots as rplots
from tenfold.studies.openreview.analysis import papers
from tenfold.studies.openreview.model import AcceptanceModel
from tenfold.studies.openreview.schema import TABLES, read_tables, write_tables
from tenfold.core.runtime import atomic_torch_save, atomic_write_json, md5_file

SLUG = "openreview"
TITLE = "An Open Review of OpenReview: A Critical Analysis of the Machine Learning Conference Review Process"
DEFAULT_CRON = "0 6 1 2 *"  # 1 February: after ICLR's January decisions


def tables_dir(ctx) -> Path:
    return _data_root(ctx) / ctx.params.tables_dir


@flow(name="scrape_openreview")
def scrape_openreview_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    """Build the normalized tables from the configured source and record the source on an MLflow run."""
    t0 = time.time()
    ctx = prepare(SLUG, params_path, root)
    p, out_dir = ctx.params, tables_dir(ctx)
    with study_run(SLUG, {"common": ctx.common, SLUG: p}, stage="scrape_openreview", uri=ctx.common.mlflow_uri,
                   run_name="scrape_openreview", lock=ctx.root / "dvc.lock") as run:
        # the cursor folder is a persistent DVC output: it exists (empty) for offline builds too
        (out_dir / "_scrape").mkdir(parents=True, exist_ok=True)
        marker = out_dir / "_scrape" / "README"
        if not marker.exists():
            marker.write_text("Cursors and pages of the live openreview-py scrape (resume state); empty offline.\n")
        if p.source == "live":
            tables, sources = build_live(p, str(out_dir / "_scrape"))
        else:
            shared = Path(ctx.common.shared_data)
            tables, sources = build_offline(p, str(shared if shared.is_absolute() else ctx.root / shared))
        paths = write_tables(tables, out_dir)
        manifest = {"source": p.source, "years": {str(y): s for y, s in sources.items()},
                    "rows": {k: int(len(v)) for k, v in tables.items()},
                    "md5": {k: md5_file(v) for k, v in paths.items()}, "wall_seconds": round(time.time() - t0, 2)}
        atomic_write_json(out_dir / "manifest.json", manifest)
        run.set_tags({"data_source": p.source, **{f"data_source.{y}": s for y, s in sources.items()}})
        for name, path in paths.items():
            run.log_dataset(f"openreview_{name}", manifest["md5"][name], str(path), "scraped")
        run.log_metrics({f"rows_{k}": v for k, v in manifest["rows"].items()})
        get_run_logger().info("openreview tables (%s): %s", p.source, manifest["rows"])
        return manifest


def _claims(p, per_year: dict, cross: dict) -> list:
    c, out = p.claims, []
    years = sorted(per_year)
    repro = {y: per_year[y]["reproducibility"]["median"] for y in years}
    for y, paper in sorted(c.decision_reproducibility.items()):
        if y not in repro:
            continue
        within = abs(repro[y] - paper) <= c.reproducibility_tolerance
        trend_text, holds = "", within
        if y == max(c.decision_reproducibility) and min(c.decision_reproducibility) in repro and y in repro:
            first = min(c.decision_reproducibility)
            holds = within and repro[y] < repro[first]
            trend_text = f", and below {first} (the downward trend)"
        out.append(claim(f"decision_reproducibility_{y}",
                         f"ICLR {y}: share of accepted papers accepted again by an independent simulated committee "
                         f"of {p.analysis.mc_reviewers} (paper's Monte-Carlo method, median of "
                         f"{p.analysis.mc_iterations} iterations) within {c.reproducibility_tolerance:.2f} of the "
                         f"paper{trend_text}", paper, repro[y], paper, holds=holds,
                         note=f"2.5-97.5%: {per_year[y]['reproducibility']['q2_5']:.3f}-"
                              f"{per_year[y]['reproducibility']['q97_5']:.3f}"))
    if len(years) >= 2:
        a0, a1 = per_year[years[0]]["alpha"]["alpha"], per_year[years[-1]]["alpha"]["alpha"]
        holds = (abs(a0 - c.alpha_first) <= c.alpha_tolerance and abs(a1 - c.alpha_last) <= c.alpha_tolerance
                 and a1 < a0)
        out.append(claim("agreement_trend",
                         f"Krippendorff's alpha (ordinal) falls from {years[0]} to {years[-1]}: measured is the drop "
                         f"alpha_{years[0]} - alpha_{years[-1]}; holds if both ends are within "
                         f"{c.alpha_tolerance} of the paper and alpha falls",
                         f"{c.alpha_first} -> {c.alpha_last}", a0 - a1, c.alpha_first - c.alpha_last, holds=holds,
                         note=f"alpha {years[0]} = {a0:.3f}, {years[-1]} = {a1:.3f}"))
    inst = cross["institutions"].get("paper_top10", {}).get("per_year", {}).get(p.analysis.institution_year)
    if inst:
        lo, hi = inst["points_ci"]
        out.append(claim("institution_effect",
                         f"ICLR {p.analysis.institution_year}: top-10 institution effect on acceptance at equal mean "
                         f"rating, in rating points (logit coef ratio, {p.analysis.ci_level:.0%} delta-method CI "
                         f"[{lo:.3f}, {hi:.3f}]); holds if the CI contains the paper's estimate",
                         f"{c.institution_effect_points} points (coef 0.354, p = 0.028)", inst["points"],
                         c.institution_effect_points, holds=lo <= c.institution_effect_points <= hi,
                         note=f"coef {inst['coef_top']:.3f} (SE {inst['se_top']:.3f}, p = {inst['p_top']:.3f})"))
    g = cross["gender"].get(p.analysis.gender_year, {}).get("first", {})
    if "accept_gap" in g:
        lo, hi = g["accept_gap_ci"]
        out.append(claim("gender_gap",
                         f"ICLR {p.analysis.gender_year}: acceptance rate of papers with a female minus a male first "
                         f"author (name-inferred), {p.analysis.ci_level:.0%} CI [{lo:.3f}, {hi:.3f}]; holds if the "
                         "sign matches the paper's (women lower)",
                         f"{c.gender_acceptance_gap:+.3f} (23.5% vs 27.1%)", g["accept_gap"],
                         0.0, "<" if c.gender_acceptance_gap < 0 else ">"))
    return out


@flow(name="openreview")
def openreview_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    """The paper's analyses on the normalized tables; writes metrics, plots, the model and an MLflow run."""
    t0 = time.time()
    ctx = prepare(SLUG, params_path, root)
    log = get_run_logger()
    p, ap = ctx.params, ctx.params.analysis
    tdir = tables_dir(ctx)
    tables = read_tables(tdir)
    missing = sorted(set(p.years) - set(tables["submissions"].year))
    if missing:
        raise FileNotFoundError(f"{tdir}: no rows for years {missing}; rerun `tenfold run scrape_openreview`")
    tables = {k: v[v.year.isin(p.years)].reset_index(drop=True) for k, v in tables.items()}
    manifest = json.loads((tdir / "manifest.json").read_text()) if (tdir / "manifest.json").exists() else {}
    paper_df = papers(tables, ap.accept_categories, ap.exclude_categories)
    years = sorted(p.years)

    with study_run(SLUG, {"common": ctx.common, SLUG: p}, stage=SLUG, uri=ctx.common.mlflow_uri,
                   lock=ctx.root / "dvc.lock") as run:
        run.set_tags({"data_source": manifest.get("source", "unknown"),
                      **{f"data_source.{y}": s for y, s in manifest.get("years", {}).items()}})
        for name in TABLES:
            run.log_dataset(f"openreview_{name}", md5_file(tdir / f"{name}.parquet"),
                            str(tdir / f"{name}.parquet"), "analysis")
        futures = {y: analyse_year.submit(tables, paper_df, y, ap, ctx.seed) for y in years}
        cross = analyse_cross_year.submit(tables, paper_df, years, ap, ctx.seed).result()
        per_year = {y: f.result() for y, f in futures.items()}
        claims = _claims(p, per_year, cross)

        # ---- plots and dvc-plot CSVs
        figures = []

        def fig(name, caption):
            figures.append({"path": f"plots/{SLUG}/{name}", "caption": caption})
            return ctx.path("plots", name)

        rplots.rating_histograms(fig("rating_histograms.png", "Mean rating by decision and year"),
                                 tables["reviews"], paper_df, years)
        cy = ap.reviewer_count_year if ap.reviewer_count_year in per_year else None
        rplots.flip_probabilities(fig("decision_flips.png", "Decision-flip probability per year (median, 95% band) "
                                      "and vs reviewers per paper"),
                                  {y: per_year[y]["reproducibility"] for y in years},
                                  per_year[cy].get("by_reviewers") if cy else None, cy)
        rplots.calibration(fig("calibration.png", "Acceptance vs mean rating: observed and logistic fit"), paper_df,
                           {y: (per_year[y]["intercept"], per_year[y]["slope"]) for y in years})
        cites = paper_df.merge(tables["citations"], on=["year", "note_id"])
        if len(cites):
            rplots.citations_vs_rating(fig("citations_vs_rating.png", "Citations vs mean rating"), cites)
        write_csv(ctx.path("plots", "reproducibility.csv"), ["year", "median", "q2_5", "q97_5"],
                  [[y, *(round(per_year[y]["reproducibility"][k], 4) for k in ("median", "q2_5", "q97_5"))]
                   for y in years])
        if cy:
            write_csv(ctx.path("plots", "reproducibility_by_reviewers.csv"), ["reviewers", "median"],
                      [[n, round(v["median"], 4)] for n, v in per_year[cy]["by_reviewers"].items()])
        write_csv(ctx.path("plots", "agreement.csv"), ["year", "alpha", "alpha_3slots"],
                  [[y, round(per_year[y]["alpha"]["alpha"], 4), round(per_year[y]["alpha_3slots"]["alpha"], 4)]
                   for y in years])

        # ---- model
        model = AcceptanceModel(years, [per_year[y]["intercept"] for y in years],
                                [per_year[y]["slope"] for y in years], ap.round_mean_to)
        atomic_torch_save(ctx.path("models", "acceptance.pt"), model.state_dict())
        passed = all(per_year[y]["lr_accuracy"] >= ap.accept_min_accuracy for y in years)
        example = torch.tensor([[years[-1], 5.0], [years[-1], 6.5]])
        reg = run.log_model(model, "acceptance_model", input_example=example.numpy(), passed=passed,
                            description=f"P(accept | year, mean rating), logistic per year {years}")

        metrics = {
            "study": SLUG, "arxiv": get_study(SLUG).arxiv, "title": TITLE,
            "description": (f"ICLR {years[0]}-{years[-1]} from the {manifest.get('source', '?')} source: "
                            f"{len(tables['submissions'])} submissions, {len(tables['reviews'])} reviews. The paper's "
                            "Monte-Carlo re-review simulation, Krippendorff's alpha and ANOVA of ratings, ratings vs "
                            "citations, a logit of acceptance on mean rating and institution group, and a "
                            "name-inferred gender gap."),
            "claims": [c.as_dict() for c in claims],
            "per_year": {str(y): v for y, v in per_year.items()},
            "institutions": cross["institutions"], "gender": cross["gender"], "citations": cross["citations"],
            "tables": _tables(per_year, cross, years, ap),
            "figures": figures, "notes": _notes(claims, p, cross, manifest),
            "run": {"mlflow_run_id": run.run_id, "registered_model": f"{reg['name']} v{reg['version']}",
                    "alias_moved": passed, "data_source": manifest.get("source", "unknown"),
                    "wall_seconds": round(time.time() - t0, 1)},
        }
        for y in years:
            run.log_metrics({"reproducibility": per_year[y]["reproducibility"]["median"],
                             "alpha": per_year[y]["alpha"]["alpha"]}, step=y)
        return publish(ctx, run, metrics, claims, {}, t0, log)


def _r(v, n=3):
    return None if v is None else round(float(v), n)


def _tables(per_year, cross, years, ap) -> dict:
    tr = cross["trends"].set_index("year")
    t = {"trends": {"title": "Trends over years", "columns": ["year", "submissions", "reviewed", "acceptance rate",
                                                              "reviews", "mean rating", "SD rating"],
                    "rows": [[y, int(tr.submissions[y]), int(tr.reviewed[y]), _r(tr.acceptance_rate[y]),
                              int(tr.reviews[y]), _r(tr.mean_rating[y]), _r(tr.sd_rating[y])] for y in years]},
         "reproducibility": {
             "title": "Re-review simulation and reviewer agreement",
             "caption": ("Paper: reproducibility 0.75/0.70/0.70/0.66; alpha (scheme 1) 0.572/0.420/0.472/0.395, "
                         "(scheme 2) 0.569/0.419/0.475/0.399; ANOVA between/within 2.33/1.03, 2.11/1.19, 2.10/1.10, "
                         "2.96/1.72; Hosmer-Lemeshow p 0.61/0.61/0.010/0.40."),
             "columns": ["year", "reproducibility (median)", "2.5%", "97.5%", "alpha", "alpha CI",
                         "alpha (3 slots)", "SD between", "SD within", "LR accuracy", "HL p"],
             "rows": [[y, _r(v["reproducibility"]["median"]), _r(v["reproducibility"]["q2_5"]),
                       _r(v["reproducibility"]["q97_5"]), _r(v["alpha"]["alpha"]),
                       f"[{v['alpha']['ci'][0]:.3f}, {v['alpha']['ci'][1]:.3f}]", _r(v["alpha_3slots"]["alpha"]),
                       _r(v["anova"]["std_between"]), _r(v["anova"]["std_within"]), _r(v["lr_accuracy"]),
                       _r(v["hosmer_lemeshow_p"])] for y, v in sorted(per_year.items())]}}
    cy = ap.reviewer_count_year
    if cy in per_year and per_year[cy].get("by_reviewers"):
        t["by_reviewers"] = {"title": f"Reproducibility vs reviewers per paper (ICLR {cy})",
                             "caption": "Paper (2020, n = 1..8): 0.62, 0.64, 0.66, 0.67, 0.68, 0.69, 0.70, 0.71.",
                             "columns": ["reviewers", "median", "2.5%", "97.5%"],
                             "rows": [[n, _r(v["median"]), _r(v["q2_5"]), _r(v["q97_5"])]
                                      for n, v in per_year[cy]["by_reviewers"].items()]}
    rows = []
    for group, d in cross["institutions"].items():
        for y, v in [*d["per_year"].items(), *([("pooled", d["pooled"])] if "pooled" in d else [])]:
            rows.append([group, y, v["rows"], v["top_rows"], _r(v["coef_rating"]), _r(v["coef_top"]),
                         _r(v["se_top"]), _r(v["p_top"]), _r(v["points"]),
                         f"[{v['points_ci'][0]:.3f}, {v['points_ci'][1]:.3f}]"])
    t["institutions"] = {"title": "Institution effect on acceptance at equal mean rating (logit)",
                         "caption": ("One row per (paper, distinct institution domain), SEs clustered by paper; "
                                     "pooled adds year fixed effects. Paper (2020, CSRankings top-10): coef 0.354, "
                                     "SE 0.161, p = 0.028, 0.15 points."),
                         "columns": ["group", "year", "rows", "top rows", "coef rating", "coef top", "SE", "p",
                                     "points", "points CI"], "rows": rows}
    rows = []
    for y, g in cross["gender"].items():
        for who, v in g.items():
            rows.append([y, who, _r(v["coverage"]), v["n_female"], v["n_male"], _r(v.get("accept_female")),
                         _r(v.get("accept_male")), _r(v.get("accept_gap")),
                         f"[{v['accept_gap_ci'][0]:.3f}, {v['accept_gap_ci'][1]:.3f}]" if "accept_gap_ci" in v else "",
                         _r(v.get("rating_female")), _r(v.get("rating_male")), _r(v.get("mannwhitney_p")),
                         _r(v.get("logit_female", {}).get("coef")), _r(v.get("logit_female", {}).get("p"))])
    t["gender"] = {"title": "Acceptance and rating by name-inferred gender of first / last author",
                   "caption": ("Coverage = share of reviewed papers whose author's first name the dictionary labels. "
                               "Paper (2020, webpage pronouns + names): acceptance first author F 23.5% vs M 27.1%, "
                               "last author 26.3% vs 27.1%; mean score 4.06 vs 4.21 (Mann-Whitney p = 0.085)."),
                   "columns": ["year", "author", "coverage", "F", "M", "accept F", "accept M", "gap F-M", "gap CI",
                               "rating F", "rating M", "MW p", "logit coef F | rating", "logit p"], "rows": rows}
    rows = []
    for y, v in cross["citations"].items():
        prem = v.get("accept_premium_log", {})
        rows.append([y, v["papers"], *(_r(v[f"spearman_{k}"]["rho"]) for k in ("all", "accepted", "rejected")),
                     f"[{v['spearman_all']['ci'][0]:.3f}, {v['spearman_all']['ci'][1]:.3f}]",
                     _r(prem.get("coef")), _r(prem.get("p"))])
    t["citations"] = {"title": "Ratings vs citations (Google Scholar counts, offline 2017-2018)",
                      "caption": ("Spearman of mean rating vs citations; premium = OLS coefficient of accepted on "
                                  "log(1 + citations) at equal mean rating (HC1 SEs). Paper (Semantic Scholar "
                                  "citation rates): 0.582 (2017), 0.617 (2018)."),
                      "columns": ["year", "papers", "rho all", "rho accepted", "rho rejected", "rho CI",
                                  "accept premium (log)", "p"], "rows": rows}
    return t


def _notes(claims, p, cross, manifest) -> list[str]:
    notes = [f"{'Reproduced' if c.holds else 'Not reproduced'}: `{c.id}` measured "
             f"{'n/a' if c.measured is None else f'{c.measured:.3f}'} (paper {c.paper})." for c in claims]
    notes += [
        f"Data source: {manifest.get('source', 'unknown')}. The offline dumps come from the paperlists collection "
        "(derived from OpenReview's public pages): ratings and decisions per paper, not the review texts. Papers "
        "with status `Active` (no decision) are left out; Withdrawn, Workshop and Desk Reject count as not accepted, "
        "as in the paper's notebooks.",
        "Institutions come from author e-mail domains (profile ids carry none); the paper used CSRankings "
        "affiliations, we use the top-10 domain list in params (`openreview.analysis.top_institutions`) and, "
        "beside it, the top domains by submissions. Rows replicate a paper once per distinct domain as in the "
        "paper, but our SEs are clustered by paper (the paper's were not), so our CIs are wider.",
        "Gender is inferred from first names with gender-guesser's offline dictionary (binary labels, "
        "weak for many East-Asian names, wrong for some people, blind to non-binary identities); the paper used "
        "pronouns on personal pages first. Coverage and the unknown rate are in the gender table.",
        "Citations are Google Scholar counts collected later (2017-2018 only); the paper used Semantic Scholar "
        "citation rates (citations per day online) for all four years.",
    ]
    return notes


@flow(name="openreview-rescrape")
def rescrape_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    """Scheduled job: scrape (venues already complete are skipped, new years appended), then rerun the analysis."""
    scrape_openreview_flow(params_path, root)
    return openreview_flow(params_path, root)


def deployment(cron: str | None = None, params_path: str = "params.yaml", root: str = "."):
    """A Prefect deployment of `rescrape_flow` on `cron` (default yearly, 1 February) for flows/deploy.py:
    `prefect.serve(deployment(), ...)`. Credentials come from the worker's environment, never from parameters."""
    return rescrape_flow.to_deployment(name="openreview-yearly-rescrape", cron=cron or DEFAULT_CRON,
                                       parameters={"params_path": params_path, "root": root},
                                       tags=["tenfold", SLUG])


def main(params_path: str = "params.yaml"):
    run_flow(scrape_openreview_flow, SLUG, params_path)
    return run_flow(openreview_flow, SLUG, params_path)


if __name__ == "__main__":
    main()
