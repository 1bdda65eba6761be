"""From measured identification rates, image quality and the trade-off sweep to the lowkey study's claims,
headline, tables, notes and figures (no training or filtering here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tenfold.core.claims import claim
from tenfold.core.outcome import Outcome, claim_notes
from tenfold.core.plotting import write_csv
from tenfold.studies.lowkey import plots
from tenfold.studies.lowkey.params import LowKeyAttack, LowKeyParams

SWEEP_COLUMNS = [
    "setting",
    "n_iters",
    "lr",
    "c_sim",
    "smooth_sigma",
    "ssim",
    "dlib_rank1",
    "dlib_rank5",
    "heldout_rank1",
    "dlib_detected",
]


@dataclass
class Measured:
    """What the lowkey flow measured."""

    n_train_images: int  # AT&T images of the training identities
    train_subjects: int
    eval_subjects: int
    n_probes: int
    found: np.ndarray  # MTCNN found a face, clean images used
    found_filtered: np.ndarray  # MTCNN found a face, filtered probes
    surrogates: dict[str, dict[str, dict[int, float]]]  # model -> probe set (clean, filtered) -> rank -> accuracy
    dlib: dict[str, dict]  # probe set -> {"ranks": {rank: accuracy}, "detected": fraction}
    ssim: np.ndarray  # per filtered probe
    psnr: np.ndarray
    feature_distance: np.ndarray
    attack_seconds: float
    histories: dict[str, list[dict]]  # surrogate -> per-epoch loss and train accuracy
    sweep_rows: list[list] | None = None  # one row per attack setting (SWEEP_COLUMNS), first = the default
    sweep_probes: int = 0
    examples: tuple | None = None  # (clean uint8 images, filtered uint8 images, their SSIM)


def setting_label(cfg: LowKeyAttack) -> str:
    return f"it{cfg.n_iters} lr{cfg.lr:g} c{cfg.c_sim:g} s{cfg.smooth_sigma:g}"


def sweep_row(label: str, cfg: LowKeyAttack, ssim: np.ndarray, dlib: dict, heldout_rank1: float) -> list:
    """One row of the trade-off table (SWEEP_COLUMNS) from one setting's filtered-probe evaluation."""
    return [
        label,
        cfg.n_iters,
        cfg.lr,
        cfg.c_sim,
        cfg.smooth_sigma,
        round(float(ssim.mean()), 4),
        round(dlib["ranks"][1], 4),
        round(dlib["ranks"][5], 4),
        round(heldout_rank1, 4),
        round(dlib["detected"], 4),
    ]


def sweep_summary(rows: list[list], probes: int, target_ssim: float) -> dict:
    """The `tradeoff` record: rows plus the reported operating points (see `plots.best_points`)."""
    best = plots.best_points([r[5] for r in rows], [r[6] for r in rows], target_ssim)
    pick = {k: (None if i is None else dict(zip(SWEEP_COLUMNS, rows[i]))) for k, i in best.items()}
    return {"probes": probes, "columns": SWEEP_COLUMNS, "rows": rows, **pick}


