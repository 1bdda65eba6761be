"""Progress: a bar only when asked, and a Prefect progress artifact that reaches 100% inside a flow run."""

import pytest

from tasks.progress import progress


def test_outside_a_run_progress_only_counts(capsys):
    with progress("loop", total=3, enabled=False) as step:
        for _ in range(3):
            step()
    assert capsys.readouterr().err == ""


def test_bar_when_enabled(capsys, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")  # an explicit enabled=True still draws (auto resolution honours it)
    with progress("visible loop", total=2, enabled=True, artifact=False) as step:
        step()
        step()
    assert "visible loop" in capsys.readouterr().err


@pytest.mark.slow
def test_progress_artifact_in_a_flow_run(prefect_harness):
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    @flow
    def looping():
        with progress("Test loop: crafting", total=4) as step:
            for _ in range(4):
                step()

    looping()
    with get_client(sync_client=True) as c:
        arts = c.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["test-loop-crafting"])))
    assert arts and arts[0].type == "progress" and float(arts[0].data) == 100.0


@pytest.mark.parametrize(
    "env, tty, expected",
    [
        ({}, True, True),
        ({}, False, False),
        ({"CI": "1"}, True, False),
        ({"TQDM_DISABLE": "1"}, True, False),
        ({"TQDM_DISABLE": "0"}, True, True),
    ],
)
def test_auto_progress_resolution(monkeypatch, env, tty, expected):
    import sys

    from tenfold.core.config import show_progress

    for k in ("CI", "TQDM_DISABLE"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    assert show_progress("auto") is expected
    assert show_progress(True) is True and show_progress(False) is False


def test_results_keep_order_and_count_each_future(capsys, monkeypatch):
    from tasks.progress import results

    class Done:
        def __init__(self, v):
            self.v = v

        def result(self):
            return self.v

    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert results([Done(3), Done(1), Done(2)], "fan-out test", enabled=True) == [3, 1, 2]
    assert "fan-out test" in capsys.readouterr().err
    assert results([], "empty", enabled=False) == [] and capsys.readouterr().err == ""
