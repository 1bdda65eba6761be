"""From the per-year and cross-year analyses to the OpenReview study's claims, headline, tables, notes and figures
(no analysis here: the numbers come from `analysis.year_summary` and the cross-year task)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tenfold.core.claims import Claim, claim, within
from tenfold.core.outcome import Outcome
from tenfold.core.plotting import write_csv
from tenfold.studies.openreview import plots as rplots
from tenfold.studies.openreview.params import AnalysisParams, OpenReviewParams

HEADLINE_YEARS = 9  # reproducibility and alpha of at most the last 9 years in the headline (<= 20 numbers)


@dataclass
class Measured:
    """What the openreview flow measured."""

    per_year: dict[int, dict]  # year -> `analysis.year_summary`
    cross: dict  # institutions, gender, citations (year -> dict) and trends (a DataFrame)
    manifest: dict = field(default_factory=dict)  # data/openreview/manifest.json (source per year)
    submissions: int = 0
    reviews: int = 0

    @property
    def years(self) -> list[int]:
        return sorted(self.per_year)

    @property
    def source(self) -> str:
        return self.manifest.get("source", "unknown")


def _r(v, n=3):
    return None if v is None else round(float(v), n)


def claims(p: OpenReviewParams, per_year: dict, cross: dict) -> list[Claim]:
    c, out = p.claims, []
    years = sorted(per_year)
    repro = {y: per_year[y]["reproducibility"]["median"] for y in years}
    for y, paper in sorted(c.decision_reproducibility.items()):
        if y not in repro:
            continue
        close = abs(repro[y] - paper) <= c.reproducibility_tolerance
        trend_text, holds = "", close
        if y == max(c.decision_reproducibility) and min(c.decision_reproducibility) in repro and y in repro:
            first = min(c.decision_reproducibility)
            holds = close and repro[y] < repro[first]
            trend_text = f", and below {first} (the downward trend)"
        out.append(
            claim(
                f"decision_reproducibility_{y}",
                f"ICLR {y}: share of accepted papers accepted again by an independent simulated committee "
                f"of {p.analysis.mc_reviewers} (paper's Monte-Carlo method, median of "
                f"{p.analysis.mc_iterations} iterations) within {c.reproducibility_tolerance:.2f} of the "
                f"paper{trend_text}",
                paper,
                repro[y],
                paper,
                op=within(c.reproducibility_tolerance),
                holds=holds,
                note=f"2.5-97.5%: {per_year[y]['reproducibility']['q2_5']:.3f}-"
                f"{per_year[y]['reproducibility']['q97_5']:.3f}",
            )
        )
    if len(years) >= 2:
        a0, a1 = per_year[years[0]]["alpha"]["alpha"], per_year[years[-1]]["alpha"]["alpha"]
        holds = abs(a0 - c.alpha_first) <= c.alpha_tolerance and abs(a1 - c.alpha_last) <= c.alpha_tolerance and a1 < a0
        out.append(
            claim(
                "agreement_trend",
                f"Krippendorff's alpha (ordinal) falls from {years[0]} to {years[-1]}: measured is the drop "
                f"alpha_{years[0]} - alpha_{years[-1]}; holds if both ends are within "
                f"{c.alpha_tolerance} of the paper and alpha falls",
                f"{c.alpha_first} -> {c.alpha_last}",
                a0 - a1,
                round(c.alpha_first - c.alpha_last, 6),  # the paper's drop, not a float artefact
                holds=holds,
                note=f"alpha {years[0]} = {a0:.3f}, {years[-1]} = {a1:.3f}",
            )
        )
    inst = institution_row(p, cross)
    if inst:
        lo, hi = inst["points_ci"]
        out.append(
            claim(
                "institution_effect",
                f"ICLR {p.analysis.institution_year}: top-10 institution effect on acceptance at equal mean "
                f"rating, in rating points (logit coef ratio, {p.analysis.ci_level:.0%} delta-method CI "
                f"[{lo:.3f}, {hi:.3f}]); holds if the CI contains the paper's estimate",
                f"{c.institution_effect_points} points (coef 0.354, p = 0.028)",
                inst["points"],
                c.institution_effect_points,
                holds=lo <= c.institution_effect_points <= hi,
                note=f"coef {inst['coef_top']:.3f} (SE {inst['se_top']:.3f}, p = {inst['p_top']:.3f})",
            )
        )
    g = gender_row(p, cross)
    if "accept_gap" in g:
        lo, hi = g["accept_gap_ci"]
        out.append(
            claim(
                "gender_gap",
                f"ICLR {p.analysis.gender_year}: acceptance rate of papers with a female minus a male first "
                f"author (name-inferred), {p.analysis.ci_level:.0%} CI [{lo:.3f}, {hi:.3f}]; holds if the "
                "sign matches the paper's (women lower)",
                f"{c.gender_acceptance_gap:+.3f} (23.5% vs 27.1%)",
                g["accept_gap"],
                0.0,
                "<" if c.gender_acceptance_gap < 0 else ">",
            )
        )
    return out


def institution_row(p: OpenReviewParams, cross: dict) -> dict | None:
    """The paper's top-10 group in the institution year, if measured."""
    return cross["institutions"].get("paper_top10", {}).get("per_year", {}).get(p.analysis.institution_year)


