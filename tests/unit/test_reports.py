"""Claims tables and reports from results files, with the seed spread beside each trained claim."""

import json

from tenfold.core.claims import claim, within
from tenfold.core.outcome import Outcome
from tenfold.core.reports import claims_table, holds_cell, render, render_all, spread_verdict


def _results(measured=0.95, target=0.9):
    c = claim("extrapolation", "solves larger mazes", "yes", measured, target, ">=")
    return Outcome(
        [c], {"acc": measured}, tables={"t": {"title": "T", "columns": ["a"], "rows": [[1.23456]]}}, notes=["a note"]
    ).results("maze", "2102.11011", "Mazes")


def test_margin_smaller_than_the_seed_spread_is_flagged():
    c = _results(0.95)["claims"][0]
    assert spread_verdict(c, {"values": [0.93, 0.97, 0.99]}) == ("0.93 to 0.99 (3 seeds)", True)  # margin 0.05 < 0.06
    assert spread_verdict(c, {"values": [0.94, 0.95, 0.96]})[1] is False  # margin 0.05 > 0.02
    assert spread_verdict(c, None) == ("", False) and spread_verdict(c, {"values": []}) == ("", False)
    # with the benchmark's per-seed verdicts the cell says in how many seeds the claim held
    assert spread_verdict(c, {"values": [0.85, 0.95, 0.99], "holds": [False, True, True]})[0] == (
        "0.85 to 0.99 (3 seeds, held in 2)"
    )


def test_a_claim_measurable_at_some_seeds_only_names_them():
    c = _results(0.95)["claims"][0]
    one = {"seeds": [1], "values": [0.1175], "holds": [True]}
    assert spread_verdict(c, one, [0, 1, 2]) == ("0.117 (seed 1 only, held; n/a at seeds 0, 2)", False)
    assert spread_verdict(c, {"values": [0.9]}) == ("0.9 (1 seed)", False)
    # in the spread file but measurable at no seed: the cell says so instead of staying empty
    assert spread_verdict(c, {"seeds": [], "values": []}, [0, 1, 2]) == ("n/a at seeds 0, 1, 2", False)
    assert spread_verdict(c, None, [0, 1, 2]) == ("", False)
    two = {"seeds": [0, 2], "values": [0.93, 0.99], "holds": [True, True]}
    assert spread_verdict(c, two, [0, 1, 2]) == ("0.93 to 0.99 (2 seeds, held in 2; n/a at seed 1)", True)
    full = {"seeds": [0, 1, 2], "values": [0.93, 0.97, 0.99]}
    assert spread_verdict(c, full, [0, 1, 2])[0] == "0.93 to 0.99 (3 seeds)"
    # the report takes the seeds the study ran from its other claims
    spreads = {"extrapolation": one, "other": {"seeds": [0, 1, 2], "values": [1.0, 2.0, 3.0]}}
    assert "0.117 (seed 1 only, held; n/a at seeds 0, 2)" in render(_results(0.95), "reports", spreads)


def test_report_shows_claims_tables_notes_and_the_spread(tmp_path):
    r = _results(0.95)
    text = render(r, "reports", {"extrapolation": {"values": [0.93, 0.97, 0.99]}})
    assert "# Mazes (arXiv:2102.11011)" in text and "| `extrapolation` |" in text
    assert "0.93 to 0.99 (3 seeds)" in text and "yes (margin < seed spread)" in text
    assert "| 1.235 |" in text and "- a note" in text
    assert "seed spread" not in render(r, "reports").split("## T")[0].lower()


def test_render_all_writes_each_report_and_the_index(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "maze.json").write_text(json.dumps(_results(0.5)))
    spread = tmp_path / "spread.json"
    spread.write_text(json.dumps({"studies": {"maze": {"extrapolation": {"values": [0.3, 0.5, 0.95]}}}}))
    written = render_all(tmp_path / "results", tmp_path / "reports", spread)
    assert [p.name for p in written] == ["maze.md", "index.md"]
    index = (tmp_path / "reports" / "index.md").read_text()
    assert (
        "| [maze](maze.md) | `extrapolation` | yes | 0.5 | 0.3 to 0.95 (3 seeds) | >= 0.9 | "
        "**no** (margin < seed spread) |" in index
    )


