"""Unit tests of the OpenReview analyses, the offline loader and the schema."""

from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest
import torch

from tenfold.studies.openreview import analysis as A
from tenfold.studies.openreview.dumps import load_year
from tenfold.studies.openreview.model import AcceptanceModel
from tenfold.studies.openreview.people import first_name, infer_gender, institution_domain
from tenfold.studies.openreview.schema import TableError, category, concat, read_tables, validate, write_tables

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "openreview"  # ../shared beside the checkout


def _reviews(matrix):
    rows = [
        {"year": 2020, "note_id": f"p{j}", "review_id": f"p{j}#{i}", "review_index": i, "rating": v, "confidence": None}
        for j, col in enumerate(matrix.T)
        for i, v in enumerate(col)
        if not np.isnan(v)
    ]
    return pd.DataFrame(rows)


def test_ordinal_alpha_matches_krippendorff_package():
    rng = np.random.default_rng(0)
    m = rng.integers(1, 8, size=(4, 60)).astype(float)
    m[:, :30] = np.clip(m[0, :30] + rng.integers(-1, 2, size=(4, 30)), 1, 7)
    m[3, rng.random(60) < 0.5] = np.nan
    ref = krippendorff.alpha(reliability_data=m, level_of_measurement="ordinal")
    assert A.ordinal_alpha(_reviews(m)) == pytest.approx(ref, abs=1e-9)


def test_reproducibility_is_one_without_reviewer_noise_and_deterministic():
    means = np.repeat([2.0, 8.0], 50)
    acc = (means > 5).astype(int)
    resid, offsets = np.zeros(12), np.arange(13)
    r = A.reproducibility(means, acc, resid, offsets, 3, 50, 1e6, 0.1, np.random.default_rng(1))
    assert r.min() > 0.99
    noisy = np.linspace(-3, 3, 12)
    a = A.reproducibility(means, acc, noisy, offsets, 3, 30, 1.0, 0.1, np.random.default_rng(2))
    b = A.reproducibility(means, acc, noisy, offsets, 3, 30, 1.0, 0.1, np.random.default_rng(2))
    assert np.array_equal(a, b) and a.mean() < r.mean()


def test_institution_domain_and_names():
    assert institution_domain("kossen@stud.uni-heidelberg.de") == "uni-heidelberg.de"
    assert institution_domain("a@cs.ox.ac.uk") == "ox.ac.uk"
    assert institution_domain("~Alex_Roe1") is None
    assert first_name("J. Alice Smith") == "Alice" and first_name("J. K.") is None
    assert infer_gender("Maria Garcia") == "female" and infer_gender("John Doe") == "male"
    assert infer_gender("Xq Zz") == "unknown"


def test_dump_2017_maps_into_schema(tmp_path):
    t = load_year(
        SHARED / "iclr2017.json",
        2017,
        "ICLR.cc/2017/conference",
        {},
        list(range(1, 11)),
        SHARED / "citations" / "iclr2017.json",
    )
    validate(t)
    assert len(t["submissions"]) == 490 and (t["citations"].citations >= 0).all()
    assert set(t["decisions"].category) == {"accept", "reject", "workshop"}
    back = read_tables(tmp_path) if write_tables(t, tmp_path) else None
    assert len(back["reviews"]) == len(t["reviews"])
    with pytest.raises(TableError, match="outside the 2017 scale"):
        load_year(SHARED / "iclr2017.json", 2017, "v", {}, [1, 3, 6, 8])
    with pytest.raises(FileNotFoundError, match="iclr2031"):
        load_year(SHARED / "iclr2031.json", 2031, "v", {})


def test_duplicates_and_unknown_status_are_errors():
    t = load_year(SHARED / "iclr2017.json", 2017, "v", {})
    with pytest.raises(TableError, match="duplicate"):
        validate(concat([t, {k: v.head(1) for k, v in t.items()}]))
    with pytest.raises(TableError, match="Maybe"):
        category("Maybe", {}, "x")
    assert category("Maybe", {"Maybe": "reject"}, "x") == "reject"


def test_acceptance_model_per_year():
    m = AcceptanceModel([2017, 2020], [-10.0, -20.0], [2.0, 4.0])
    p = m(torch.tensor([[2017.0, 5.0], [2020.0, 5.0], [2031.0, 5.0]]))
    assert p[0] == pytest.approx(0.5) and p[1] == pytest.approx(0.5) and torch.isnan(p[2])
