"""benchmarks/stage_times.py: the per-study time table from results/*.json, spliced into a marked section."""

import json

from benchmarks import stage_times


def test_table_lists_each_study_with_its_budget_verdict(tmp_path):
    (tmp_path / "maze.json").write_text(json.dumps({"run": {"wall_seconds": 320.4, "cpu_seconds": 600.2}}))
    (tmp_path / "lowkey.json").write_text(json.dumps({"run": {"wall_seconds": 700.0, "cpu_seconds": 1300.0}}))
    (tmp_path / "security.json").write_text(json.dumps({"run": {"wall_seconds": 650.0, "cpu_seconds": 760.0}}))
    (tmp_path / "broken.json").write_text(json.dumps({"claims": []}))  # no run record: not a row
    t = stage_times.table(tmp_path)
    assert "| `maze` | 320 | 600 | yes |" in t
    assert "| `lowkey` | 700 | 1300 | **no** |" in t
    # over 10 min while sharing the cores with another stage, within it alone: 760 / 2 x 1.34 = 509 s
    assert "| `security` | 650 | 760 | yes alone (~509 s) |" in t
    assert "broken" not in t and "| all studies | 1670 | 2660 | |" in t


def test_splice_replaces_only_the_marked_section():
    text = "# Benchmarks\n\n## bench_x\nkept\n"
    once = stage_times.splice(text, "A")
    assert once.startswith(text.rstrip("\n")) and once.count(stage_times.BEGIN) == 1 and "\nA\n" in once
    twice = stage_times.splice(once + "\ntail\n", "B")
    assert "\nA\n" not in twice and "\nB\n" in twice and twice.endswith("tail\n") and "kept" in twice
