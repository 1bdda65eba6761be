"""Study `secure_release` (arXiv:2103.02683): poison a dataset before release so models trained on it fail.

A fixed surrogate is trained on the clean data; the paper's alignment poisons (gradient alignment with the
reverse cross-entropy), error-maximising adversarial poisons, error-minimising unlearnable noise and a random
noise control are crafted under one l_inf budget, one task per poison batch; the alignment poisons are also
released online, a few items per call, by the release service. Victims of several architectures are trained from
scratch on every released set; diagnostics (drop vs crafting steps, vs victim epochs, vs eps), counter-moves
(adversarial training; mixup and CutMix from the dataset-security registry) and the AT&T face-identification
experiment follow. Also `release_folder_flow`: protect a folder of images (once, or watching it) with a saved
release service.
"""

from __future__ import annotations

import time

import torch
from prefect import flow
from prefect.logging import get_run_logger

from flows.common import prepare, publish, tracked
from tasks.secure_release import (
    craft_batch,
    craft_unlearnable,
    load_faces,
    load_release_data,
    online_release,
    perceptual_distance,
    protect_new_files,
    train_surrogate,
    victim,
)
from tenfold.components.data.cifar10 import CLASSES
from tenfold.studies.secure_release import outcome
from tenfold.studies.secure_release.service import ReleaseService


@flow(name="secure_release")
def secure_release_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    ctx = prepare("secure_release", params_path, root)
    p, dev = ctx.params, ctx.device
    data_f = load_release_data.submit(p.data, str(ctx.data_root), ctx.seed_for("data"), ctx.seed_for("order"), dev)
    face_dirs = [str(ctx.data_root), str(ctx.shared_data)]  # find_att looks in <root>/att_faces and <root>/faces
    faces_f = load_faces.submit(face_dirs, p.faces.side, p.faces.train_per_subject, dev) if p.faces.enabled else None
    data, (x, y, xt, yt), stats = data_f.result()
    faces = faces_f.result() if faces_f else None
    K = data.num_classes
    tags = {"data_source": data.source, **({"faces_source": faces[2]} if faces else {})}
    with tracked(ctx, tags=tags) as run:
        surrogate, g_t, sur_acc = train_surrogate.submit(
            x, y, xt, yt, p.surrogate, K, ctx.seed_for("surrogate"), stats
        ).result()
        plan = outcome.plan(p)  # (release name, method, eps, steps) of every batch release
        snapshots = tuple(k for k in p.diagnostics.step_snapshots if k < p.craft.steps)
        crafted = {
            name: _craft(ctx, m, surrogate, g_t, x, y, e, steps, K, name, snapshots) for name, m, e, steps in plan
        }
        ue = (
            craft_unlearnable.submit(x, y, p, K, ctx.seed_for("craft", "unlearnable"), stats)
            if "unlearnable" in p.methods
            else None
        )
        svc = _service(ctx, surrogate, g_t, x, K, stats, data.name)
        online = online_release.submit(svc, x, y, p.online.batch_size) if p.online.enabled else None
        v = _Victims(ctx, y, xt, yt, K, stats)
        v.train_on("clean", x, x, p.victims.archs)
        released, craft_secs, craft_info = {}, {}, {}
        for name, m, _, _ in plan:
            parts = [f.result() for f in crafted[name]]
            released[name] = torch.cat([r[0] for r in parts])
            craft_secs[name] = sum(r[1] for r in parts)
            if m == "alignment" and name == "alignment":
                craft_info[name] = outcome.alignment_info([r[3] for r in parts], [len(r[0]) for r in parts])
                for k in snapshots:
                    v.snapshot(outcome.snapshot_name(k), torch.cat([r[2][k] for r in parts]))
            v.train_on(name, x, released[name], p.victims.archs if name in p.methods else [v.a0])
        if ue is not None:
            released["unlearnable"], craft_secs["unlearnable"], craft_info["unlearnable"] = ue.result()
            v.train_on("unlearnable", x, released["unlearnable"], p.victims.archs)
        online_ips = None
        if online is not None:
            released["alignment_online"], online_ips, craft_secs["alignment_online"] = online.result()
            v.train_on("alignment_online", x, released["alignment_online"], p.victims.archs)
        face_results = faces_experiment(ctx, faces) if faces else None
        svc_path = svc.save(ctx.path("models", "release_service.pt"))
        info = (data, len(x), len(xt), sur_acc, craft_secs, craft_info, online_ips, face_results, str(svc_path), K)
        measured = v.measured(*info)
        out = outcome.build(p, measured)
        figs = {s: r for s, r in released.items() if s in measured.perceptual}
        outcome.write_figures(out, p, measured, x, figs, ctx.path("plots"))
        for (s, a), acc in measured.acc.items():
            run.log_metrics({f"victim_acc.{s.replace('@', '_at_')}.{a}": acc})
        if measured.craft_info.get("unlearnable"):
            run.log_metrics({"unlearnable_rounds": measured.craft_info["unlearnable"]["rounds"]})
        about = f"fixed surrogate of the release service ({p.surrogate.arch}, {data.name})"
        model_kw = dict(model=surrogate, model_name="release_surrogate", model_description=about)
        return publish(ctx, run, out, input_example=x[:2].cpu().numpy(), log=get_run_logger(), **model_kw)


