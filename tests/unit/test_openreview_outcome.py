"""The OpenReview study's claims, headline, tables and notes from given analysis results (no analysis, no Prefect,
no MLflow)."""

import pandas as pd
import pytest

from tenfold.registry import validate_section
from tenfold.studies.openreview.outcome import HEADLINE_YEARS, Measured, build, headline, write_figures

P = validate_section("openreview", {"years": [2017, 2020]})


def year(repro: float, alpha: float, lr_acc: float = 0.9, by_reviewers: dict | None = None) -> dict:
    out = {
        "reproducibility": {"median": repro, "q2_5": repro - 0.05, "q97_5": repro + 0.05},
        "alpha": {"alpha": alpha, "ci": [alpha - 0.02, alpha + 0.02]},
        "alpha_3slots": {"alpha": alpha},
        "anova": {"std_between": 2.0, "std_within": 1.0},
        "lr_accuracy": lr_acc,
        "hosmer_lemeshow_p": 0.5,
        "intercept": -20.0,
        "slope": 3.5,
    }
    if by_reviewers:
        out["by_reviewers"] = by_reviewers
    return out


def inst(points: float, ci: tuple[float, float]) -> dict:
    return {
        "rows": 100,
        "top_rows": 20,
        "coef_rating": 2.3,
        "coef_top": 0.35,
        "se_top": 0.16,
        "p_top": 0.03,
        "points": points,
        "points_ci": list(ci),
    }


def cross(points=0.18, ci=(0.01, 0.35), gap=-0.03) -> dict:
    trends = pd.DataFrame(
        {
            "year": [2017, 2020],
            "submissions": [490, 2594],
            "reviewed": [480, 2200],
            "acceptance_rate": [0.4, 0.27],
            "reviews": [1500, 6900],
            "mean_rating": [5.6, 4.2],
            "sd_rating": [1.4, 1.8],
        }
    )
    first = {
        "coverage": 0.6,
        "n_female": 100,
        "n_male": 900,
        "accept_female": 0.24,
        "accept_male": 0.24 - gap,
        "accept_gap": gap,
        "accept_gap_ci": [gap - 0.05, gap + 0.05],
    }
    gender = {2020: {"first": first}}
    citations = {
        2017: {
            "papers": 400,
            **{f"spearman_{k}": {"rho": 0.5, "ci": [0.4, 0.6]} for k in ("all", "accepted", "rejected")},
        }
    }
    top10 = {"domains": ["mit.edu"], "per_year": {2020: inst(points, ci)}, "pooled": inst(points, ci)}
    return {"trends": trends, "institutions": {"paper_top10": top10}, "gender": gender, "citations": citations}


def measured(r17=0.76, r20=0.66, a17=0.57, a20=0.40, **kw) -> Measured:
    per_year = {
        2017: year(r17, a17),
        2020: year(r20, a20, by_reviewers={1: {"median": 0.6, "q2_5": 0.5, "q97_5": 0.7}}),
    }
    return Measured(per_year, cross(**kw), {"source": "offline"}, 3084, 8400)


def claims(out) -> dict:
    return {c.id: c for c in out.claims}


def test_paper_numbers_reproduce():
    out = build(P, measured())
    c = claims(out)
    assert set(c) == {
        "decision_reproducibility_2017",
        "decision_reproducibility_2020",
        "agreement_trend",
        "institution_effect",
        "gender_gap",
    }
    assert all(x.holds for x in out.claims)
    assert (
        c["agreement_trend"].measured == pytest.approx(0.17) and c["agreement_trend"].target == 0.177
    )  # printed as the paper gives it
    assert out.passed
    assert out.notes[0] == "Reproduced: `decision_reproducibility_2017` measured 0.760 (paper 0.75)."
    assert "Data source: offline." in out.notes[len(out.claims)]


