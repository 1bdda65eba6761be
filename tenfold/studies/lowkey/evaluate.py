"""From embeddings to the numbers of the report: clean verification AUC and rank-k of every recognizer, rank-k on
filtered probes at each step of the filter, the trade-off rows, the AT&T table (no compute-heavy code here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tenfold.studies.lowkey.dlibrec import DlibJudge
from tenfold.studies.lowkey.params import LowKeyAttack, LowKeyParams
from tenfold.studies.lowkey.recognizers import rank_k, verification_auc

SWEEP_COLUMNS = [
    "setting",
    "n_iters",
    "lr",
    "c_sim",
    "smooth_sigma",
    "eot_shift",
    "probes",
    "face_ssim",
    "ssim",
    "dlib_rank1",
    "dlib_rank10",
    "heldout_rank1",
    "dlib_detected",
    "attack",
]


@dataclass
class Measured:
    """What the lowkey flow measured."""

    counts: dict  # eval_identities, distractors, gallery, probes, auc_photos, train_identities, train_photos
    registry: list[dict]  # one row per recognizer (name, role, input, template, normalisation, source)
    clean: dict[str, dict]  # recognizer -> {"auc": float, "ranks": {k: rate}} (+ dlib "detected")
    filtered: dict[str, dict[str, dict]]  # "first" / "subtle" -> recognizer -> {"ranks": {k: rate}}
    quality: dict[str, dict[str, np.ndarray]]  # "first" / "subtle" -> face_ssim, ssim, psnr per probe
    mtcnn_found: dict[str, float]  # "first" / "subtle": MTCNN re-detected a face in the filtered probe
    sweep_rows: list[list]  # SWEEP_COLUMNS
    att: dict | None  # {"rows": [name, role, clean r1, first r1, subtle r1], "quality", "probes", "subjects"}
    training: dict[str, dict]  # surrogate -> {head, init, history, cpu_seconds, train_photos, ...}
    attack_cpu_seconds: float
    n_probes: int
    examples: tuple | None = None  # (clean, first, subtle uint8 photos, face SSIM first, face SSIM subtle)


def sweep_positions(n_identities: int, probes_per_identity: int, per_identity: int) -> np.ndarray:
    """Positions (within the identity-major probes) of the first `per_identity` probes of every identity."""
    k = min(per_identity, probes_per_identity)
    return np.array([i * probes_per_identity + j for i in range(n_identities) for j in range(k)], np.int64)


def rates(
    gallery: np.ndarray, gallery_ids: np.ndarray, probes: np.ndarray, probe_ids: np.ndarray, ranks: list[int]
) -> dict[int, float]:
    return {k: float(v.mean()) for k, v in rank_k(gallery, gallery_ids, probes, probe_ids, ranks).items()}


def dlib_row():
    """The registry row of dlib (black box)."""
    j = DlibJudge
    return {
        "name": j.name,
        "role": j.role,
        "input": f"{j.size[0]}x{j.size[1]}",
        "template": j.template,
        "normalisation": j.normalisation,
        "source": j.source,
        "differentiable": False,
    }


class Assemble:
    """Numbers from the flow's embeddings: `clean` = {"emb": {model: {set: emb}}, "dlib": {set: (emb, found)}}
    for the sets gallery / probes / auc; `filt` = {step: {"emb", "dlib", "mtcnn_found", "quality", "photos"}}."""

    def __init__(
        self, p: LowKeyParams, gallery_ids, probe_ids, auc_ids, clean: dict, filt: dict, models: dict, describe
    ):
        self.p, self.gid, self.pid, self.aid = p, gallery_ids, probe_ids, auc_ids
        self.clean, self.filt, self.models, self.describe = clean, filt, models, describe

    def _gallery(self, name: str) -> np.ndarray:
        return self.clean["dlib"]["gallery"][0] if name == "dlib" else self.clean["emb"][name]["gallery"]

    def _probes(self, entry: dict, name: str) -> np.ndarray:
        return entry["dlib"]["probes"][0] if name == "dlib" else entry["emb"][name]["probes"]

    def names(self) -> list[str]:
        return [*self.models, "dlib"]

    def clean_table(self) -> dict[str, dict]:
        out = {}
        for n in self.names():
            auc_emb = self.clean["dlib"]["auc"][0] if n == "dlib" else self.clean["emb"][n]["auc"]
            out[n] = {
                "auc": verification_auc(auc_emb, self.aid),
                "ranks": rates(self._gallery(n), self.gid, self._probes(self.clean, n), self.pid, self.p.eval.ranks),
            }
        out["dlib"]["detected"] = float(self.clean["dlib"]["probes"][1].mean())
        return out

    def filtered_table(self, step: int, positions: np.ndarray | None = None, entry: dict | None = None) -> dict:
        e = entry if entry is not None else self.filt[step]
        pid = self.pid if positions is None else self.pid[positions]
        out = {
            n: {"ranks": rates(self._gallery(n), self.gid, self._probes(e, n), pid, self.p.eval.ranks)}
            for n in self.names()
            if n == "dlib" or n in e["emb"]
        }
        out["dlib"]["detected"] = float(e["dlib"]["probes"][1].mean())
        return out

    def sweep_rows(
        self,
        label: str,
        cfg: LowKeyAttack,
        filt: dict | None,
        positions: np.ndarray | None,
        attack: list[str] | None = None,
    ) -> list:
        """One row per step of a run (SWEEP_COLUMNS); `filt` None = the default run on every probe; `attack` the
        run's ensemble (default: models.attack)."""
        filt = self.filt if filt is None else filt
        ensemble = "+".join(attack or self.p.models.attack)
        heldout, rows = self.p.models.heldout, []
        for step in sorted(filt):
            e = filt[step]
            t = self.filtered_table(step, positions, e)
            q = e["quality"]
            rows.append(
                [
                    label,
                    step,
                    cfg.lr,
                    cfg.c_sim,
                    cfg.smooth_sigma,
                    cfg.eot_shift,
                    len(q["face_ssim"]),
                    round(float(q["face_ssim"].mean()), 4),
                    round(float(q["ssim"].mean()), 4),
                    round(t["dlib"]["ranks"][1], 4),
                    round(t["dlib"]["ranks"].get(10, float("nan")), 4),
                    round(t[heldout]["ranks"][1], 4),
                    round(t["dlib"]["detected"], 4),
                    ensemble,
                ]
            )
        return rows

    def att_table(self, att: dict) -> dict:
        """AT&T: rank-1 of every recognizer on clean and filtered probes (both operating points), and quality."""
        c, gid, pid = att["clean"], att["gallery_ids"], att["probe_ids"]
        n_first, n_subtle = self.p.eval.first_iters, self.p.eval.subtle_iters

        def r1(entry, n):
            g = c["dlib"]["gallery"][0] if n == "dlib" else c["emb"][n]["gallery"]
            q = entry["dlib"]["probes"][0] if n == "dlib" else entry["emb"][n]["probes"]
            return round(rates(g, gid, q, pid, [1])[1], 4)

        rows = [
            [n, self._role(n), r1(c, n), r1(att["filtered"][n_first], n), r1(att["filtered"][n_subtle], n)]
            for n in self.names()
        ]
        q = {
            k: {m: float(v.mean()) for m, v in att["filtered"][s]["quality"].items()}
            for k, s in (("first", n_first), ("subtle", n_subtle))
        }
        return {"rows": rows, "quality": q, "probes": int(len(pid)), "subjects": int(len(np.unique(pid)))}

    def _role(self, name: str) -> str:
        return "judge" if name == "dlib" else self.models[name].role

    def measured(self, sp, main: dict, sweep_rows: list, att: dict | None, training: dict, clean_probes):
        n1, ns = self.p.eval.first_iters, self.p.eval.subtle_iters
        ops = {"first": n1, "subtle": ns}
        ex = None
        if self.p.eval.examples:
            idx = np.linspace(0, len(clean_probes) - 1, min(self.p.eval.examples, len(clean_probes))).astype(int)
            ex = (
                clean_probes[idx],
                self.filt[n1]["photos"][idx],
                self.filt[ns]["photos"][idx],
                self.filt[n1]["quality"]["face_ssim"][idx],
                self.filt[ns]["quality"]["face_ssim"][idx],
            )
        return Measured(
            counts={
                "eval_identities": int(len(sp.eval_ids)),
                "distractors": int(len(sp.distractor_ids)),
                "gallery": int(len(sp.gallery)),
                "probes": int(len(sp.probes)),
                "auc_photos": int(len(sp.auc)),
                "train_identities": int(len(sp.train_ids)),
                "train_photos": int(len(sp.train)),
            },
            registry=[self.describe(m) for m in self.models.values()] + [dlib_row()],
            clean=self.clean_table(),
            filtered={k: self.filtered_table(s) for k, s in ops.items()},
            quality={k: self.filt[s]["quality"] for k, s in ops.items()},
            mtcnn_found={k: float(self.filt[s]["mtcnn_found"].mean()) for k, s in ops.items()},
            sweep_rows=sweep_rows,
            att=self.att_table(att) if att else None,
            training=training,
            attack_cpu_seconds=float(main["cpu_seconds"]),
            n_probes=int(len(self.pid)),
            examples=ex,
        )