def build(p: LowKeyParams, m: Measured) -> Outcome:
    r1, ranks, heldout = min(p.eval.ranks), p.eval.ranks, p.eval.heldout.name
    sur, dl = m.surrogates, m.dlib
    claims = [
        claim(
            "dlib_rank1_filtered",
            "dlib's ResNet recognizer (third party) identifies at most 10% of "
            "LowKey-filtered probes at rank 1 (clean gallery)",
            "Rekognition and Azure below 1% rank-1 on FaceScrub",
            dl["filtered"]["ranks"][r1],
            p.eval.target_dlib_rank1,
            "<=",
        ),
        claim(
            "lowkey_ssim",
            "mean SSIM of filtered probes to the originals is at least 0.85",
            "LowKey filters stay visually close (LPIPS-controlled)",
            float(m.ssim.mean()),
            p.eval.target_ssim,
            ">=",
        ),
        claim(
            "surrogate_rank1_filtered",
            f"the held-out architecture ({heldout}, not in the attack "
            "ensemble) identifies at most 10% of filtered probes at rank 1",
            "black-box FR models fooled",
            sur[heldout]["filtered"][r1],
            p.eval.target_heldout_rank1,
            "<=",
        ),
    ]
    min_train_acc = min(h[-1]["train_acc"] for h in m.histories.values())
    sweep = sweep_summary(m.sweep_rows, m.sweep_probes, p.eval.target_ssim) if m.sweep_rows else None
    quality = {
        "ssim_mean": float(m.ssim.mean()),
        "ssim_min": float(m.ssim.min()),
        "psnr_mean": float(m.psnr.mean()),
        "attack_seconds": round(m.attack_seconds, 1),
        "seconds_per_face": round(m.attack_seconds / max(1, m.n_probes), 3),
    }
    ens = [s.name for s in p.ensemble]
    headline = {
        "dlib_rank1_filtered": dl["filtered"]["ranks"][r1],
        "dlib_rank1_clean": dl["clean"]["ranks"][r1],
        "lowkey_ssim": quality["ssim_mean"],
        "ssim_min": quality["ssim_min"],
        "psnr_mean": quality["psnr_mean"],
        "heldout_rank1_clean": sur[heldout]["clean"][r1],
        "heldout_rank1_filtered": sur[heldout]["filtered"][r1],
        "ensemble_rank1_clean": float(np.mean([sur[n]["clean"][r1] for n in ens])),
        "ensemble_rank1_filtered": float(np.mean([sur[n]["filtered"][r1] for n in ens])),
        "dlib_detected_clean": dl["clean"]["detected"],
        "dlib_detected_filtered": dl["filtered"]["detected"],
        "min_surrogate_train_acc": min_train_acc,
    }
    if sweep:
        meets = sweep["meets_ssim"]
        headline["tradeoff_dlib_rank1_meeting_ssim"] = None if meets is None else meets["dlib_rank1"]
    cols = ["model", "role", *[f"{s} rank-{r}" for s in ("clean", "filtered") for r in ranks]]
    tables = {
        "identification": {
            "title": "Rank-k identification, clean vs LowKey-filtered probes",
            "columns": cols,
            "rows": identification_rows(p, m),
        },
        "quality": {
            "title": "Image quality of the filtered probes",
            "columns": ["mean SSIM", "min SSIM", "mean PSNR (dB)", "seconds per face"],
            "rows": [
                [
                    round(quality["ssim_mean"], 4),
                    round(quality["ssim_min"], 4),
                    round(quality["psnr_mean"], 2),
                    quality["seconds_per_face"],
                ]
            ],
        },
    }
    if sweep:
        tables["tradeoff"] = {
            "title": f"Trade-off over attack settings ({sweep['probes']} probes, first row = the default)",
            "columns": sweep["columns"],
            "rows": sweep["rows"],
        }
    return Outcome(
        claims=claims,
        headline=headline,
        tables=tables,
        notes=_notes(p, m, claims),
        description=(
            f"LowKey filters {m.n_probes} AT&T probes of {m.eval_subjects} identities with an ensemble of "
            f"{len(p.ensemble)} surrogates (x2 with Gaussian smoothing), {p.attack.n_iters} signed "
            f"gradient steps of {p.attack.lr}, through MTCNN alignment; identification by the "
            "surrogates, a held-out architecture and dlib's ResNet recognizer."
        ),
        details={
            "identification": {
                "surrogates": {n: {s: {str(r): v for r, v in d.items()} for s, d in e.items()} for n, e in sur.items()},
                "dlib": {
                    s: {"ranks": {str(r): v for r, v in d["ranks"].items()}, "detected": d["detected"]}
                    for s, d in dl.items()
                },
            },
            "quality": quality,
            "training": {n: h[-1] for n, h in m.histories.items()},
            "tradeoff": sweep,
        },
        passed=dl["clean"]["ranks"][r1] >= 0.9 and min_train_acc >= 0.9,
    )


