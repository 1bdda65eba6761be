"""Study `augmentation` (arXiv:2011.09527): strong data augmentation (mixup, CutMix, cutout, MaxUp) against
poisoning and backdoors, compared with DP-SGD at several noise levels and the lab's batch-level clip-and-noise.

It reuses the clean network and poisons crafted by the `craft_poisons` stage (section `security`, received as
`ctx.uses["security"]`), including the adaptive gradient-matching poisons crafted with CutMix in the loop, and
publishes the defense table and the accuracy-vs-success figure per attack.
"""

from __future__ import annotations

from prefect import flow
from prefect.logging import get_run_logger

from flows.common import prepare, publish, tracked
from tasks.security import backdoor_control, load_crafted, log_cells, run_cells
from tenfold.core.runtime import md5_file
from tenfold.studies.augmentation import outcome, plan
from tenfold.studies.security import benchmark, crafted


@flow(name="augmentation")
def augmentation_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    ctx = prepare("augmentation", params_path, root)
    p, sec, pdir = ctx.params, ctx.uses["security"], crafted.poison_dir(ctx.data_root)
    data, net, manifest = load_crafted.submit(str(ctx.data_root), sec, ctx.common.seed).result()
    poisons = plan.poisons(p, manifest["poisons"])
    defenses = plan.defense_plan(p, sec.defense.dpsgd)
    victim = sec.victim if p.victim_epochs is None else sec.victim.model_copy(update={"epochs": p.victim_epochs})
    with tracked(ctx, tags={"data_source": manifest["source"]}) as run:
        run.log_dataset("poisons", md5_file(pdir / crafted.MANIFEST), str(pdir), "training")
        victim_seed = ctx.seed_for("victim")  # every cell's victim starts alike: cells differ by poison and defense

        def cells(e, label, name, cfg, v):
            args = (data, v, sec.defense, net, ctx.device, victim_seed, manifest["clean_acc"], cfg)
            return run_cells.submit(e["path"], [(name, None, label)], *args)

        backdoors = [e for e in poisons if e["attack"] == p.backdoor]
        futures = [
            cells(e, label, name, None, victim.model_copy(update={"epochs": ep}))
            for e in backdoors
            for label, name, ep in plan.curve(p, victim.epochs)
        ] + [cells(e, *row, victim) for e, row in plan.schedule(poisons, defenses)]
        controls = [backdoor_control.submit(e["path"], net, data, ctx.device) for e in backdoors]
        done = [c for f in futures for c in f.result()]
        log_cells(run, done)
        measured = outcome.Measured(
            done,
            benchmark.summarize(done),
            [lab for lab, _, _ in defenses],
            manifest["clean_acc"],
            manifest["dataset"],
            len(data.y_train),
            p.setups,
            p.targeted_setups,
            victim.epochs,
            [c.result() for c in controls],
        )
        out = outcome.build(p, measured, sec.accept_min_clean_acc)
        outcome.write_figures(out, p, measured, ctx.path("plots"))
        return publish(
            ctx,
            run,
            out,
            model=net,
            model_name="clean_net",
            input_example=data.x_test[:2],
            model_description=f"clean {sec.victim.arch} (surrogate of the crafted poisons)",
            log=get_run_logger(),
        )
