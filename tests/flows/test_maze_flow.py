import pytest


@pytest.mark.slow
def test_maze_flows_tiny(prefect_harness, tiny, tmp_path, check_study_outputs):
    from flows.maze import build_mazes_flow, maze_flow

    params = tiny(["maze"])
    built = build_mazes_flow(params_path=str(params), root=str(tmp_path))
    assert set(built) == {"train_5", "test_5", "test_7"}
    out = maze_flow(params_path=str(params), root=str(tmp_path))
    r = check_study_outputs(tmp_path, out, "maze", {"extrapolation", "more_iterations_help"})
    assert set(r["exact_match"]) == {"5", "7"}
    assert len(r["tables"]["twins"]["rows"]) == 1
    assert (tmp_path / "models" / "maze" / "recurrent.pt").exists()
    assert (tmp_path / "checkpoints" / "maze" / "recurrent.pt").exists()
