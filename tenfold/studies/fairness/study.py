"""The experiment grid of the study and the reductions of its results (plain functions, no Prefect)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from tenfold.studies.fairness.params import FairnessParams

CONSTRAINED = ("penalty", "lagrangian", "adversarial")


@dataclass(frozen=True)
class RunSpec:
    dataset: str
    method: str
    notion: str  # "none" for erm
    width: int
    seed: int

    @property
    def name(self) -> str:
        return f"{self.dataset}_{self.method}_{self.notion}_w{self.width}_s{self.seed}"

    def as_dict(self) -> dict:
        return asdict(self)


def plan_runs(p: FairnessParams) -> list[RunSpec]:
    """Every run of the study: the full method x notion x width grid on the main dataset (if enabled), and on
    the other datasets the constrained methods for `sweep.other_notions` at the largest (or every) width."""
    runs = []
    for ds in p.data.datasets:
        full = ds == p.data.main and p.sweep.full_grid_on_main
        notions = (
            p.train.notions
            if full
            else [n for n in p.sweep.other_notions if n in p.train.notions] or [p.eval.claim_notion]
        )
        widths = p.model.widths if full or p.sweep.other_widths == "all" else [max(p.model.widths)]
        for w in widths:
            for m in p.train.methods:
                for nt in ["none"] if m == "erm" else notions:
                    runs.extend(RunSpec(ds, m, nt, w, k) for k in range(p.train.seeds))
    return runs


def main_spec(p: FairnessParams) -> RunSpec:
    """The run whose weights are kept and registered: the main dataset, the Lagrangian method (else the first
    constrained one), the claim's notion, the largest width, seed 0."""
    method = "lagrangian" if "lagrangian" in p.train.methods else next(m for m in p.train.methods if m != "erm")
    return RunSpec(p.data.main, method, p.eval.claim_notion, max(p.model.widths), 0)


def results_frame(results: list[tuple[RunSpec, list[dict]]]) -> pd.DataFrame:
    """One row per (run, evaluated epoch)."""
    rows = [{**spec.as_dict(), **rec} for spec, hist in results for rec in hist]
    return pd.DataFrame(rows)


def final(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of the last evaluated epoch of every run."""
    return df[df.epoch == df.epoch.max()]


def gap_resolution(s: np.ndarray, y: np.ndarray, notion: str) -> float:
    """Smallest non-zero gap measurable on a sample: 1 / (size of the smallest conditioning cell)."""
    if notion == "dp":
        sizes = [(s == g).sum() for g in (0, 1)]
    else:
        labels = (1,) if notion == "eopp" else (0, 1)
        sizes = [((s == g) & (y == c)).sum() for g in (0, 1) for c in labels]
    return 1.0 / max(1, min(sizes))


def overfit_summary(
    df: pd.DataFrame,
    dataset: str,
    notion: str,
    width: int,
    epsilon: float,
    resolution: float,
    methods: tuple[str, ...] = CONSTRAINED,
) -> dict:
    """Mean over `methods` (the constrained ones by default; erm runs match any notion) and seeds of the final
    train and test gap for one configuration.

    `ratio` = test gap / max(train gap, resolution): a train gap of exactly zero is counted at the train set's
    measurement resolution so the ratio stays finite and conservative."""
    sel = final(df)
    sel = sel[
        (sel.dataset == dataset) & sel.notion.isin([notion, "none"]) & (sel.width == width) & sel.method.isin(methods)
    ]
    if sel.empty:
        return {"runs": 0, "train_gap": None, "test_gap": None, "ratio": None, "meets_constraint": False}
    tr, te = float(sel[f"train_gap_{notion}"].mean()), float(sel[f"test_gap_{notion}"].mean())
    floor_col = f"test_floor_{notion}"
    return {
        "runs": int(len(sel)),
        "train_gap": tr,
        "test_gap": te,
        "ratio": te / max(tr, resolution),
        "meets_constraint": tr <= epsilon,
        "train_acc": float(sel.train_acc.mean()),
        "test_acc": float(sel.test_acc.mean()),
        "test_noise_floor": float(sel[floor_col].mean()) if floor_col in sel else None,
    }


def summary_table(df: pd.DataFrame, by: list[str], erm_notion: str) -> pd.DataFrame:
    """Final-epoch means over seeds: accuracy and the gap of each run's own notion (`erm_notion` for erm)."""
    f = final(df).copy()
    own = f.notion.where(f.notion != "none", erm_notion)
    f["train_gap"] = [r[f"train_gap_{n}"] for (_, r), n in zip(f.iterrows(), own)]
    f["test_gap"] = [r[f"test_gap_{n}"] for (_, r), n in zip(f.iterrows(), own)]
    cols = ["train_acc", "test_acc", "train_gap", "test_gap"]
    return f.groupby(by, sort=False)[cols].mean().reset_index()
