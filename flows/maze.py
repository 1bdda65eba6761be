"""Study `maze` (arXiv:2102.11011): recurrent nets trained on small mazes solve larger ones by iterating longer.

The maze files come from `flows/data.py` (DVC stage `build_mazes`); this flow trains the recurrent
net and the recurrent/feed-forward twins, evaluates exact match per iteration count and size, and writes
metrics/maze.json, plots/maze/, models/maze/ and an MLflow run with the registered model.
"""
from __future__ import annotations

import time
from pathlib import Path

from prefect import flow
from prefect.logging import get_run_logger

from flows.common import data_root as _data_root, prepare, publish, run_flow
from tasks.data import load_mazes, maze_file
from tasks.evaluate import evaluate_mazes
from tasks.track import study_run
from tasks.train import train_maze
from tenfold import ARXIV
from tenfold.claims import claim
from tenfold.mazes import plots as maze_plots
from tenfold.mazes.train import predict
from tenfold.models.recurrent import count_parameters
from tenfold.plotting import line_plot, write_csv
from tenfold.runtime import atomic_torch_save, fingerprint, md5_file

TITLE = "The Uncanny Similarity of Recurrence and Depth: mazes"


@flow(name="maze")
def maze_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    t0 = time.time()
    ctx = prepare("maze", params_path, root)
    log = get_run_logger()
    p, d = ctx.params, ctx.params.data
    T = p.model.train_iters
    droot = _data_root(ctx)
    train_path = maze_file(droot, "train", d.train_size)
    codes, targets, _ = load_mazes(str(train_path), d.train_size, d.scale)
    test_paths = {s: maze_file(droot, "test", s) for s in d.test_sizes}
    tests = {s: load_mazes(str(path), s, d.scale) for s, path in test_paths.items()}
    data_md5 = {str(path): md5_file(path) for path in [train_path, *test_paths.values()]}

    with study_run("maze", {"common": ctx.common, "maze": p}, stage="maze", uri=ctx.common.mlflow_uri,
                   lock=ctx.root / "dvc.lock") as run:
        for path, md5 in data_md5.items():
            run.log_dataset(Path(path).stem, md5, str(Path(path).resolve()),
                            "training" if "train_" in path else "evaluation")
        run.set_tags({"data_source": "generated (tenfold.mazes.generate)", "device": str(ctx.device)})
        fp = fingerprint(p.model.model_dump(), p.train.model_dump(), data_md5[str(train_path)], ctx.seed)
        main = train_maze.submit(codes, targets, p.model.width, T, True, p.model.recall, p.model.init, p.train,
                                 ctx.device, ctx.seed, str(ctx.path("checkpoints", "recurrent.pt")), fp,
                                 ctx.common.progress)
        # recurrent vs feed-forward twins at matched effective depth, fanned out through the task runner
        pairs = {}
        if p.compare.enabled:
            cfg = p.train.model_copy(update={"epochs": p.compare.epochs})
            n = min(p.compare.train_count, len(codes))
            for k in p.compare.iters:
                for rec in (True, False):
                    name = f"{'recurrent' if rec else 'feedforward'}_{k}"
                    fpk = fingerprint(name, p.model.width, cfg.model_dump(), data_md5[str(train_path)], n, ctx.seed)
                    pairs[(k, rec)] = train_maze.submit(
                        codes[:n], targets[:n], p.model.width, k, rec, p.model.recall, p.model.init, cfg, ctx.device,
                        ctx.seed + k, str(ctx.path("checkpoints", f"{name}.pt")), fpk, False)
        model, history = main.result()
        for rec in history:
            run.log_metrics({"train_loss": rec["loss"]}, step=rec["epoch"])

        iters = sorted(set(p.eval.test_iters) | {T})
        evals = {s: evaluate_mazes.submit(model, c, t, iters, ctx.device, p.eval.batch_size, f"size {s}")
                 for s, (c, t, _) in tests.items()}
        acc = {s: f.result() for s, f in evals.items()}
        for s, a in acc.items():
            for k, v in a.items():
                run.log_metrics({f"exact_match_size{s}": v}, step=k)

        compare_rows = []
        tc, tt, _ = tests[d.train_size]
        for k in p.compare.iters if p.compare.enabled else []:
            row = [k, 4 + 4 * k]
            for rec in (True, False):
                m, _ = pairs[(k, rec)].result()
                a = evaluate_mazes.fn(m, tc, tt, [k], ctx.device, p.eval.batch_size, f"twin {k} rec={rec}")[k]
                row += [round(a, 4), count_parameters(m)]
                run.log_metrics({f"twin_{'recurrent' if rec else 'feedforward'}_acc": a}, step=k)
            compare_rows.append(row)

        # ---- claims
        xs = p.eval.extrapolation_size
        best_iter = max(acc[xs], key=acc[xs].get)
        larger = [s for s in d.test_sizes if s > d.train_size]
        gains = {s: max(v for k, v in acc[s].items() if k > T) - acc[s][T] for s in larger
                 if any(k > T for k in acc[s])}
        claims = [
            claim("extrapolation",
                  f"a recurrent net trained on size-{d.train_size} mazes solves size-{xs} mazes when allowed more "
                  "iterations at test time (exact match, best test iteration count)",
                  "trained on small mazes, solves larger ones by thinking longer", acc[xs][best_iter],
                  p.eval.extrapolation_target, ">="),
            claim("more_iterations_help",
                  "larger mazes are solved better with more iterations than trained with (min over larger sizes of "
                  "best accuracy beyond the training iterations minus accuracy at the training iterations)",
                  "accuracy on larger mazes rises with test-time iterations",
                  min(gains.values()) if gains else None, 0.0, ">"),
        ]
        passed = acc[d.train_size][T] >= p.eval.accept_min_train_acc

        # ---- plots and tables
        # fixed role columns (train / extrapolation / largest size) for `dvc plots`, whatever the test sizes,
        # then one column per size
        roles = [d.train_size, xs, max(d.test_sizes)]
        write_csv(ctx.path("plots", "acc_vs_iters.csv"),
                  ["iters", "train_size", "extrapolation_size", "largest_size", *[f"size_{s}" for s in d.test_sizes]],
                  [[k, *[acc[s][k] for s in roles], *[acc[s][k] for s in d.test_sizes]] for k in iters])
        line_plot(ctx.path("plots", "acc_vs_iters.png"), iters, {f"size {s}": [acc[s][k] for k in iters]
                  for s in d.test_sizes}, "test-time iterations", "exact match",
                  f"recurrent net trained on size {d.train_size} with {T} iterations", vline=T, vlabel="trained")
        write_csv(ctx.path("plots", "acc_vs_size.csv"), ["size", "at_train_iters", "best"],
                  [[s, acc[s][T], max(acc[s].values())] for s in d.test_sizes])
        line_plot(ctx.path("plots", "acc_vs_size.png"), d.test_sizes,
                  {f"{T} iterations (trained)": [acc[s][T] for s in d.test_sizes],
                   "best test iterations": [max(acc[s].values()) for s in d.test_sizes]},
                  "maze size", "exact match", "extrapolation to larger mazes")
        write_csv(ctx.path("plots", "train_loss.csv"), ["epoch", "loss"], [[r["epoch"], r["loss"]] for r in history])
        figures = [{"path": "plots/maze/acc_vs_iters.png", "caption": "Exact match vs test-time iterations"},
                   {"path": "plots/maze/acc_vs_size.png", "caption": "Exact match vs maze size"}]
        if p.eval.examples:
            big = max(d.test_sizes)
            c, t, _ = tests[big]
            k_best = max(acc[big], key=acc[big].get)
            pred = predict(model, c[:p.eval.examples], k_best, ctx.device)
            maze_plots.examples(ctx.path("plots", "examples.png"), c[:p.eval.examples], t[:p.eval.examples], pred,
                                f"size {big}, {k_best} iterations")
            figures.append({"path": "plots/maze/examples.png", "caption": f"Size-{big} mazes solved at {k_best} iterations"})

        model_path = ctx.path("models", "recurrent.pt")
        atomic_torch_save(model_path, model.state_dict())
        notes = [f"{'Reproduced' if c.holds else 'Not reproduced'} at this scale: `{c.id}` measured "
                 f"{'n/a' if c.measured is None else f'{c.measured:.3f}'} (target {c.comparison} {c.target})."
                 for c in claims]
        for s in larger:
            last = acc[s][max(iters)]
            if last < max(acc[s].values()) - 0.02:
                notes.append(f"Size {s}: accuracy peaks at {max(acc[s], key=acc[s].get)} iterations and falls to "
                             f"{last:.3f} at {max(iters)} ('overthinking'); the progressive loss (maze.train.alpha > 0, "
                             "as in the paper profile) is the paper's remedy.")
        if d.scale == 1:
            notes.append("CPU profile: one pixel per maze grid cell (scale 1); the paper profile uses the "
                         "easy-to-hard-data layout (scale 2, side 2s+6).")
        if p.model.init != "default":
            notes.append(f"Initialisation `{p.model.init}` (He init, zero-initialised second conv per residual "
                         "block) replaces PyTorch's default so that a few CPU minutes suffice; the paper profile "
                         "uses the default init of the original code.")
        reg = run.log_model(model, "recurrent_maze_net", input_example=_example(tc), passed=passed,
                            description=f"recurrent maze net, trained size {d.train_size}, {T} iterations")
        metrics = {
            "study": "maze", "arxiv": ARXIV["maze"], "title": TITLE,
            "description": (f"A recurrent net (width {p.model.width}, {T} iterations, effective depth {4 + 4 * T}, "
                            f"{count_parameters(model)} parameters) is trained on {len(codes)} size-{d.train_size} "
                            f"mazes and tested on sizes {d.test_sizes} with up to {max(iters)} iterations."),
            "claims": [c.as_dict() for c in claims],
            "exact_match": {str(s): {str(k): v for k, v in a.items()} for s, a in acc.items()},
            "best_iters": {str(s): max(a, key=a.get) for s, a in acc.items()},
            "final_train_loss": history[-1]["loss"] if history else None,
            "parameters": count_parameters(model),
            "tables": {
                "exact_match": {"title": "Exact match by maze size and test-time iterations",
                                "columns": ["size", *[f"{k} it" for k in iters]],
                                "rows": [[s, *[round(acc[s][k], 4) for k in iters]] for s in d.test_sizes]},
                "twins": {"title": "Recurrent vs feed-forward at matched effective depth (training size)",
                          "caption": "Twins trained with the same data and schedule; the feed-forward net has "
                                     "distinct weights per iteration.",
                          "columns": ["iterations", "effective depth", "recurrent acc", "recurrent params",
                                      "feed-forward acc", "feed-forward params"],
                          "rows": compare_rows},
            },
            "figures": figures, "notes": notes,
            "run": {"mlflow_run_id": run.run_id, "registered_model": f"{reg['name']} v{reg['version']}",
                    "alias_moved": passed, "device": str(ctx.device), "wall_seconds": round(time.time() - t0, 1)},
        }
        return publish(ctx, run, metrics, claims, {"extrapolation": claims[0].measured}, t0, log)


def _example(codes):
    from tenfold.mazes.generate import to_rgb
    return to_rgb(codes[:2])


def main(params_path: str = "params.yaml"):
    return run_flow(maze_flow, "maze", params_path)


if __name__ == "__main__":
    main()