def test_a_tolerance_claim_shows_its_band_and_is_flagged_at_the_band_edge():
    c = claim("repro_2018", "reproducibility within 0.05 of the paper", 0.7, 0.6908, 0.7, within(0.05)).as_dict()
    assert c["holds"] and c["comparison"] == "within 0.05 of"
    assert (
        not claim("r", "x", 0.7, 0.64, 0.7, within(0.05)).holds and claim("r", "x", 0.7, 0.74, 0.7, within(0.05)).holds
    )
    assert "| within 0.05 of 0.7 | yes |" in claims_table([c])
    # 0.0408 from the band's edge: a 0.03 spread leaves it, a 0.05 spread can cross it
    assert spread_verdict(c, {"values": [0.68, 0.69, 0.71]})[1] is False
    assert spread_verdict(c, {"values": [0.66, 0.69, 0.71]})[1] is True


def test_seed_spread_benchmark_merges_studies_and_drops_missing_measurements(tmp_path):
    from benchmarks.seed_spread import spread_entry, write_outputs

    per_seed = {
        0: {"a": {"measured": 0.5, "target": 0.3, "holds": True}},
        1: {"a": {"measured": None, "target": 0.3, "holds": False}},
        2: {"a": {"measured": 0.2, "target": 0.3, "holds": False}},
    }
    e = spread_entry(per_seed)
    assert e == {"a": {"seeds": [0, 2], "values": [0.5, 0.2], "holds": [True, False], "target": 0.3}}
    out = tmp_path / "spread.json"
    write_outputs({"studies": {"maze": e}, "commits": {"maze": "abc1234"}}, out)
    assert json.loads(out.read_text())["studies"]["maze"] == e
    md = out.with_suffix(".md").read_text()
    assert "| maze | abc1234 | an unrecorded CPU | `a` | 0, 2 | 0.5, 0.2 | 0.2 | 0.5 | 0.3 | 1 of 2 |" in md
    # each study names the CPU it was measured on; a file from before the per-study entries names one for all
    write_outputs({"studies": {"maze": e, "depth": e}, "machine": {"machine.cpu": "Xeon"}}, out)
    assert "| maze |  | Xeon | `a` |" in out.with_suffix(".md").read_text()
    doc = {"studies": {"maze": e, "depth": e}, "machines": {"maze": "AMD EPYC"}, "machine": {"machine.cpu": "Xeon"}}
    write_outputs(doc, out)
    md = out.with_suffix(".md").read_text()
    assert "| maze |  | AMD EPYC | `a` |" in md and "| depth |  | Xeon | `a` |" in md


def test_seed_spread_project_keeps_outputs_and_refresh_recopies_the_committed_code(tmp_path):
    import yaml

    from benchmarks.seed_spread import _mark_run, _project, _ran

    proj = _project(3, tmp_path)
    assert yaml.safe_load((proj / "params.yaml").read_text())["common"]["seed"] == 3
    (proj / "flows" / "cli.py").write_text("stale\n")  # code of an earlier commit
    (proj / "metrics").mkdir(exist_ok=True)
    (proj / "metrics" / "x.json").write_text("{}")  # an output of a stage run there
    assert _project(3, tmp_path) == proj and (proj / "flows" / "cli.py").read_text() == "stale\n"  # kept as is
    _project(3, tmp_path, refresh=True)
    assert (proj / "flows" / "cli.py").read_text() != "stale\n" and (proj / "metrics" / "x.json").exists()
    assert yaml.safe_load((proj / "params.yaml").read_text())["common"]["seed"] == 3
    # a project's metrics files are the committed ones until its stage runs: only stages marked as run are reused
    assert (proj / "metrics" / "security.json").exists() and _ran(proj) == set()
    _mark_run(proj, "craft_poisons")
    _mark_run(proj, "security")
    assert _ran(proj) == {"craft_poisons", "security"}
    assert {"security", "augmentation"} & _ran(proj) == {"security"}


def test_a_committed_run_that_differs_from_the_spreads_value_at_its_seed_widens_the_range():
    c = _results(0.90)["claims"][0]  # holds (>= 0.9) with no margin
    spread = {"seeds": [0, 1, 2], "values": [0.97, 0.95, 0.99], "holds": [True, True, True]}
    # seed 0's value in the spread is another CPU's: this run's 0.90 joins the range and the count
    assert spread_verdict(c, spread, [0, 1, 2], run_seed=0) == ("0.9 to 0.99 (3 seeds + this run, held in 4)", True)
    # the same run as the spread's seed 0: nothing added; without a run seed, the benchmark's range alone
    same = {**spread, "values": [0.90, 0.95, 0.99]}
    assert spread_verdict(c, same, [0, 1, 2], run_seed=0) == ("0.9 to 0.99 (3 seeds, held in 3)", True)
    assert spread_verdict(c, spread, [0, 1, 2]) == ("0.95 to 0.99 (3 seeds, held in 3)", True)
    assert spread_verdict(c, spread, [0, 1, 2], run_seed=7)[0] == "0.95 to 0.99 (3 seeds, held in 3)"
    text = render(_results(0.90), "reports", {"extrapolation": spread}, run_seed=0)
    assert "0.9 to 0.99 (3 seeds + this run, held in 4)" in text and "`+ this run`" in text