def gender_row(p: OpenReviewParams, cross: dict) -> dict:
    """First-author gender gap in the gender year (empty if not measured)."""
    return cross["gender"].get(p.analysis.gender_year, {}).get("first", {})


def headline(p: OpenReviewParams, m: Measured) -> dict:
    """Reproducibility (median) and alpha per year (at most the last `HEADLINE_YEARS`), the institution effect in
    points and the first-author gender gap."""
    out = {}
    for y in m.years[-HEADLINE_YEARS:]:
        out[f"reproducibility_{y}"] = m.per_year[y]["reproducibility"]["median"]
        out[f"alpha_{y}"] = m.per_year[y]["alpha"]["alpha"]
    inst, g = institution_row(p, m.cross), gender_row(p, m.cross)
    out["institution_effect_points"] = inst["points"] if inst else None
    out["gender_accept_gap"] = g.get("accept_gap")
    return out


def build(p: OpenReviewParams, m: Measured) -> Outcome:
    years, ap = m.years, p.analysis
    cl = claims(p, m.per_year, m.cross)
    return Outcome(
        claims=cl,
        headline=headline(p, m),
        tables=tables(m.per_year, m.cross, years, ap),
        notes=notes(cl, m.manifest),
        description=(
            f"ICLR {years[0]}-{years[-1]} from the {m.manifest.get('source', '?')} source: "
            f"{m.submissions} submissions, {m.reviews} reviews. The paper's "
            "Monte-Carlo re-review simulation, Krippendorff's alpha and ANOVA of ratings, ratings vs "
            "citations, a logit of acceptance on mean rating and institution group, and a "
            "name-inferred gender gap."
        ),
        details={
            "per_year": {str(y): v for y, v in m.per_year.items()},
            "institutions": m.cross["institutions"],
            "gender": m.cross["gender"],
            "citations": m.cross["citations"],
            "data_source": m.source,
        },
        passed=all(m.per_year[y]["lr_accuracy"] >= ap.accept_min_accuracy for y in years),
    )


