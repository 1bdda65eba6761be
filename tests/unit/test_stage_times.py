"""benchmarks/stage_times.py: the per-study time table from results/*.json, spliced into a marked section."""

import json

from benchmarks import stage_times


def test_table_lists_each_study_with_its_budget_verdict(tmp_path):
    (tmp_path / "maze.json").write_text(json.dumps({"run": {"wall_seconds": 320.4, "cpu_seconds": 600.2}}))
    (tmp_path / "lowkey.json").write_text(json.dumps({"run": {"wall_seconds": 700.0, "cpu_seconds": 1300.0}}))
    (tmp_path / "security.json").write_text(json.dumps({"run": {"wall_seconds": 650.0, "cpu_seconds": 760.0}}))
    (tmp_path / "broken.json").write_text(json.dumps({"claims": []}))  # no run record: not a row
    t = stage_times.table(tmp_path, "a host")
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


ZEN3 = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\nstepping\t: 1\n"
)


def test_host_tells_two_cpus_with_the_same_name_apart(tmp_path):
    zen3 = stage_times.host(ZEN3 + "flags\t\t: fpu sse2 avx avx2 fma\n", "AVX2")
    assert zen3.startswith("AMD EPYC (family 25, model 1, stepping 1; AVX2; torch CPU capability AVX2;")
    zen4 = stage_times.host(ZEN3.replace("model\t\t: 1", "model\t\t: 17") + "flags\t\t: avx2 avx512f\n", "AVX512")
    assert "model 17" in zen4 and "AVX-512" in zen4 and zen4 != zen3
    assert stage_times.host("", "DEFAULT").startswith("? (family ?, model ?, stepping ?; no AVX2;")
    assert "Host when this table was made (the run's host when it is made right after the run): h." in (
        stage_times.table(tmp_path, "h")
    )