def _craft(ctx, method, surrogate, g_t, x, y, eps, steps, K, name, snapshots) -> list:
    """One `craft_batch` task per poison batch of one release (the step snapshots for the alignment release)."""
    c = ctx.params.craft
    args = (c.tau, c.restarts, c.augment, c.flip, c.schedule, K)
    return [
        craft_batch.submit(
            method,
            surrogate,
            g_t,
            x[lo : lo + c.batch_size],
            y[lo : lo + c.batch_size],
            eps / 255,
            steps,
            *args,
            ctx.seed_for("craft", name, lo),
            snapshots if name == "alignment" else (),
            ctx.progress,
            f"secure_release: craft {name} images {lo}-{min(lo + c.batch_size, len(x)) - 1} ({steps} steps)",
        )
        for lo in range(0, len(x), c.batch_size)
    ]


def _service(ctx, surrogate, g_t, x, K, stats, data_name) -> ReleaseService:
    """The online release service around the fixed surrogate (the alignment objective, the craft budget)."""
    p = ctx.params
    c, eps = p.craft, p.craft.eps / 255
    return ReleaseService(
        surrogate,
        g_t,
        eps,
        p.online.steps or c.steps,
        c.tau * eps,
        c.augment,
        K,
        p.surrogate.arch,
        tuple(x.shape[1:]),
        ctx.seed_for("online"),
        flip=c.flip,
        mean=stats[0] if stats else None,
        std=stats[1] if stats else None,
        classes=list(CLASSES) if data_name == "cifar10" else None,
    )


class _Victims:
    """The victims of the released sets: one seed per arch for every set (clean- and released-trained victims
    are paired), the counter-moves, the step-snapshot victims and the perceptual distances."""

    def __init__(self, ctx, y, xt, yt, K, stats):
        self.ctx, self.p, self.y, self.xt, self.yt, self.K, self.stats = ctx, ctx.params, y, xt, yt, K, stats
        self.a0, self.counters = self.p.victims.archs[0], outcome.counter_moves(self.p)
        self.vfuts, self.cfuts, self.dist = {}, {}, {}

    def _submit(self, arch, xs, label, cm=None, curve=False):
        p = self.p
        seed = self.ctx.seed_for("victim", arch)
        return victim.submit(
            arch,
            xs,
            self.y,
            self.xt,
            self.yt,
            p.victims,
            seed,
            self.K,
            cm or "none",
            p.counter if cm else None,
            label,
            self.stats,
            curve=curve,
        )

    def train_on(self, s: str, x, xs, archs) -> None:
        """Victims, counter-moves and the distance to the clean images `x` of one training set `xs`."""
        p = self.p
        for a in archs:
            on_curve = p.diagnostics.epoch_curve and a == self.a0 and s in outcome.CURVE_SETS
            curve = (p.diagnostics.curve_epochs or True) if on_curve else False
            self.vfuts[(s, a)] = self._submit(a, xs, s, curve=curve)
        for cm in self.counters if s in outcome.counter_sets(p) else []:
            self.cfuts[(s, cm)] = self._submit(self.a0, xs, s, cm)
        if s != "clean":
            self.dist[s] = perceptual_distance.submit(x, xs)

    def snapshot(self, name: str, xs) -> None:
        self.vfuts[(name, self.a0)] = self._submit(self.a0, xs, name)

    def measured(self, data, n, n_test, sur_acc, craft_secs, craft_info, online_ips, faces, svc_path, K):
        accs = {k: f.result() for k, f in self.vfuts.items()}
        return outcome.Measured(
            data.name,
            data.source,
            n,
            n_test,
            sur_acc,
            {k: v[0] for k, v in accs.items()},
            {k: f.result()[0] for k, f in self.cfuts.items()},
            {s: f.result() for s, f in self.dist.items()},
            craft_secs,
            craft_info,
            online_ips,
            faces,
            svc_path,
            K,
            curves={k: v[1] for k, v in accs.items() if v[1]},
            victim_seconds={k: v[2] for k, v in accs.items()},
        )


