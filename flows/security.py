"""Study `security` (arXiv:2012.10544, the dataset-security survey made executable).

`craft_poisons_flow` (DVC stage `craft_poisons`) trains the clean network and crafts every attack's poisons for
every setup (plus adaptive gradient matching with a defense's mixing in the loop); the files under
<data_root>/security/poisons are DVC outputs reused, not recrafted, by `security_flow` and `augmentation_flow`.
`security_flow` runs the attack x defense grid of the benchmark protocol and publishes (taxonomy tables generated
from the registries, the grid table, the heat maps), one MLflow run with a nested run per cell.
"""

from __future__ import annotations

from prefect import flow
from prefect.logging import get_run_logger

from flows.common import prepare, publish, tracked
from tasks.progress import results
from tasks.security import (
    control_victim,
    craft_poison,
    dilution_check,
    dilution_reference,
    load_crafted,
    load_data,
    log_cells,
    log_dilution,
    run_cells,
    train_clean,
)
from tenfold.core.runtime import md5_file
from tenfold.studies.security import benchmark, crafted, outcome, plan


@flow(name="craft_poisons")
def craft_poisons_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    """Clean network + crafted poisons for every (attack, trial); writes manifest.json beside them."""
    ctx = prepare("security", params_path, root)
    p, out = ctx.params, crafted.poison_dir(ctx.data_root)
    out.mkdir(parents=True, exist_ok=True)
    data_seed = ctx.seed_for("data")  # recorded in the manifest: the later stages load the same subset
    data = load_data.submit(p.data, str(ctx.data_root), data_seed).result()
    surrogate, acc = train_clean.submit(
        data, p.victim, ctx.device, ctx.seed_for("clean_net"), str(out / crafted.CLEAN_NET)
    ).result()
    futures, flip = [], p.victim.augment and p.victim.flip
    for label, mix_name, setups in plan.craft_jobs(p):
        mix = benchmark.mixer(mix_name, p.defense, data.num_classes) if mix_name else None
        for t in range(setups):
            futures.append(
                craft_poison.submit(
                    benchmark.base_attack(label),
                    data,
                    surrogate,
                    p.budget,
                    p.craft,
                    t,
                    ctx.seed_for("setup", t),
                    ctx.device,
                    str(out / f"{label}_{t}.npz"),
                    mix,
                    label,
                    flip,
                    ctx.progress,
                )
            )
    manifest = crafted.manifest(p, ctx.common.seed, data, data_seed, acc, [f.result() for f in futures])
    crafted.write_manifest(out, manifest)
    get_run_logger().info("crafted %d poisons into %s", len(manifest["poisons"]), out)
    return manifest


@flow(name="security")
def security_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    ctx = prepare("security", params_path, root)
    p, pdir = ctx.params, crafted.poison_dir(ctx.data_root)
    data, net, manifest = load_crafted.submit(str(ctx.data_root), p, ctx.common.seed).result()
    with tracked(ctx, tags={"data_source": manifest["source"]}) as run:
        run.log_dataset("poisons", md5_file(pdir / crafted.MANIFEST), str(pdir), "training")
        victim_seed = ctx.seed_for("victim")  # every cell's victim starts alike: cells differ by poison and defense
        setups = plan.control_setups(p, manifest["poisons"])
        control = control_victim.submit(data, p.victim, ctx.device, victim_seed, setups) if setups else None
        tasks = [
            run_cells.submit(
                e["path"], cols, data, p.victim, p.defense, net, ctx.device, victim_seed, manifest["clean_acc"]
            )
            for e, cols in plan.claim_first(plan.grid_tasks(p, manifest["poisons"]))
        ]
        checked, diag = plan.dilution_poisons(p, manifest["poisons"]), []
        if checked:
            ref = dilution_reference.submit(data, p.victim, p.diagnostic, net, ctx.device, ctx.seed_for("dilution"))
            diag = [
                dilution_check.submit(
                    e["path"], data, p.victim, p.diagnostic, net, ctx.device, ctx.seed_for("dilution"), ref
                )
                for e in checked
            ]
        cells = results(tasks, f"security: grid ({len(tasks)} poisons x their defenses)", ctx.progress)
        measured = outcome.Measured(
            [c for cell in cells for c in cell],
            manifest["clean_acc"],
            manifest["dataset"],
            manifest["source"],
            len(data.y_train),
            [f.result() for f in diag],
            manifest["poisons"],
            control.result() if control else [],
        )
        log_cells(run, measured.cells)
        log_dilution(run, measured.dilution)
        out = outcome.build(p, measured)
        outcome.write_figures(out, p, measured, ctx.path("plots"))
        return publish(
            ctx,
            run,
            out,
            model=net,
            model_name="clean_net",
            input_example=data.x_test[:2],
            model_description=f"clean {p.victim.arch} (width {p.victim.width}): the attacker's surrogate "
            "and the fine-tuning victims' start",
            log=get_run_logger(),
        )
