"""Claims tables and reports from results files, with the seed spread beside each trained claim."""

import json

from tenfold.core.claims import claim, spread_verdict
from tenfold.core.outcome import Outcome
from tenfold.core.reports import render, render_all


def _results(measured=0.95, target=0.9):
    c = claim("extrapolation", "solves larger mazes", "yes", measured, target, ">=")
    return Outcome(
        [c], {"acc": measured}, tables={"t": {"title": "T", "columns": ["a"], "rows": [[1.23456]]}}, notes=["a note"]
    ).results("maze", "2102.11011", "Mazes")


def test_margin_smaller_than_the_seed_spread_is_flagged():
    c = _results(0.95)["claims"][0]
    assert spread_verdict(c, {"values": [0.93, 0.97, 0.99]}) == ("0.93 to 0.99 (3 seeds)", True)  # margin 0.05 < 0.06
    assert spread_verdict(c, {"values": [0.94, 0.95, 0.96]})[1] is False  # margin 0.05 > 0.02
    assert spread_verdict(c, None) == ("", False) and spread_verdict(c, {"values": [0.9]}) == ("", False)


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
