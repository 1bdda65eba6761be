"""Flow test of study `secure_release` at tiny scale on a small slice of the offline CIFAR-10 copy: the outputs of
the contract, the MLflow run and registered model, the diagnostics, and the saved 32x32 RGB release service
protecting a folder (class-name sub-folders) through `release_folder_flow`."""

import shutil
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _tiny_cifar(tmp_path: Path, train_per_class: int = 6, test_per_class: int = 4) -> dict:
    """data/cifar10 under tmp_path, built by the real `build_cifar10` path from a few images per class."""
    from tenfold.components.data import cifar10

    shared = tmp_path / "slice"
    for split, k in (("train", train_per_class), ("test", test_per_class)):
        for c in cifar10.CLASSES:
            d = shared / "cifar10" / split / c
            d.mkdir(parents=True)
            for f in sorted((SHARED / "cifar10" / split / c).iterdir())[:k]:
                shutil.copy(f, d / f.name)
    return cifar10.build(tmp_path / "data" / "cifar10", tmp_path / "data", shared)


@pytest.mark.slow
def test_secure_release_flow_tiny(prefect_harness, tiny, tmp_path, monkeypatch, check_study_outputs, capsys):
    from mlflow.tracking import MlflowClient
    from PIL import Image

    from flows.secure_release import release_folder_flow, secure_release_flow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    made = _tiny_cifar(tmp_path)
    assert made["n_train"] == 60 and made["source"].startswith("imagefolder:")
    # as on a terminal: crafting bars; the AT&T faces found through $TENFOLD_SHARED_DATA, not common.shared_data
    params = tiny(["secure_release"], {"common": {"progress": True, "shared_data": str(tmp_path.parent / "nowhere")}})
    monkeypatch.setenv("TENFOLD_SHARED_DATA", str(SHARED))
    out = secure_release_flow(params_path=str(params), root=str(tmp_path))
    assert "secure_release: craft alignment images 0-" in capsys.readouterr().err
    r = check_study_outputs(tmp_path, out, "secure_release", {"release_accuracy_drop", "online_matches_batch"})
    c = {x["id"]: x for x in r["claims"]}["release_accuracy_drop"]
    assert c["holds"] == (c["measured"] is not None and c["measured"] >= c["target"])
    acc = r["victim_acc"]
    assert set(acc) >= {
        "clean/cnn",
        "alignment/mlp",
        "alignment_online/cnn",
        "unlearnable/cnn",
        "random_noise/mlp",
        "alignment@1steps/cnn",
        "alignment@eps16/cnn",
        "adv_targeted@eps16/cnn",
    }
    assert "alignment@eps16/mlp" not in acc  # diagnostics train the first arch only
    above = acc["clean/cnn"] - 0.1  # a tiny victim may sit at chance: then no share is defined
    got = r["share_removed"]["cnn"]
    if above > 0:
        assert got == pytest.approx((acc["clean/cnn"] - acc["alignment/cnn"]) / above)
    else:
        assert got is None or got != got
    ue = r["craft_info"]["unlearnable"]  # tiny profile caps the min-min loop at 1 round
    assert ue["rounds"] == 1 and ue["stopped_by_error"] == (ue["final_error"] < 0.01)
    assert any(n.startswith("Unlearnable noise ran 1 min-min rounds") for n in r["notes"])
    assert r["faces"]["n_train"] == 40 and r["faces"]["subjects"] == 40 and 0 <= r["faces"]["released_acc"] <= 1
    assert r["perceptual"]["alignment"]["linf_255"] <= 8.0 + 1e-3
    assert r["perceptual"]["alignment@eps16"]["linf_255"] <= 16.0 + 1e-3
    assert {"steps", "eps", "epochs"} <= set(r["tables"])
    assert len(r["epoch_curves"]["clean/cnn"]) == 2
    if c["measured"] is None:
        assert r["headline"]["alignment_share_removed"] is None
    else:
        assert r["headline"]["alignment_share_removed"] == pytest.approx(c["measured"], abs=1e-6)
    assert (tmp_path / "plots" / "secure_release" / "diagnostics.png").exists()
    run = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(r["run"]["mlflow_run_id"])
    assert "imagefolder" in run.data.tags["data_source"] and "att_faces" in run.data.tags["faces_source"]
    assert "victim_acc.alignment.cnn" in run.data.metrics and "alignment_share_removed" in run.data.metrics
    # the saved service protects a folder of 32x32 RGB images named by class, atomically and out of place
    src = tmp_path / "incoming" / "ship"
    src.mkdir(parents=True)
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(src / "a.png")
    done = release_folder_flow(
        str(tmp_path / "incoming"), str(tmp_path / "released"), service=r["release_service"], batch_size=4
    )
    assert done["protected"] == 1
    img = np.asarray(Image.open(tmp_path / "released" / "ship" / "a.png"), np.int16)
    assert img.shape == (32, 32, 3) and np.abs(img - 128).max() <= 8
    assert (tmp_path / "released" / "labels.csv").read_text().splitlines()[1] == "ship/a.png,8"