def identification_rows(p: LowKeyParams, m: Measured) -> list[list]:
    """[model, role, rank-k on clean probes..., rank-k on filtered probes...]: the ensemble, the held-out model,
    then dlib."""
    heldout, ranks = p.eval.heldout.name, p.eval.ranks
    rows = [
        [
            name,
            "held-out" if name == heldout else "ensemble",
            *[round(m.surrogates[name][s][r], 4) for s in ("clean", "filtered") for r in ranks],
        ]
        for name in [*(s.name for s in p.ensemble), heldout]
    ]
    rows.append(
        [
            "dlib ResNet v1",
            "third party",
            *[round(m.dlib[s]["ranks"][r], 4) for s in ("clean", "filtered") for r in ranks],
        ]
    )
    return rows


def _notes(p: LowKeyParams, m: Measured, claims) -> list[str]:
    dl = m.dlib
    return claim_notes(claims, "Reached", "Not reached") + [
        f"Surrogates are small CPU models trained on {m.n_train_images} AT&T images of {m.train_subjects} identities "
        "disjoint from the evaluation identities; the paper's ensemble is four IR-152/ResNet-152 models trained "
        "on MS-Celeb-1M. Transfer to dlib is therefore expected to be far weaker than in the paper.",
        "Perceptual penalty: 1 - SSIM instead of LPIPS (AlexNet LPIPS weights are not available offline); "
        f"c_sim={p.attack.c_sim} is on the SSIM scale, not LPIPS'.",
        f"Evaluation set: {m.eval_subjects} identities, gallery image {p.data.gallery_number}, {m.n_probes} probes "
        "(grey photos replicated to RGB; the filter is free to add colour, as on a real photo). Paper: FaceScrub "
        "probes/gallery with UMDFaces distractors and commercial APIs (not available offline).",
        f"Detection: MTCNN found a face in {int(m.found.sum())}/{len(m.found)} clean images used and "
        f"{int(m.found_filtered.sum())}/{len(m.found_filtered)} filtered probes; dlib's HOG detector found one in "
        f"{dl['clean']['detected']:.3f} of clean and {dl['filtered']['detected']:.3f} of filtered probes (else the "
        "whole image is the face box).",
    ]


def write_figures(out: Outcome, p: LowKeyParams, m: Measured, plot_dir: Path, rel: str = "plots/lowkey") -> None:
    """CSVs for `dvc plots` (identification, per-probe quality, trade-off) and the PNGs; sets `out.figures`."""
    rows, nr = identification_rows(p, m), len(p.eval.ranks)
    write_csv(plot_dir / "identification.csv", out.tables["identification"]["columns"], rows)
    write_csv(
        plot_dir / "quality.csv",
        ["probe", "ssim", "psnr", "feature_distance"],
        [
            [i, round(a, 4), round(b, 3), round(float(c), 5)]
            for i, (a, b, c) in enumerate(zip(m.ssim, m.psnr, m.feature_distance))
        ],
    )
    plots.rank_bars(
        plot_dir / "rank1.png",
        [r[0] for r in rows],
        [r[2] for r in rows],
        [r[2 + nr] for r in rows],
        "rank-1 identification, clean vs LowKey probes",
    )
    out.figures = [{"path": f"{rel}/rank1.png", "caption": "Rank-1 accuracy, clean vs filtered probes"}]
    if m.sweep_rows:
        srows = m.sweep_rows
        write_csv(plot_dir / "tradeoff.csv", SWEEP_COLUMNS, srows)
        plots.tradeoff(
            plot_dir / "tradeoff.png",
            [r[5] for r in srows],
            [r[6] for r in srows],
            [r[8] for r in srows],
            [r[0] for r in srows],
            p.eval.target_ssim,
            p.eval.target_dlib_rank1,
            default_index=0,
        )
        out.figures.append(
            {
                "path": f"{rel}/tradeoff.png",
                "caption": f"dlib rank-1 vs SSIM over attack settings ({m.sweep_probes} probes)",
            }
        )
    if m.examples is not None:
        clean, filtered, ssims = m.examples
        plots.examples(plot_dir / "examples.png", clean, filtered, ssims)
        out.figures.append({"path": f"{rel}/examples.png", "caption": "Before / after LowKey"})


def example_indices(n_filtered: int, n_examples: int) -> np.ndarray:
    """Evenly spaced probes shown in the before/after figure."""
    return np.linspace(0, n_filtered - 1, min(n_examples, n_filtered)).astype(int)
