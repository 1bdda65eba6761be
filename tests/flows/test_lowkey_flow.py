"""The three `lowkey` stages at tiny scale, in order: cached detections, surrogates, then the filter and its
evaluation (outputs of the contract, plots, trade-off, AT&T table, MLflow run and the registered surrogate)."""

import json

import numpy as np
import pytest


@pytest.mark.slow
def test_lowkey_flows_tiny(prefect_harness, tiny, tmp_path, check_study_outputs, capsys):
    from mlflow.tracking import MlflowClient

    from flows.lowkey import lowkey_flow
    from flows.lowkey_faces import lowkey_faces_flow
    from flows.lowkey_surrogates import lowkey_surrogates_flow

    params = str(tiny(["lowkey"], {"common": {"progress": True}}))  # as on a terminal: bars for the long loops
    faces = lowkey_faces_flow(params_path=params, root=str(tmp_path))
    assert faces["celeba_found"] >= faces["celeba"] - 2 and faces["att"] == 30  # tiny: 8 identities, 3 subjects
    meta = lowkey_surrogates_flow(params_path=params, root=str(tmp_path))
    assert set(meta) == {"ft_arcface", "scratch_cosface"} and meta["ft_arcface"]["init"] == "ms1m"
    assert (tmp_path / "models" / "lowkey" / "surrogates.pt").exists()
    assert "lowkey: train surrogate scratch_cosface" in capsys.readouterr().err
    record = json.loads((tmp_path / "models" / "lowkey" / "surrogates.json").read_text())
    assert record["sha256"] and all("cpu_seconds" not in v for v in record["surrogates"].values())  # timing-free
    cpu = json.loads((tmp_path / "models" / "lowkey" / "surrogates_cpu.json").read_text())
    assert set(cpu) == set(meta) and all(v > 0 for v in cpu.values())
    out = lowkey_flow(params_path=params, root=str(tmp_path))
    assert "lowkey: filter photos 0-" in capsys.readouterr().err
    ids = {"dlib_rank1_filtered", "lowkey_ssim", "dlib_rank1_subtle", "surrogate_rank1_filtered"}
    r = check_study_outputs(tmp_path, out, "lowkey", ids)
    trained, at = r["tables"]["surrogates"], r["tables"]["surrogates"]["columns"].index("CPU s")
    assert [row[at] for row in trained["rows"]] == [cpu[row[0]] for row in trained["rows"]]  # read from the timings
    models = {row[0]: row for row in r["tables"]["models"]["rows"]}
    assert set(models) == {"ms1m", "ft_arcface", "casia", "scratch_cosface", "dlib"}
    assert models["casia"][1] == "held-out" and models["dlib"][1] == "judge"
    assert models["ms1m"][2] > 0.9 and models["dlib"][3] >= 2 / 3  # pretrained recognizers know the faces
    assert 0 < r["headline"]["lowkey_ssim"] < 1 and r["headline"]["lowkey_ssim"] == r["quality"]["first"]["face_ssim"]
    t = r["tradeoff"]
    steps = [row[t["columns"].index("n_iters")] for row in t["rows"]]
    assert steps == [1, 2] * 3 and all(0 <= row[t["columns"].index("dlib_rank1")] <= 1 for row in t["rows"])
    runs = {(row[0], row[t["columns"].index("attack")]) for row in t["rows"]}
    assert runs == {
        ("default", "ms1m+ft_arcface"),
        ("lr0.01 c1 sign", "ms1m+ft_arcface"),  # the release's signed steps
        ("lr0.0025 c1 l2 by scratch_cosface", "scratch_cosface"),  # a surrogate alone, the default's L2 steps
    }
    init = {row[0]: row for row in r["tables"]["init"]["rows"]}
    assert init["scratch_cosface"][1] == "scratch" and init["scratch_cosface"][-2] is not None
    assert init["ft_arcface"][-2] is None  # it never attacked alone here
    assert r["att"]["probes"] == 3 and len(r["tables"]["att"]["rows"]) == 5
    assert all((tmp_path / "plots" / "lowkey" / f).exists() for f in ("examples.png", "tradeoff.png", "rank1.png"))
    run = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(r["run"]["mlflow_run_id"])
    assert run.data.tags["detector"].startswith("MTCNN") and run.data.tags["attack"] == "ms1m+ft_arcface"
    # the same seed again: the same filtered photos, so the same numbers
    again = lowkey_flow(params_path=params, root=str(tmp_path))
    assert again["claims"] == r["claims"] and np.allclose(again["tradeoff"]["rows"][0][7:-1], t["rows"][0][7:-1])