def test_claims_fail_on_the_measured_numbers():
    c = claims(build(P, measured(r17=0.65, r20=0.70, a17=0.45, ci=(0.2, 0.4), gap=0.02)))
    assert not c["decision_reproducibility_2017"].holds  # 0.65 is 0.10 from the paper's 0.75
    assert not c["decision_reproducibility_2020"].holds  # within 0.05 of 0.66, but not below 2017 (0.65)
    assert not c["agreement_trend"].holds  # 2017 alpha 0.45 is 0.12 from the paper's 0.572
    assert not c["institution_effect"].holds  # CI [0.2, 0.4] excludes the paper's 0.15
    assert not c["gender_gap"].holds and c["gender_gap"].comparison == "<"  # women higher, paper: lower


def test_missing_analyses_drop_their_claims_and_a_weak_model_fails_the_check():
    m = measured()
    m.cross["institutions"] = {}
    m.cross["gender"] = {}
    m.per_year[2017]["lr_accuracy"] = 0.5
    out = build(P, m)
    assert set(claims(out)) == {"decision_reproducibility_2017", "decision_reproducibility_2020", "agreement_trend"}
    assert out.headline["institution_effect_points"] is None and out.headline["gender_accept_gap"] is None
    assert not out.passed


def test_headline_tables_and_details():
    m = measured()
    out = build(P, m)
    assert out.headline == {
        "reproducibility_2017": 0.76,
        "alpha_2017": 0.57,
        "reproducibility_2020": 0.66,
        "alpha_2020": 0.40,
        "institution_effect_points": 0.18,
        "gender_accept_gap": -0.03,
    }
    assert set(out.tables) == {"trends", "reproducibility", "by_reviewers", "institutions", "gender", "citations"}
    assert out.tables["trends"]["rows"][1] == [2020, 2594, 2200, 0.27, 6900, 4.2, 1.8]
    assert [r[1] for r in out.tables["institutions"]["rows"]] == [2020, "pooled"]
    assert out.tables["by_reviewers"]["rows"] == [[1, 0.6, 0.5, 0.7]]
    assert set(out.details["per_year"]) == {"2017", "2020"} and out.details["data_source"] == "offline"
    assert "3084 submissions, 8400 reviews" in out.description


def test_headline_keeps_at_most_the_last_years():
    many = {y: year(0.7, 0.5) for y in range(2010, 2010 + HEADLINE_YEARS + 3)}
    h = headline(P, Measured(many, cross()))
    assert len(h) == 2 * HEADLINE_YEARS + 2 <= 20 and "reproducibility_2010" not in h


def test_figures_are_written_and_listed(tmp_path):
    reviews = pd.DataFrame(
        {"year": [2017, 2017, 2020, 2020], "note_id": ["a", "b", "c", "d"], "rating": [6.0, 4.0, 8.0, 3.0]}
    )
    paper_df = pd.DataFrame(
        {
            "year": [2017, 2017, 2020, 2020],
            "note_id": ["a", "b", "c", "d"],
            "mean_rating": [6.0, 4.0, 8.0, 3.0],
            "n_reviews": [1] * 4,
            "category": ["accept", "reject", "accept", "reject"],
            "accepted": [1, 0, 1, 0],
        }
    )
    cites = pd.DataFrame({"year": [2017, 2017], "note_id": ["a", "b"], "citations": [10.0, 2.0]})
    m = measured()
    out = build(P, m)
    write_figures(out, P, m, reviews, paper_df, cites, tmp_path)
    assert [f["path"].split("/")[-1] for f in out.figures] == [
        "rating_histograms.png",
        "decision_flips.png",
        "calibration.png",
        "citations_vs_rating.png",
    ]
    assert all((tmp_path / f["path"].split("/")[-1]).exists() for f in out.figures)
    assert (tmp_path / "reproducibility.csv").read_text().splitlines()[1] == "2017,0.76,0.71,0.81"
    assert (tmp_path / "reproducibility_by_reviewers.csv").exists() and (tmp_path / "agreement.csv").exists()
