"""Tiny end-to-end runs of craft_poisons -> security -> augmentation (slow: Prefect + MLflow)."""
import json

import pytest


@pytest.mark.slow
def test_security_and_augmentation_flows(prefect_harness, tiny, tmp_path):
    from mlflow.tracking import MlflowClient

    from flows.augmentation import augmentation_flow
    from flows.security import craft_poisons_flow, security_flow

    params = tiny(["security", "augmentation"])
    manifest = craft_poisons_flow(params_path=str(params), root=str(tmp_path))
    labels = {e["attack"] for e in manifest["poisons"]}
    assert labels == {"badnets", "gradient_matching", "poison_frogs", "gradient_matching+cutmix"}
    assert (tmp_path / "data" / "security" / "poisons" / "manifest.json").exists()

    sec = security_flow(params_path=str(params), root=str(tmp_path))
    saved = json.loads((tmp_path / "metrics" / "security.json").read_text())
    assert [c["id"] for c in saved["claims"]] == ["gradient_matching_success"]
    assert saved["claims"][0]["holds"] == (saved["claims"][0]["measured"] >= 0.3)
    assert len(sec["cells"]) == 3 * 5 + 1          # none twice (both victims) + 3 defenses; 1 focus cell
    kinds = {(c["attack"], c["defense"]): c["victim"] for c in sec["cells"]}
    assert kinds[("gradient_matching", "none[from-scratch]")] == "from-scratch"
    assert kinds[("gradient_matching", "none[fine-tune]")] == "fine-tune"
    assert ("gradient_matching+cutmix", "cutmix") in kinds
    names = [r[0] for r in saved["tables"]["attack_taxonomy"]["rows"]]
    assert {"badnets", "gradient_matching", "hidden_trigger", "bullseye_polytope"} <= set(names)
    assert (tmp_path / "plots" / "security" / "success_heatmap.png").exists()
    dil = saved["tables"]["dilution"]            # one row per gradient-matching poison (plain and adaptive)
    assert [r[0] for r in dil["rows"]] == ["gradient_matching", "gradient_matching+cutmix"]
    gain = dil["columns"].index("gain")
    assert all(r[gain] == pytest.approx(r[3] - r[4], abs=2e-3) for r in dil["rows"])
    assert any("Dilution check" in n for n in saved["notes"])

    aug = augmentation_flow(params_path=str(params), root=str(tmp_path))
    assert [c["id"] for c in aug["claims"]] == ["cutmix_backdoor_cut", "dpsgd_cost"]
    assert {c["defense"] for c in aug["cells"]} == {"none", "cutmix", "mixup", "dpsgd(sigma=1)"}
    assert any(c.get("defense.epsilon", 0) > 0 for c in aug["cells"])

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(sec["run"]["mlflow_run_id"])
    for tag in ("study", "arxiv", "git_commit", "dvc_stage", "data_source"):
        assert tag in run.data.tags
    assert run.data.tags["arxiv"] == "2012.10544"
    children = client.search_runs([run.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    assert len(children) == len(sec["cells"])
    assert client.get_registered_model("tenfold-security").name == "tenfold-security"
    assert client.get_registered_model("tenfold-augmentation").latest_versions