def test_seed_spread_of_another_configuration_keeps_its_projects_and_file_apart(tmp_path, capsys):
    import pytest
    import yaml

    from benchmarks.seed_spread import HERE, _project, main, parse_sets, write_outputs

    sets = parse_sets(["security.craft.targets=24", "security.data.n_train=4000", "maze.eval.test_iters=[5, 10]"])
    assert sets == {"security.craft.targets": 24, "security.data.n_train": 4000, "maze.eval.test_iters": [5, 10]}
    for bad in ["security.craft.targets", "targets=24", "security..targets=24"]:
        with pytest.raises(ValueError, match="section.key=value"):
            parse_sets([bad])
    proj = _project(1, tmp_path, sets={"security.craft.targets": 24})
    default = _project(1, tmp_path)
    assert proj != default and proj.parent.name == "seed1-security.craft.targets=24"
    listed = _project(1, tmp_path, sets=parse_sets(["security.craft.attacks=[gradient_matching]"]))
    assert listed.parent.name == "seed1-security.craft.attacks=gradient_matching"  # a plain folder name
    assert yaml.safe_load((listed / "params.yaml").read_text())["security"]["craft"]["attacks"] == ["gradient_matching"]
    p = yaml.safe_load((proj / "params.yaml").read_text())
    assert p["common"]["seed"] == 1 and p["security"]["craft"]["targets"] == 24
    assert (
        p["security"]["craft"]["trials"]
        == yaml.safe_load((default / "params.yaml").read_text())["security"]["craft"]["trials"]
    )  # the rest of the section as committed
    assert yaml.safe_load((default / "params.yaml").read_text())["security"]["craft"]["targets"] != 24
    # the reports read seed_spread.json as the default's spread: another configuration must not write there, nor
    # into a file of a third configuration; each refusal comes before any stage runs
    committed = (HERE / "seed_spread.json").read_text()
    other = tmp_path / "other.json"
    other.write_text('{"studies": {"security": {}}, "sets": {"security.craft.targets": 16}}')
    for argv, msg in [
        (["--set", "security.craft.targets=24"], "give it its own --out"),
        (["--set", "common.seed=3", "--out", str(tmp_path / "s.json")], "use --seeds"),
        (["--set", "security.craft.targets=24", "--out", str(other)], "holds another configuration"),
        (["--out", str(other)], "holds another configuration"),
    ]:
        with pytest.raises(SystemExit) as e:
            main([*argv, "--studies", "security", "--work", str(tmp_path / "w")])
        assert e.value.code == 2 and msg in capsys.readouterr().err
    assert (HERE / "seed_spread.json").read_text() == committed and not (tmp_path / "w").exists()
    doc = {"sets": sets, "studies": {"security": {"c": {"seeds": [0], "values": [0.25], "holds": [False]}}}}
    write_outputs(doc, tmp_path / "gm.json")
    md = (tmp_path / "gm.md").read_text()
    assert "CPU default with `security.craft.targets=24`, `security.data.n_train=4000`" in md
    assert "The reports do not read this file" in md and "`gm.json` holds" in md


def test_a_claim_that_meets_its_target_but_fails_names_its_other_condition():
    cut = claim("cutmix_backdoor_cut", "CutMix cuts the backdoor, accuracy within 1 point", "mitigates", 0.87, 0.5)
    cut = {**cut.as_dict(), "holds": False, "note": "clean-accuracy drop +0.0195; gone at longer training"}
    assert holds_cell(cut) == "**no** (clean-accuracy drop +0.0195; gone at longer training)"
    assert holds_cell(cut, fragile=True).endswith("training) (margin < seed spread)")
    assert "| **no** (clean-accuracy drop +0.0195; gone at longer training) |" in claims_table([cut])
    short = {**cut, "measured": 0.3}  # below the target: the value itself says why, the note stays out
    assert holds_cell(short) == "**no**"
    held = claim("x", "x", "x", 0.9, 0.5).as_dict()
    assert holds_cell({**held, "note": "a note"}) == "yes"
    assert holds_cell({**cut, "measured": None}) == "**no**"
