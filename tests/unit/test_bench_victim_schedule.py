"""The victim-schedule benchmark's command line: `schedule:epochs` pairs, refused when malformed."""

import argparse

import pytest

from benchmarks.bench_victim_schedule import DEFAULT_RUNS, parse_run


def test_parse_run_reads_schedule_and_epochs():
    assert parse_run("cosine:6") == ("cosine", 6) and parse_run("step:20") == ("step", 20)
    assert [parse_run(r)[0] for r in DEFAULT_RUNS] == ["step", "cosine", "cosine", "step", "cosine"]


@pytest.mark.parametrize("bad", ["cosine", "linear:10", "step:0", "step:-2", "cosine:ten", ":10"])
def test_parse_run_refuses_malformed(bad):
    with pytest.raises(argparse.ArgumentTypeError, match="schedule:epochs"):
        parse_run(bad)
