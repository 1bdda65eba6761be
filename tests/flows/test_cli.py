import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.cli import main
from flows.common import available_targets
from tenfold.registry import DATA_STAGES, stages

ROOT = Path(__file__).resolve().parents[2]


def test_bad_params_fail_before_any_compute_naming_the_key(tmp_path, capsys):
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({"maze": {"train": {"lr": -1}}}))
    assert main(["--params", str(p), "run", "maze"]) == 2
    err = capsys.readouterr().err
    assert "maze.train.lr" in err and "Traceback" not in err


def test_report_validates_params_before_reading_the_seed(tmp_path, capsys):
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({"common": {"seed": "zero"}}))
    assert main(["--params", str(p), "--root", str(tmp_path), "report"]) == 2
    err = capsys.readouterr().err
    assert "common.seed" in err and "Traceback" not in err
    p.write_text(yaml.safe_dump({"common": [1, 2]}))  # a raw read of this failed with AttributeError
    assert main(["--params", str(p), "--root", str(tmp_path), "report"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_unknown_target(tmp_path, capsys):
    assert main(["run", "nonsense"]) == 2
    err = capsys.readouterr().err
    assert "unknown stage 'nonsense'" in err and "build_mazes" in err and "Traceback" not in err


def test_check_and_profile(tmp_path, capsys):
    p = tmp_path / "params.yaml"
    p.write_text((ROOT / "params.yaml").read_text())
    assert main(["--params", str(p), "check"]) == 0
    assert main(["--params", str(p), "profile", str(ROOT / "profiles" / "paper.yaml")]) == 0
    merged = yaml.safe_load(p.read_text())
    assert merged["maze"]["data"]["scale"] == 2 and merged["maze"]["model"]["width"] == 128
    assert main(["--params", str(p), "profile", "no-such-profile"]) == 2


def test_available_targets_follow_params_sections(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({"common": {"seed": 1}, "maze": {}}))
    assert available_targets(p) == ["build_mazes", "maze"]  # no study present reads CIFAR-10: no build_cifar10
    p.write_text(yaml.safe_dump({"common": {"seed": 1}, "maze": {}, "depth": {}}))
    assert available_targets(p) == ["build_cifar10", "build_mazes", "maze", "depth"]  # the shared build first
    assert set(available_targets(ROOT / "params.yaml")) <= set(stages()) | set(DATA_STAGES)


@pytest.mark.slow
def test_corrupt_maze_file_gives_a_clear_error_through_the_real_flow(tmp_path, tiny):
    params = tiny(["maze"])
    run = lambda *a: subprocess.run(
        [sys.executable, "-m", "flows.cli", "--params", str(params), "--root", str(tmp_path), *a],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    r = run("run", "build_mazes")
    assert r.returncode == 0, r.stderr[-3000:]
    f = tmp_path / "data" / "mazes" / "train_5.npz"
    f.write_bytes(f.read_bytes()[:100])
    r = run("run", "maze")
    assert r.returncode == 2
    last = (
        r.stderr.strip().splitlines()[-1]
        if "tenfold: error" in r.stderr.strip().splitlines()[-1]
        else next(line for line in r.stderr.splitlines() if line.startswith("tenfold: error"))
    )
    assert "train_5.npz: corrupt or truncated" in last and "dvc repro build_mazes" in last
    assert not (tmp_path / "metrics" / "maze.json").exists()


def test_an_unreadable_stage_output_names_the_file_and_the_stage_that_rebuilds_it(tmp_path):
    from flows.cli import explain, stage_producing
    from tenfold.core.checkpoints import CheckpointError
    from tenfold.core.errors import ArtifactError

    assert stage_producing(ROOT / "data" / "openreview" / "reviews.parquet", ROOT) == "scrape_openreview"
    assert stage_producing(ROOT / "data" / "cifar10" / "cifar10.npz", ROOT) == "build_cifar10"
    assert stage_producing(ROOT / "models" / "maze" / "recurrent.pt", ROOT) == "maze"
    assert stage_producing(tmp_path / "elsewhere.pt", ROOT) is None
    e = ArtifactError(ROOT / "data" / "openreview" / "reviews.parquet", "corrupt or truncated parquet")
    assert explain(e, ROOT) == (
        f"{ROOT}/data/openreview/reviews.parquet: corrupt or truncated parquet; rebuild it "
        "with `dvc repro scrape_openreview`"
    )
    ck = CheckpointError(tmp_path / "x.pt", "cannot load this checkpoint\nsecond line")
    assert explain(ck, ROOT) == f"{tmp_path}/x.pt: cannot load this checkpoint"
