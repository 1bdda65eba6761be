"""Tiny end-to-end runs of craft_poisons -> security -> augmentation (slow: Prefect + MLflow)."""

import pytest


@pytest.mark.slow
def test_security_and_augmentation_flows(prefect_harness, tiny, tmp_path, check_study_outputs, capsys):
    from mlflow.tracking import MlflowClient

    from flows.augmentation import augmentation_flow
    from flows.security import craft_poisons_flow, security_flow
    from tenfold.studies.security.crafted import CraftedMismatch

    params = tiny(["security", "augmentation"], {"common": {"progress": True}})  # as on a terminal: bars
    manifest = craft_poisons_flow(params_path=str(params), root=str(tmp_path))
    assert "craft gradient_matching+cutmix #0" in capsys.readouterr().err  # a bar of its crafting iterations
    labels = [e["attack"] for e in manifest["poisons"]]
    assert sorted(labels) == [
        "gradient_matching",
        "gradient_matching",
        "gradient_matching+cutmix",
        "patch",
        "poison_frogs",
    ]  # craft.targets 2 for gradient matching
    assert (tmp_path / "data" / "security" / "poisons" / "manifest.json").exists()
    assert manifest["made_with"]["security.victim.width"] == 4 and manifest["made_with"]["common.seed"] == 0

    sec = security_flow(params_path=str(params), root=str(tmp_path))
    assert "security: grid (" in capsys.readouterr().err  # a bar of the grid's poisons done
    saved = check_study_outputs(tmp_path, sec, "security", {"gradient_matching_success"})
    assert saved["claims"][0]["holds"] == (saved["claims"][0]["measured"] >= 0.3)
    assert len(saved["cells"]) == 3 * 5 + 2 + 1  # none twice (both victims) + 3 defenses; the 2nd target: none
    assert all(c["trained"] for c in saved["cells"])  # tiny profile: min_clean_acc 0 (every victim counts)
    assert saved["claims"][0]["measured"] in (0.0, 0.5, 1.0)  # of the 2 targets
    assert len(saved["tables"]["targets"]["rows"]) == 2
    kinds = {(c["attack"], c["defense"]): c["victim"] for c in saved["cells"]}
    assert kinds[("gradient_matching", "none[from-scratch]")] == "from-scratch"
    assert kinds[("gradient_matching", "none[fine-tune]")] == "fine-tune"
    assert ("gradient_matching+cutmix", "cutmix") in kinds
    names = [r[0] for r in saved["tables"]["attack_taxonomy"]["rows"]]
    assert {"badnets", "gradient_matching", "hidden_trigger", "bullseye_polytope"} <= set(names)
    assert (tmp_path / "plots" / "security" / "grid.csv").exists()
    dil = saved["tables"]["dilution"]  # one row per gradient-matching poison (plain and adaptive)
    assert [r[0] for r in dil["rows"]] == ["gradient_matching", "gradient_matching+cutmix"]
    gain = dil["columns"].index("gain")
    assert all(r[gain] == pytest.approx(r[3] - r[4], abs=2e-3) for r in dil["rows"])
    assert any("Dilution check" in n for n in saved["notes"])
    assert saved["headline"]["clean_acc"] == manifest["clean_acc"] == saved["clean_acc"]

    aug = augmentation_flow(params_path=str(params), root=str(tmp_path))
    r = check_study_outputs(tmp_path, aug, "augmentation", {"cutmix_backdoor_cut", "dpsgd_cost"})
    curve = {"none@2ep", "cutmix@2ep"}  # the backdoor undefended and under CutMix at the curve's longer length
    assert {c["defense"] for c in r["cells"]} == {"none", "cutmix", "mixup", "dpsgd(sigma=1)"} | curve
    assert len(r["cells"]) == 4 * 2 + 2  # 4 defense rows x (patch, adaptive gradient matching), 1 setup; the curve
    assert {c["defense"] for c in r["cells"] if c["attack"] == "patch"} >= curve
    assert any(
        n.startswith("Training length (victim epochs; patch undefended -> CutMix): 1 (main)") for n in r["notes"]
    )
    assert r["headline"]["backdoor_control_success"] is not None  # the clean network on the triggered inputs
    assert any(c.get("defense.epsilon", 0) > 0 for c in r["cells"])
    assert (tmp_path / "plots" / "augmentation" / "acc_vs_success.csv").exists()

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(sec["run"]["mlflow_run_id"])
    assert run.data.tags["arxiv"] == "2012.10544"
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    assert len(children) == len(saved["cells"])
    aug_run = client.get_run(aug["run"]["mlflow_run_id"])
    assert aug_run.data.params["security.victim.width"] == "4"  # security's params travel with the run

    # the poisons were crafted for width 4: a stage with another victim width fails naming the param, before compute
    other = tiny(["security", "augmentation"], {"security": {"victim": {"width": 6}}})
    for fl in (security_flow, augmentation_flow):
        with pytest.raises(CraftedMismatch, match=r"security\.victim\.width: crafted with 4, this run 6"):
            fl(params_path=str(other), root=str(tmp_path))
