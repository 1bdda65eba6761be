"""Params of the `openreview` study (section `openreview` of params.yaml).

Venues are data: each conference-year names its API version, invitations and review-form fields here, so a
new year (ICLR 2021+, other venues) is added in params.yaml without code changes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tenfold.core.config import Strict

TOP_INSTITUTIONS = (
    "cmu.edu",
    "mit.edu",
    "stanford.edu",
    "berkeley.edu",
    "illinois.edu",
    "cornell.edu",
    "washington.edu",
    "uw.edu",
    "gatech.edu",
    "umich.edu",
    "ucsd.edu",
)
PERSONAL_DOMAINS = (
    "gmail.com",
    "googlemail.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "yahoo.com",
    "icloud.com",
    "me.com",
    "163.com",
    "126.com",
    "qq.com",
    "foxmail.com",
    "sina.com",
    "protonmail.com",
    "mail.com",
    "yandex.ru",
)
# ICLR 2017-2020 on OpenReview (API v1; v2 from ICLR 2024)
ICLR_VENUES: dict[int, dict] = {
    2017: {
        "venue": "ICLR.cc/2017/conference",
        "submission_invitation": "ICLR.cc/2017/conference/-/submission",
        "review_suffix": "official/review",
        "decision_suffixes": ["acceptance"],
    },
    2018: {
        "venue": "ICLR.cc/2018/Conference",
        "submission_invitation": "ICLR.cc/2018/Conference/-/Blind_Submission",
        "extra_invitations": {"Withdraw": "ICLR.cc/2018/Conference/-/Withdrawn_Submission"},
        "decision_suffixes": ["Acceptance_Decision"],
    },
    2019: {
        "venue": "ICLR.cc/2019/Conference",
        "submission_invitation": "ICLR.cc/2019/Conference/-/Blind_Submission",
        "extra_invitations": {"Withdraw": "ICLR.cc/2019/Conference/-/Withdrawn_Submission"},
        "decision_suffixes": ["Meta_Review"],
        "decision_field": "recommendation",
    },
    2020: {
        "venue": "ICLR.cc/2020/Conference",
        "submission_invitation": "ICLR.cc/2020/Conference/-/Blind_Submission",
        "extra_invitations": {
            "Withdraw": "ICLR.cc/2020/Conference/-/Withdrawn_Submission",
            "Desk Reject": "ICLR.cc/2020/Conference/-/Desk_Rejected_Submission",
        },
        "confidence_field": None,
        "rating_scale": [1.0, 3.0, 6.0, 8.0],
    },
}


class VenueSpec(Strict):
    """How one conference-year is laid out on OpenReview (see the study notes, section 5)."""

    venue: str = Field(..., description="venue id, e.g. ICLR.cc/2020/Conference")
    api: Literal[1, 2] = 1
    submission_invitation: str
    extra_invitations: dict[str, str] = Field(
        default_factory=dict, description="status -> invitation of extra submission streams (e.g. Withdraw)"
    )
    review_suffix: str = "Official_Review"
    decision_suffixes: list[str] = Field(default_factory=lambda: ["Decision"])
    decision_field: str = "decision"
    rating_field: str = "rating"
    confidence_field: str | None = "confidence"
    rating_scale: list[float] = Field(
        default_factory=lambda: [float(v) for v in range(1, 11)],
        description="allowed rating values; anything else is an error",
    )


class ScrapeParams(Strict):
    baseurl: str = "https://api.openreview.net"
    baseurl_v2: str = "https://api2.openreview.net"
    page_size: int = Field(1000, ge=1, le=1000)
    max_retries: int = Field(5, ge=0, le=20, description="per request, for 429/5xx/timeouts")
    backoff_factor: float = Field(1.0, ge=0)
    backoff_max: float = Field(60.0, gt=0)
    backoff_jitter: float = Field(1.0, ge=0)
    timeout: float = Field(60.0, gt=0, description="seconds per HTTP request")
    details: str = "directReplies"


class AnalysisParams(Strict):
    accept_categories: list[str] = Field(default_factory=lambda: ["accept"])
    exclude_categories: list[str] = Field(
        default_factory=lambda: ["unknown"], description="decisions left out of every analysis"
    )
    mc_iterations: int = Field(2000, ge=10, description="Monte-Carlo re-review iterations (paper: 2000)")
    mc_reviewers: int = Field(3, ge=1, description="reviewers per simulated re-review (paper: 3)")
    reviewer_counts: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7, 8])
    reviewer_count_year: int = 2020
    reviewer_count_iterations: int = Field(
        300, ge=10, description="iterations per reviewer count (paper profile: 2000)"
    )
    logistic_c: float = Field(1.0, gt=0, description="sklearn LogisticRegression C (paper: default 1.0)")
    round_mean_to: float = Field(0.1, gt=0)
    n_boot: int = Field(300, ge=10, description="bootstrap resamples for confidence intervals")
    ci_level: float = Field(0.95, gt=0.5, lt=1)
    institution_year: int = 2020
    top_institutions: list[str] = Field(
        default_factory=lambda: list(TOP_INSTITUTIONS),
        description="institution domains of the paper's top-10 group (CSRankings top-10, all areas, around 2020, "
        "as e-mail domains: an approximation of the paper's list)",
    )
    top_k_by_submissions: int = Field(10, ge=1)
    personal_domains: list[str] = Field(
        default_factory=lambda: list(PERSONAL_DOMAINS), description="e-mail domains that name no institution"
    )
    gender_year: int = 2020
    gender_min_confidence: Literal["mostly", "sure"] = "mostly"
    accept_min_accuracy: float = Field(0.8, ge=0, le=1, description="acceptance model check for the alias")


class ClaimTargets(Strict):
    decision_reproducibility: dict[int, float] = Field(
        default_factory=lambda: {2017: 0.75, 2018: 0.70, 2019: 0.70, 2020: 0.66}
    )
    reproducibility_tolerance: float = 0.05
    alpha_first: float = 0.572
    alpha_last: float = 0.395
    alpha_tolerance: float = 0.05
    institution_effect_points: float = 0.15
    gender_acceptance_gap: float = -0.035


class OpenReviewParams(Strict):
    source: Literal["offline", "live"] = "offline"
    snapshot: str = Field(
        "initial",
        description="label of the data snapshot (a date): a new value invalidates the "
        "scrape stage in DVC; the yearly scheduled run (flows/deploy.py) sets the run's date",
    )
    years: list[int] = Field(default_factory=lambda: [2017, 2018, 2019, 2020], min_length=1)
    dump_dir: str = "openreview"
    dump_pattern: str = "iclr{year}.json"
    citations_pattern: str = "citations/iclr{year}.json"
    tables_dir: str = "openreview"
    venues: dict[int, VenueSpec] = Field(
        default_factory=lambda: {y: VenueSpec(**v) for y, v in ICLR_VENUES.items()},
        description="one entry per conference-year; a new year = a new entry",
    )
    status_map: dict[str, str] = Field(
        default_factory=dict, description="decision/status string -> category (accept, reject, ...)"
    )
    scrape: ScrapeParams = ScrapeParams()
    analysis: AnalysisParams = AnalysisParams()
    claims: ClaimTargets = ClaimTargets()

    @model_validator(mode="after")
    def _live_needs_venues(self):
        if self.source == "live":
            missing = [y for y in self.years if y not in self.venues]
            if missing:
                raise ValueError(f"source is 'live' but openreview.venues has no entry for years {missing}")
        return self