def tables(per_year: dict, cross: dict, years: list[int], ap: AnalysisParams) -> dict:
    tr = cross["trends"].set_index("year")
    t = {
        "trends": {
            "title": "Trends over years",
            "columns": ["year", "submissions", "reviewed", "acceptance rate", "reviews", "mean rating", "SD rating"],
            "rows": [
                [
                    y,
                    int(tr.submissions[y]),
                    int(tr.reviewed[y]),
                    _r(tr.acceptance_rate[y]),
                    int(tr.reviews[y]),
                    _r(tr.mean_rating[y]),
                    _r(tr.sd_rating[y]),
                ]
                for y in years
            ],
        },
        "reproducibility": {
            "title": "Re-review simulation and reviewer agreement",
            "caption": (
                "Paper: reproducibility 0.75/0.70/0.70/0.66; alpha (scheme 1) 0.572/0.420/0.472/0.395, "
                "(scheme 2) 0.569/0.419/0.475/0.399; ANOVA between/within 2.33/1.03, 2.11/1.19, 2.10/1.10, "
                "2.96/1.72; Hosmer-Lemeshow p 0.61/0.61/0.010/0.40."
            ),
            "columns": [
                "year",
                "reproducibility (median)",
                "2.5%",
                "97.5%",
                "alpha",
                "alpha CI",
                "alpha (3 slots)",
                "SD between",
                "SD within",
                "LR accuracy",
                "HL p",
            ],
            "rows": [
                [
                    y,
                    _r(v["reproducibility"]["median"]),
                    _r(v["reproducibility"]["q2_5"]),
                    _r(v["reproducibility"]["q97_5"]),
                    _r(v["alpha"]["alpha"]),
                    f"[{v['alpha']['ci'][0]:.3f}, {v['alpha']['ci'][1]:.3f}]",
                    _r(v["alpha_3slots"]["alpha"]),
                    _r(v["anova"]["std_between"]),
                    _r(v["anova"]["std_within"]),
                    _r(v["lr_accuracy"]),
                    _r(v["hosmer_lemeshow_p"]),
                ]
                for y, v in sorted(per_year.items())
            ],
        },
    }
    cy = ap.reviewer_count_year
    if cy in per_year and per_year[cy].get("by_reviewers"):
        t["by_reviewers"] = {
            "title": f"Reproducibility vs reviewers per paper (ICLR {cy})",
            "caption": "Paper (2020, n = 1..8): 0.62, 0.64, 0.66, 0.67, 0.68, 0.69, 0.70, 0.71.",
            "columns": ["reviewers", "median", "2.5%", "97.5%"],
            "rows": [
                [n, _r(v["median"]), _r(v["q2_5"]), _r(v["q97_5"])] for n, v in per_year[cy]["by_reviewers"].items()
            ],
        }
    t["institutions"] = _institutions_table(cross["institutions"])
    t["gender"] = _gender_table(cross["gender"])
    t["citations"] = _citations_table(cross["citations"])
    return t


def _institutions_table(institutions: dict) -> dict:
    rows = []
    for group, d in institutions.items():
        for y, v in [*d["per_year"].items(), *([("pooled", d["pooled"])] if "pooled" in d else [])]:
            rows.append(
                [
                    group,
                    y,
                    v["rows"],
                    v["top_rows"],
                    _r(v["coef_rating"]),
                    _r(v["coef_top"]),
                    _r(v["se_top"]),
                    _r(v["p_top"]),
                    _r(v["points"]),
                    f"[{v['points_ci'][0]:.3f}, {v['points_ci'][1]:.3f}]",
                ]
            )
    return {
        "title": "Institution effect on acceptance at equal mean rating (logit)",
        "caption": (
            "One row per (paper, distinct institution domain), SEs clustered by paper; "
            "pooled adds year fixed effects. Paper (2020, CSRankings top-10): coef 0.354, "
            "SE 0.161, p = 0.028, 0.15 points."
        ),
        "columns": ["group", "year", "rows", "top rows", "coef rating", "coef top", "SE", "p", "points", "points CI"],
        "rows": rows,
    }


def _gender_table(gender: dict) -> dict:
    rows = []
    for y, g in gender.items():
        for who, v in g.items():
            rows.append(
                [
                    y,
                    who,
                    _r(v["coverage"]),
                    v["n_female"],
                    v["n_male"],
                    _r(v.get("accept_female")),
                    _r(v.get("accept_male")),
                    _r(v.get("accept_gap")),
                    f"[{v['accept_gap_ci'][0]:.3f}, {v['accept_gap_ci'][1]:.3f}]" if "accept_gap_ci" in v else "",
                    _r(v.get("rating_female")),
                    _r(v.get("rating_male")),
                    _r(v.get("mannwhitney_p")),
                    _r(v.get("logit_female", {}).get("coef")),
                    _r(v.get("logit_female", {}).get("p")),
                ]
            )
    return {
        "title": "Acceptance and rating by name-inferred gender of first / last author",
        "caption": (
            "Coverage = share of reviewed papers whose author's first name the dictionary labels. "
            "Paper (2020, webpage pronouns + names): acceptance first author F 23.5% vs M 27.1%, "
            "last author 26.3% vs 27.1%; mean score 4.06 vs 4.21 (Mann-Whitney p = 0.085)."
        ),
        "columns": [
            "year",
            "author",
            "coverage",
            "F",
            "M",
            "accept F",
            "accept M",
            "gap F-M",
            "gap CI",
            "rating F",
            "rating M",
            "MW p",
            "logit coef F | rating",
            "logit p",
        ],
        "rows": rows,
    }