def faces_experiment(ctx, faces) -> dict:
    """AT&T face identification: a surrogate on the training faces, alignment poisons of those faces, and one
    victim trained on the clean and one on the released faces (paired: the same victim seed). Kept at its
    digits-era setting (no normalisation or augmentation, `faces.craft` budget)."""
    (fx, fy, fxt, fyt), n_subjects, _ = faces
    p, vseed, fc = ctx.params, ctx.seed_for("faces", "victim"), ctx.params.faces.craft
    upd = {
        "epochs": p.faces.epochs,
        "lr": p.faces.lr,
        "batch_size": p.faces.batch_size,
        "augment": False,
        "warmup_epochs": 0.0,
    }
    fcfg = p.victims.model_copy(update=upd)
    scfg = p.surrogate.model_copy(update={"arch": p.faces.arch, **upd})
    clean_f = victim.submit(p.faces.arch, fx, fy, fxt, fyt, fcfg, vseed, n_subjects, label="faces clean")
    fsur, fg, fsur_acc = train_surrogate.submit(
        fx, fy, fxt, fyt, scfg, n_subjects, ctx.seed_for("faces", "surrogate")
    ).result()
    bs = ctx.params.craft.batch_size
    parts = [
        craft_batch.submit(
            "alignment",
            fsur,
            fg,
            fx[lo : lo + bs],
            fy[lo : lo + bs],
            fc.eps / 255,
            fc.steps,
            fc.tau,
            1,
            True,
            fc.flip,
            fc.schedule,
            n_subjects,
            ctx.seed_for("faces", "craft", lo),
        )
        for lo in range(0, len(fx), bs)
    ]
    frel = torch.cat([f.result()[0] for f in parts])
    fr = victim.submit(p.faces.arch, frel, fy, fxt, fyt, fcfg, vseed, n_subjects, label="faces released")
    dist = perceptual_distance.submit(fx, frel)
    return {
        "surrogate_acc": fsur_acc,
        "clean_acc": clean_f.result()[0],
        "released_acc": fr.result()[0],
        "n_train": len(fx),
        "n_test": len(fxt),
        "subjects": n_subjects,
        "eps": fc.eps,
        **dist.result(),
    }


@flow(name="release_folder")
def release_folder_flow(
    in_dir: str,
    out_dir: str,
    service: str = "models/secure_release/release_service.pt",
    batch_size: int = 32,
    watch_seconds: float = 0.0,
    poll_seconds: float = 2.0,
) -> dict:
    """Protect every image of `in_dir` into `out_dir` (atomic writes, originals untouched); with
    `watch_seconds > 0`, keep polling the folder for new files for that long."""
    svc = ReleaseService.load(service)
    total = {"protected": 0, "skipped": 0}
    deadline = time.time() + watch_seconds
    while True:
        r = protect_new_files.submit(svc, in_dir, out_dir, batch_size).result()
        total["protected"] += r["protected"]
        total["skipped"] = r["skipped"]
        if time.time() >= deadline:
            return total
        time.sleep(poll_seconds)
