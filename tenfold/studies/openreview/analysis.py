"""The paper's analyses of the review process, on the normalized tables (arXiv:2011.12919 / 2010.05137).

- `reproducibility`: the Monte-Carlo re-review experiment of the paper's `bootstrap_with_lm` notebook.
- `ordinal_alpha` / `alpha_with_ci`: Krippendorff's alpha (ordinal) from the coincidence matrix, with a
  paper-level bootstrap CI; `anova`: between/within-paper standard deviations (root mean squares).
- `citations_vs_rating`, `institution_effect`, `gender_gap`, `trends`: the remaining questions.
Plain numpy/pandas/scipy/statsmodels/sklearn; every random draw comes from the `rng` passed in.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from tenfold.studies.openreview.people import infer_gender


# ---------------------------------------------------------------- per-paper frame
def papers(tables: dict[str, pd.DataFrame], accept: list[str], exclude: list[str]) -> pd.DataFrame:
    """One row per reviewed paper: year, note_id, mean rating, number of reviews, decision category, accepted."""
    rev = tables["reviews"].groupby(["year", "note_id"]).rating.agg(mean_rating="mean", n_reviews="size")
    dec = tables["decisions"].set_index(["year", "note_id"])[["category"]]
    df = rev.join(dec, how="inner").reset_index()
    df = df[~df.category.isin(exclude)].copy()
    df["accepted"] = df.category.isin(accept).astype(int)
    return df.sort_values(["year", "note_id"]).reset_index(drop=True)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def fit_acceptance(mean_rating: np.ndarray, accepted: np.ndarray, c: float, round_to: float):
    """sklearn LogisticRegression (L2, C) of acceptance on the mean rating rounded to `round_to` (the paper's LR).
    Returns (intercept, slope, in-sample accuracy)."""
    from sklearn.linear_model import LogisticRegression

    x = np.round(np.asarray(mean_rating) / round_to) * round_to
    lr = LogisticRegression(C=c).fit(x[:, None], accepted)
    acc = float((lr.predict(x[:, None]) == accepted).mean())
    return float(lr.intercept_[0]), float(lr.coef_[0, 0]), acc


def hosmer_lemeshow(p: np.ndarray, y: np.ndarray, groups: int = 8) -> tuple[float, float]:
    """Hosmer-Lemeshow statistic and p-value (df = groups - 2) over quantile groups of predicted probability."""
    order = np.argsort(p, kind="stable")
    stat = 0.0
    for idx in np.array_split(order, groups):
        obs, exp_, n = y[idx].sum(), p[idx].sum(), len(idx)
        if 0 < exp_ < n:
            stat += (obs - exp_) ** 2 / (exp_ * (1 - exp_ / n))
    return float(stat), float(stats.chi2.sf(stat, groups - 2))


# ---------------------------------------------------------------- Monte-Carlo re-review
def residual_pools(tables: dict[str, pd.DataFrame], paper_df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list]:
    """Residuals (review rating - paper mean) pooled by integer bin (k-1, k] of the paper mean (paper's method).
    Returns (flat residuals, offsets per bin, bins); an empty bin borrows the nearest non-empty one."""
    key = paper_df.set_index(["year", "note_id"]).mean_rating
    rev = tables["reviews"].join(key, on=["year", "note_id"], how="inner")
    rev = rev.assign(bin=np.ceil(rev.mean_rating).astype(int), resid=rev.rating - rev.mean_rating)
    bins = list(range(0, 12))
    pools = {b: g.resid.to_numpy() for b, g in rev.groupby("bin")}
    filled = [b for b in bins if b in pools]
    flat, offsets = [], [0]
    for b in bins:
        nearest = min(filled, key=lambda f: (abs(f - b), f))
        flat.append(pools[nearest])
        offsets.append(offsets[-1] + len(pools[nearest]))
    return np.concatenate(flat), np.asarray(offsets), bins


def reproducibility(
    means: np.ndarray,
    accepted: np.ndarray,
    resid: np.ndarray,
    offsets: np.ndarray,
    n_reviewers: int,
    iterations: int,
    c: float,
    round_to: float,
    rng: np.random.Generator,
    chunk: int = 100,
) -> np.ndarray:
    """The re-review simulation: per iteration, bootstrap "true" paper scores from the observed means; two
    independent committees each average `n_reviewers` residuals drawn from the true score's bin, the acceptance
    LR turns each average into a probability and a Bernoulli draw decides. Returns, per iteration,
    #(accepted by both) / #(accepted by the first)."""
    b0, b1, _ = fit_acceptance(means, accepted, c, round_to)
    n = len(means)
    sizes = np.diff(offsets)
    out = []
    for start in range(0, iterations, chunk):
        b = min(chunk, iterations - start)
        true = rng.choice(means, size=(b, n), replace=True)
        k = np.clip(np.ceil(true).astype(int), 0, len(sizes) - 1)
        decisions = []
        for _ in range(2):
            u = rng.random((b, n, n_reviewers))
            idx = offsets[k][..., None] + (u * sizes[k][..., None]).astype(int)
            score = true + resid[idx].mean(axis=2)
            x = np.round(score / round_to) * round_to
            decisions.append(rng.random((b, n)) < _sigmoid(b0 + b1 * x))
        first, second = decisions
        out.append((first & second).sum(axis=1) / np.maximum(first.sum(axis=1), 1))
    return np.concatenate(out)


# ---------------------------------------------------------------- agreement
def _counts(reviews: pd.DataFrame, max_slots: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Units x values matrix of rating counts (only papers with >= 2 reviews are pairable)."""
    r = reviews if max_slots is None else reviews[reviews.review_index < max_slots]
    values = np.sort(r.rating.unique())
    tab = pd.crosstab([r.year, r.note_id], r.rating).reindex(columns=values, fill_value=0)
    u = tab.to_numpy(dtype=float)
    return u[u.sum(axis=1) >= 2], values


def _alpha_from_counts(u: np.ndarray, weights: np.ndarray) -> float:
    """Ordinal alpha from per-unit value counts `u` (units x values), each unit weighted (bootstrap multiplicity)."""
    m = u.sum(axis=1)
    w = weights / (m - 1)
    o = (u * w[:, None]).T @ u - np.diag((u * w[:, None]).sum(axis=0))
    nc = o.sum(axis=0)
    n = nc.sum()
    cum = np.cumsum(nc)
    # ordinal metric: delta^2(c,k) = (sum_{g=c..k} n_g - (n_c + n_k)/2)^2
    lo = np.minimum.outer(np.arange(len(nc)), np.arange(len(nc)))
    hi = np.maximum.outer(np.arange(len(nc)), np.arange(len(nc)))
    between = cum[hi] - np.where(lo > 0, cum[lo - 1], 0.0)
    d2 = (between - (nc[:, None] + nc[None, :]) / 2) ** 2
    do = (o * d2).sum()
    de = (np.outer(nc, nc) * d2).sum()
    return float(1 - (n - 1) * do / de) if de > 0 else float("nan")


def ordinal_alpha(reviews: pd.DataFrame, max_slots: int | None = None) -> float:
    """Krippendorff's alpha, ordinal. `max_slots=None`: every review a distinct rater (paper's scheme 1);
    `max_slots=3`: the first three reviews as three rater slots (scheme 2)."""
    u, _ = _counts(reviews, max_slots)
    return _alpha_from_counts(u, np.ones(len(u)))


def alpha_with_ci(
    reviews: pd.DataFrame, rng: np.random.Generator, n_boot: int, level: float, max_slots: int | None = None
) -> dict:
    """Alpha and a percentile CI from resampling papers with replacement."""
    u, _ = _counts(reviews, max_slots)
    est = _alpha_from_counts(u, np.ones(len(u)))
    boots = [
        _alpha_from_counts(u, rng.multinomial(len(u), np.full(len(u), 1 / len(u))).astype(float)) for _ in range(n_boot)
    ]
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return {"alpha": est, "ci": [float(lo), float(hi)], "papers": int(len(u))}


def anova(reviews: pd.DataFrame) -> dict:
    """One-way ANOVA of ratings by paper: root mean squares between and within papers (the paper's Table 2)."""
    g = reviews.groupby(["year", "note_id"]).rating
    n, mean = g.size(), g.mean()
    grand = reviews.rating.mean()
    k, total = len(n), len(reviews)
    ss_between = float((n * (mean - grand) ** 2).sum())
    ss_within = float(((reviews.rating - g.transform("mean")) ** 2).sum())
    f = (ss_between / (k - 1)) / (ss_within / (total - k))
    return {
        "std_between": math.sqrt(ss_between / (k - 1)),
        "std_within": math.sqrt(ss_within / (total - k)),
        "F": f,
        "p": float(stats.f.sf(f, k - 1, total - k)),
    }


# ---------------------------------------------------------------- scores vs impact
def _boot_ci(stat, n: int, rng, n_boot: int, level: float) -> list[float]:
    vals = [stat(rng.integers(0, n, n)) for _ in range(n_boot)]
    lo, hi = np.nanquantile(vals, [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]


def citations_vs_rating(paper_df: pd.DataFrame, citations: pd.DataFrame, rng, n_boot: int, level: float) -> dict:
    """Spearman of mean rating vs citations (bootstrap CI), overall, accepted and rejected; and OLS of
    log(1+citations) on mean rating + accepted: the citation premium of acceptance at equal score."""
    import statsmodels.api as sm

    df = paper_df.merge(citations, on=["year", "note_id"], how="inner")
    out = {"papers": int(len(df))}
    for name, sub in (("all", df), ("accepted", df[df.accepted == 1]), ("rejected", df[df.accepted == 0])):
        x, y = sub.mean_rating.to_numpy(), sub.citations.to_numpy()
        rho = stats.spearmanr(x, y).statistic if len(sub) > 2 else float("nan")
        ci = (
            _boot_ci(lambda i, x=x, y=y: stats.spearmanr(x[i], y[i]).statistic, len(sub), rng, n_boot, level)
            if len(sub) > 2
            else [float("nan")] * 2
        )
        out[f"spearman_{name}"] = {"rho": float(rho), "ci": ci, "n": int(len(sub))}
    if df.accepted.nunique() == 2:
        fit = sm.OLS(np.log1p(df.citations), sm.add_constant(df[["mean_rating", "accepted"]].astype(float))).fit(
            cov_type="HC1"
        )
        ci = fit.conf_int(1 - level).loc["accepted"].tolist()
        out["accept_premium_log"] = {
            "coef": float(fit.params["accepted"]),
            "se": float(fit.bse["accepted"]),
            "ci": ci,
            "p": float(fit.pvalues["accepted"]),
        }
    return out


# ---------------------------------------------------------------- institutions
def top_by_submissions(authors: pd.DataFrame, k: int, exclude: list[str]) -> list[str]:
    """The k institution domains with the most distinct submissions."""
    a = authors.dropna(subset=["domain"])
    a = a[~a.domain.isin(exclude)].drop_duplicates(["year", "note_id", "domain"])
    return a.domain.value_counts().head(k).index.tolist()


def institution_effect(
    paper_df: pd.DataFrame,
    authors: pd.DataFrame,
    group: list[str],
    exclude: list[str],
    level: float,
    pooled: bool = False,
) -> dict:
    """The paper's logit: acceptance ~ mean rating + [institution in `group`], one row per (paper, distinct
    institution). SEs clustered by paper (the replication makes rows of a paper dependent). The effect in rating
    points is coef_group / coef_rating with a delta-method CI. `pooled` adds year fixed effects."""
    import statsmodels.api as sm

    a = authors.dropna(subset=["domain"])
    a = a[~a.domain.isin(exclude)].drop_duplicates(["year", "note_id", "domain"])
    df = paper_df.merge(a[["year", "note_id", "domain"]], on=["year", "note_id"], how="inner")
    df["top"] = df.domain.isin(group).astype(float)
    cols = ["mean_rating", "top"]
    x = df[cols].astype(float)
    if pooled:
        x = x.join(pd.get_dummies(df.year, prefix="y", drop_first=True, dtype=float))
    x = sm.add_constant(x)
    groups = pd.factorize(df.year.astype(str) + "/" + df.note_id)[0]
    fit = sm.Logit(df.accepted.astype(float), x).fit(disp=0, cov_type="cluster", cov_kwds={"groups": groups})
    b, cov = fit.params, fit.cov_params()
    pts = b["top"] / b["mean_rating"]
    grad = np.array([1 / b["mean_rating"], -b["top"] / b["mean_rating"] ** 2])
    sub = cov.loc[["top", "mean_rating"], ["top", "mean_rating"]].to_numpy()
    se_pts = float(np.sqrt(grad @ sub @ grad))
    z = stats.norm.ppf((1 + level) / 2)
    return {
        "coef_top": float(b["top"]),
        "se_top": float(fit.bse["top"]),
        "p_top": float(fit.pvalues["top"]),
        "coef_rating": float(b["mean_rating"]),
        "points": float(pts),
        "points_se": se_pts,
        "points_ci": [float(pts - z * se_pts), float(pts + z * se_pts)],
        "rows": int(len(df)),
        "papers": int(df.groupby(["year", "note_id"]).ngroups),
        "top_rows": int(df.top.sum()),
    }


# ---------------------------------------------------------------- gender
def author_genders(authors: pd.DataFrame, min_confidence: str) -> pd.DataFrame:
    """First and last author's inferred gender per paper (name dictionary; see people.py for the limits)."""
    a = authors.sort_values(["year", "note_id", "position"])
    g = a.groupby(["year", "note_id"]).name
    out = pd.DataFrame({"first": g.first(), "last": g.last()})
    cache = {n: infer_gender(n, min_confidence) for n in pd.unique(out.values.ravel())}
    return out.apply(lambda col: col.map(cache)).reset_index()


def gender_gap(
    paper_df: pd.DataFrame, genders: pd.DataFrame, level: float, citations: pd.DataFrame | None = None
) -> dict:
    """Coverage, acceptance and mean rating by inferred gender of first and last author, the F-M acceptance
    difference (Wald CI), Mann-Whitney on ratings, and a logit of acceptance on mean rating + female."""
    import statsmodels.api as sm

    df = paper_df.merge(genders, on=["year", "note_id"], how="inner")
    z = stats.norm.ppf((1 + level) / 2)
    out = {}
    for who in ("first", "last"):
        cov = df[who].value_counts().to_dict()
        known = df[df[who] != "unknown"]
        f, m = known[known[who] == "female"], known[known[who] == "male"]
        res = {
            "coverage": float(len(known) / max(len(df), 1)),
            "unknown_rate": float(cov.get("unknown", 0) / max(len(df), 1)),
            "n_female": int(len(f)),
            "n_male": int(len(m)),
        }
        if len(f) > 1 and len(m) > 1:
            pf, pm = f.accepted.mean(), m.accepted.mean()
            se = math.sqrt(pf * (1 - pf) / len(f) + pm * (1 - pm) / len(m))
            res.update(
                accept_female=float(pf),
                accept_male=float(pm),
                accept_gap=float(pf - pm),
                accept_gap_ci=[float(pf - pm - z * se), float(pf - pm + z * se)],
                rating_female=float(f.mean_rating.mean()),
                rating_male=float(m.mean_rating.mean()),
                mannwhitney_p=float(stats.mannwhitneyu(f.mean_rating, m.mean_rating).pvalue),
            )
            x = sm.add_constant(
                pd.DataFrame({"mean_rating": known.mean_rating, "female": (known[who] == "female").astype(float)})
            )
            fit = sm.Logit(known.accepted.astype(float), x).fit(disp=0, cov_type="HC1")
            res["logit_female"] = {
                "coef": float(fit.params["female"]),
                "se": float(fit.bse["female"]),
                "p": float(fit.pvalues["female"]),
            }
            if citations is not None:
                c = known.merge(citations, on=["year", "note_id"], how="inner")
                if len(c) and c[who].nunique() == 2:
                    res["log_citations"] = {
                        g: float(np.log1p(c[c[who] == g].citations).mean()) for g in ("female", "male")
                    }
        out[who] = res
    return out


# ---------------------------------------------------------------- trends
def trends(tables: dict[str, pd.DataFrame], paper_df: pd.DataFrame) -> pd.DataFrame:
    """Per year: submissions, reviewed papers, acceptance rate (of reviewed papers), reviews, mean/SD rating."""
    subs = tables["submissions"].groupby("year").size().rename("submissions")
    g = paper_df.groupby("year")
    rev = tables["reviews"].groupby("year").rating
    return pd.concat(
        [
            subs,
            g.size().rename("reviewed"),
            g.accepted.mean().rename("acceptance_rate"),
            rev.size().rename("reviews"),
            rev.mean().rename("mean_rating"),
            rev.std().rename("sd_rating"),
        ],
        axis=1,
    ).reset_index()


# ---------------------------------------------------------------- one year, everything the simulation needs
def year_summary(
    tables: dict[str, pd.DataFrame],
    paper_df: pd.DataFrame,
    ap,
    rng: np.random.Generator,
    reviewer_counts: list[int] | None = None,
    count_iterations: int = 0,
) -> dict:
    """Acceptance LR (+ Hosmer-Lemeshow), re-review reproducibility, alpha (both schemes) with CIs, ANOVA for the
    papers of one year. `tables` and `paper_df` must hold that year only."""
    means, acc = paper_df.mean_rating.to_numpy(), paper_df.accepted.to_numpy()
    if len(np.unique(acc)) < 2:
        raise ValueError(
            f"year {paper_df.year.iloc[0] if len(paper_df) else '?'}: needs accepted and rejected papers with reviews"
        )
    b0, b1, accuracy = fit_acceptance(means, acc, ap.logistic_c, ap.round_mean_to)
    x = np.round(means / ap.round_mean_to) * ap.round_mean_to
    hl, hl_p = hosmer_lemeshow(_sigmoid(b0 + b1 * x), acc)
    resid, offsets, _ = residual_pools(tables, paper_df)
    r = reproducibility(
        means, acc, resid, offsets, ap.mc_reviewers, ap.mc_iterations, ap.logistic_c, ap.round_mean_to, rng
    )
    q = np.quantile(r, [0.025, 0.5, 0.975])
    out = {
        "papers": int(len(paper_df)),
        "accepted": int(acc.sum()),
        "intercept": b0,
        "slope": b1,
        "lr_accuracy": accuracy,
        "hosmer_lemeshow": hl,
        "hosmer_lemeshow_p": hl_p,
        "reproducibility": {
            "median": float(q[1]),
            "q2_5": float(q[0]),
            "q97_5": float(q[2]),
            "mean": float(r.mean()),
            "iterations": int(len(r)),
        },
        "alpha": alpha_with_ci(tables["reviews"], rng, ap.n_boot, ap.ci_level),
        "alpha_3slots": alpha_with_ci(tables["reviews"], rng, ap.n_boot, ap.ci_level, max_slots=3),
        "anova": anova(tables["reviews"]),
    }
    if reviewer_counts:
        out["by_reviewers"] = {}
        for n in reviewer_counts:
            rn = reproducibility(means, acc, resid, offsets, n, count_iterations, ap.logistic_c, ap.round_mean_to, rng)
            qn = np.quantile(rn, [0.025, 0.5, 0.975])
            out["by_reviewers"][n] = {"median": float(qn[1]), "q2_5": float(qn[0]), "q97_5": float(qn[2])}
    return out