def _citations_table(citations: dict) -> dict:
    rows = []
    for y, v in citations.items():
        prem = v.get("accept_premium_log", {})
        rows.append(
            [
                y,
                v["papers"],
                *(_r(v[f"spearman_{k}"]["rho"]) for k in ("all", "accepted", "rejected")),
                f"[{v['spearman_all']['ci'][0]:.3f}, {v['spearman_all']['ci'][1]:.3f}]",
                _r(prem.get("coef")),
                _r(prem.get("p")),
            ]
        )
    return {
        "title": "Ratings vs citations (Google Scholar counts, offline 2017-2018)",
        "caption": (
            "Spearman of mean rating vs citations; premium = OLS coefficient of accepted on "
            "log(1 + citations) at equal mean rating (HC1 SEs). Paper (Semantic Scholar "
            "citation rates): 0.582 (2017), 0.617 (2018)."
        ),
        "columns": ["year", "papers", "rho all", "rho accepted", "rho rejected", "rho CI", "accept premium (log)", "p"],
        "rows": rows,
    }


def notes(claims: list[Claim], manifest: dict) -> list[str]:
    out = [
        f"{'Reproduced' if c.holds else 'Not reproduced'}: `{c.id}` measured "
        f"{'n/a' if c.measured is None else f'{c.measured:.3f}'} (paper {c.paper})."
        for c in claims
    ]
    out += [
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
    return out


def write_figures(
    out: Outcome,
    p: OpenReviewParams,
    m: Measured,
    reviews: pd.DataFrame,
    paper_df: pd.DataFrame,
    citations: pd.DataFrame,
    plot_dir: Path,
    rel: str = "plots/openreview",
) -> None:
    """Rating histograms, decision flips, calibration, citations vs rating (PNG) and the CSVs for `dvc plots`;
    sets `out.figures`."""
    ap, years, per_year = p.analysis, m.years, m.per_year
    figures = []

    def fig(name, caption):
        figures.append({"path": f"{rel}/{name}", "caption": caption})
        return plot_dir / name

    rplots.rating_histograms(fig("rating_histograms.png", "Mean rating by decision and year"), reviews, paper_df, years)
    cy = ap.reviewer_count_year if ap.reviewer_count_year in per_year else None
    rplots.flip_probabilities(
        fig("decision_flips.png", "Decision-flip probability per year (median, 95% band) and vs reviewers per paper"),
        {y: per_year[y]["reproducibility"] for y in years},
        per_year[cy].get("by_reviewers") if cy else None,
        cy,
    )
    rplots.calibration(
        fig("calibration.png", "Acceptance vs mean rating: observed and logistic fit"),
        paper_df,
        {y: (per_year[y]["intercept"], per_year[y]["slope"]) for y in years},
    )
    cites = paper_df.merge(citations, on=["year", "note_id"])
    if len(cites):
        rplots.citations_vs_rating(fig("citations_vs_rating.png", "Citations vs mean rating"), cites)
    write_csv(
        plot_dir / "reproducibility.csv",
        ["year", "median", "q2_5", "q97_5"],
        [[y, *(round(per_year[y]["reproducibility"][k], 4) for k in ("median", "q2_5", "q97_5"))] for y in years],
    )
    if cy:
        write_csv(
            plot_dir / "reproducibility_by_reviewers.csv",
            ["reviewers", "median"],
            [[n, round(v["median"], 4)] for n, v in per_year[cy]["by_reviewers"].items()],
        )
    write_csv(
        plot_dir / "agreement.csv",
        ["year", "alpha", "alpha_3slots"],
        [[y, round(per_year[y]["alpha"]["alpha"], 4), round(per_year[y]["alpha_3slots"]["alpha"], 4)] for y in years],
    )
    out.figures = figures
