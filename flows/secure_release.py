"""Study `secure_release` (arXiv:2103.02683): poison a dataset before release so models trained on it fail.

A fixed surrogate is trained on the clean data; the paper's alignment poisons (gradient alignment with the
reverse cross-entropy), error-maximising adversarial poisons, error-minimising unlearnable noise and a random
noise control are crafted under one l_inf budget; the alignment poisons are also released online, a few items
per call, by the release service. Victims of several architectures are trained from scratch on every released
set; counter-moves (adversarial training; mixup and CutMix from the dataset-security registry) and the AT&T
face-identification experiment follow. Also `release_folder_flow`: protect a folder of images (once, or
watching it) with a saved release service.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow
from prefect.logging import get_run_logger

from flows.common import prepare, publish, tracked
from tasks.secure_release import (
    craft_release,
    load_faces,
    load_release_data,
    online_release,
    perceptual_distance,
    protect_new_files,
    train_surrogate,
    victim,
)
from tenfold.studies.secure_release import outcome
from tenfold.studies.secure_release.service import ReleaseService


@flow(name="secure_release")
def secure_release_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    ctx = prepare("secure_release", params_path, root)
    p, dev = ctx.params, ctx.device
    data_f = load_release_data.submit(p.data, str(ctx.data_root), ctx.seed_for("data"), dev)
    shared = Path(ctx.common.shared_data)
    face_dirs = [str(ctx.data_root), str(shared), str(shared / "faces")]
    faces_f = load_faces.submit(face_dirs, p.faces.side, p.faces.train_per_subject, dev) if p.faces.enabled else None
    data, (x, y, xt, yt) = data_f.result()
    faces = faces_f.result() if faces_f else None
    K, eps = data.num_classes, p.craft.eps / 255
    tags = {"data_source": data.source, **({"faces_source": faces[2]} if faces else {})}
    with tracked(ctx, tags=tags) as run:
        sur = train_surrogate.submit(x, y, xt, yt, p.surrogate, K, ctx.seed_for("surrogate"))
        surrogate, g_t, sur_acc = sur.result()
        crafted = {m: craft_release.submit(m, surrogate, g_t, x, y, p, K, ctx.seed_for("craft", m)) for m in p.methods}
        svc_args = (p.online.steps or p.craft.steps, p.craft.tau * eps, p.craft.augment, K, p.surrogate.arch)
        svc = ReleaseService(surrogate, g_t, eps, *svc_args, tuple(x.shape[1:]), ctx.seed_for("online"))
        online = online_release.submit(svc, x, y, p.online.batch_size) if p.online.enabled else None
        results = {m: f.result() for m, f in crafted.items()}
        released = {m: r[0] for m, r in results.items()}
        craft_secs = {m: r[1] for m, r in results.items()}
        online_ips = None
        if online is not None:
            released["alignment_online"], online_ips, craft_secs["alignment_online"] = online.result()
        sets = {"clean": x, **released}
        # one seed per victim arch, the same for every release: clean- and released-trained victims are paired
        futs = {
            (s, a): victim.submit(a, xs, y, xt, yt, p.victims, ctx.seed_for("victim", a), K, label=s)
            for s, xs in sets.items()
            for a in p.victims.archs
        }
        a0, counters = p.victims.archs[0], outcome.counter_moves(p)
        cfuts = {
            (s, c): victim.submit(a0, sets[s], y, xt, yt, p.victims, ctx.seed_for("victim", a0), K, c, p.counter, s)
            for s in outcome.counter_sets(list(released))
            for c in counters
        }
        dist = {s: perceptual_distance.submit(x, xs) for s, xs in released.items()}
        face_results = faces_experiment(ctx, faces) if faces else None
        svc_path = svc.save(ctx.path("models", "release_service.pt"))
        measured = outcome.Measured(
            data.name,
            data.source,
            len(x),
            len(xt),
            sur_acc,
            {k: f.result() for k, f in futs.items()},
            {k: f.result() for k, f in cfuts.items()},
            {s: f.result() for s, f in dist.items()},
            craft_secs,
            {m: r[2] for m, r in results.items()},
            online_ips,
            face_results,
            str(svc_path),
        )
        out = outcome.build(p, measured)
        outcome.write_figures(out, p, measured, x, released, ctx.path("plots"))
        for (s, a), v in measured.acc.items():
            run.log_metrics({f"victim_acc.{s}.{a}": v})
        if measured.craft_info.get("unlearnable"):
            run.log_metrics({"unlearnable_rounds": measured.craft_info["unlearnable"]["rounds"]})
        about = f"fixed surrogate of the release service ({p.surrogate.arch}, {data.name})"
        model_kw = dict(model=surrogate, model_name="release_surrogate", model_description=about)
        return publish(ctx, run, out, input_example=x[:2].cpu().numpy(), log=get_run_logger(), **model_kw)


def faces_experiment(ctx, faces) -> dict:
    """AT&T face identification: a surrogate on the training faces, alignment poisons of those faces, and one
    victim trained on the clean and one on the released faces (paired: the same victim seed)."""
    (fx, fy, fxt, fyt), n_subjects, _ = faces
    p, vseed = ctx.params, ctx.seed_for("faces", "victim")
    upd = {"epochs": p.faces.epochs, "lr": p.faces.lr, "batch_size": p.faces.batch_size}
    fcfg = p.victims.model_copy(update=upd)
    scfg = p.surrogate.model_copy(update={"arch": p.faces.arch, **upd})
    fc = victim.submit(p.faces.arch, fx, fy, fxt, fyt, fcfg, vseed, n_subjects, label="faces clean")
    fsur, fg, fsur_acc = train_surrogate.submit(
        fx, fy, fxt, fyt, scfg, n_subjects, ctx.seed_for("faces", "surrogate")
    ).result()
    frel, _, _ = craft_release.submit(
        "alignment", fsur, fg, fx, fy, p, n_subjects, ctx.seed_for("faces", "craft")
    ).result()
    fr = victim.submit(p.faces.arch, frel, fy, fxt, fyt, fcfg, vseed, n_subjects, label="faces released")
    dist = perceptual_distance.submit(fx, frel)
    return {
        "surrogate_acc": fsur_acc,
        "clean_acc": fc.result(),
        "released_acc": fr.result(),
        "n_train": len(fx),
        "n_test": len(fxt),
        "subjects": n_subjects,
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
