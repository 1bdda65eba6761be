"""Study `maze` (arXiv:2102.11011): recurrent nets trained on small mazes solve larger ones by iterating longer.

`build_mazes_flow` (DVC stage `build_mazes`) generates the seeded maze files; `maze_flow` trains the recurrent net
and the recurrent/feed-forward twins, evaluates exact match per iteration count and size, and publishes.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.logging import get_run_logger

from flows.common import prepare, publish, tracked
from tasks.maze import build_maze_file, evaluate_mazes, load_mazes, maze_file, predict_mazes, train_maze
from tenfold.components.models.recurrent import count_parameters
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.runtime import atomic_torch_save, fingerprint, md5_file
from tenfold.studies.maze import outcome
from tenfold.studies.maze.generate import to_rgb


@flow(name="build_mazes")
def build_mazes_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    ctx = prepare("maze", params_path, root)
    d = ctx.params.data
    jobs = [("train", d.train_size, d.train_count)] + [("test", s, d.test_count) for s in d.test_sizes]
    # distinct, reproducible streams per file: train and test never share mazes
    futures = [
        build_maze_file.submit(
            str(maze_file(ctx.data_root, split, size)), count, size, d.scale, ctx.seed_for("mazes", split, size)
        )
        for split, size, count in jobs
    ]
    return {f"{s}_{z}": f.result() for (s, z, _), f in zip(jobs, futures)}


@flow(name="maze")
def maze_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    ctx = prepare("maze", params_path, root)
    p, d, T = ctx.params, ctx.params.data, ctx.params.model.train_iters
    paths = {s: maze_file(ctx.data_root, "test", s) for s in d.test_sizes}
    paths["train"] = maze_file(ctx.data_root, "train", d.train_size)
    loaded = {
        k: load_mazes.submit(str(path), d.train_size if k == "train" else k, d.scale) for k, path in paths.items()
    }
    (codes, targets, _), tests = loaded.pop("train").result(), {s: f.result() for s, f in loaded.items()}
    md5 = {k: md5_file(path) for k, path in paths.items()}
    with tracked(ctx, tags={"data_source": "generated (tenfold.studies.maze.generate)"}) as run:
        for k, path in paths.items():
            run.log_dataset(path.stem, md5[k], str(Path(path).resolve()), "training" if k == "train" else "evaluation")
        seed = ctx.seed_for("net")
        ckpt = Checkpoint(
            ctx.path("checkpoints", "recurrent.pt"),
            fingerprint(p.model.model_dump(), p.train.model_dump(), md5["train"], seed),
        )
        net = lambda k, rec: (p.model.width, k, rec, p.model.recall, p.model.init)  # noqa: E731
        run_cfg = (ctx.device, seed, ckpt, ctx.progress, ctx.common.nproc, ctx.common.threads)
        main = train_maze.submit(codes, targets, *net(T, True), p.train, *run_cfg)
        twins = {}  # recurrent vs feed-forward at matched effective depth, fanned out through the task runner
        cfg, n = p.train.model_copy(update={"epochs": p.compare.epochs}), min(p.compare.train_count, len(codes))
        for k in p.compare.iters if p.compare.enabled else []:
            for rec in (True, False):
                name, seed_k = f"{'recurrent' if rec else 'feedforward'}_{k}", ctx.seed_for("twin", k)  # shared by both
                ck = Checkpoint(
                    ctx.path("checkpoints", f"{name}.pt"),
                    fingerprint(name, p.model.width, cfg.model_dump(), md5["train"], n, seed_k),
                )
                twins[(k, rec)] = train_maze.submit(
                    codes[:n], targets[:n], *net(k, rec), cfg, ctx.device, seed_k, ck, False
                )
        model, history = main.result()
        iters = outcome.iteration_counts(p)
        evals = {
            s: evaluate_mazes.submit(model, c, t, iters, ctx.device, p.eval.batch_size, f"size {s}")
            for s, (c, t, _) in tests.items()
        }
        tc, tt, _ = tests[d.train_size]
        twin_evals = {
            key: evaluate_mazes.submit(
                f.result()[0], tc, tt, [key[0]], ctx.device, p.eval.batch_size, f"twin {key[0]} rec={key[1]}"
            )
            for key, f in twins.items()
        }
        acc = {s: f.result() for s, f in evals.items()}
        rows = twin_rows(p.compare.iters if p.compare.enabled else [], twins, twin_evals)
        examples = None
        if p.eval.examples:
            big = max(d.test_sizes)
            c, t, _ = tests[big]
            k_best = max(acc[big], key=acc[big].get)
            n_ex = p.eval.examples
            examples = (c[:n_ex], t[:n_ex], predict_mazes.submit(model, c[:n_ex], k_best, ctx.device).result(), k_best)
        measured = outcome.Measured(acc, history, count_parameters(model), len(codes), rows, examples)
        out = outcome.build(p, measured)
        outcome.write_figures(out, p, measured, ctx.path("plots"))
        atomic_torch_save(ctx.path("models", "recurrent.pt"), model.state_dict())
        for rec in history:
            run.log_metrics({"train_loss": rec["loss"]}, step=rec["epoch"])
        for s, a in acc.items():
            for k, v in a.items():
                run.log_metrics({f"exact_match_size{s}": v}, step=k)
        about = f"recurrent maze net, trained size {d.train_size}, {T} iterations"
        model_kw = dict(model=model, model_name="recurrent_maze_net", model_description=about)
        return publish(ctx, run, out, input_example=to_rgb(tc[:2]), log=get_run_logger(), **model_kw)


def twin_rows(iters, twins, twin_evals) -> list[list]:
    """One table row per iteration count k: depth 4 + 4k, then accuracy and parameters of the recurrent and the
    feed-forward twin."""
    return [
        [k, 4 + 4 * k]
        + [
            v
            for rec in (True, False)
            for v in (round(twin_evals[(k, rec)].result()[k], 4), count_parameters(twins[(k, rec)].result()[0]))
        ]
        for k in iters
    ]
