from pathlib import Path

import pytest
import yaml

from tenfold.core.config import ParamsError, flatten
from tenfold.registry import apply_profile, load_params

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, data):
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


def test_repo_params_and_profiles_are_valid():
    secs = load_params(ROOT / "params.yaml")
    assert "maze" in secs and secs["common"].seed == 0
    for prof in (ROOT / "profiles").glob("*.yaml"):
        apply_profile(ROOT / "params.yaml", prof)


def test_cpu_full_restores_what_the_default_leaves_out_and_the_paper_profile_keeps_it():
    """profiles/cpu-full.yaml holds the evidence the CPU default leaves out for its 45-minute budget: every key it
    sets must change the default (a key equal to it is stale), and the paper profile must run at least as much of
    it (a part switched off in the default must not silently vanish from the paper's run too)."""
    params = flatten(yaml.safe_load((ROOT / "params.yaml").read_text()))
    full = flatten(apply_profile(ROOT / "params.yaml", ROOT / "profiles" / "cpu-full.yaml"))
    paper = flatten(apply_profile(ROOT / "params.yaml", ROOT / "profiles" / "paper.yaml"))
    leaves = flatten(yaml.safe_load((ROOT / "profiles" / "cpu-full.yaml").read_text()))
    assert len(leaves) >= 8
    for key, value in leaves.items():
        assert params[key] != value, f"{key}: cpu-full sets the default's own value"
        assert full[key] == value
        got = paper[key]
        if key == "augmentation.victim_epochs" and got is None:  # null: the security victims' epochs
            got = paper["security.victim.epochs"]
        if isinstance(value, bool):
            assert got is value, f"{key}: on in cpu-full, {got} in the paper profile"
        elif isinstance(value, list):
            assert len(got) >= len(value), f"{key}: the paper profile runs less than cpu-full"
        else:
            assert got >= value, f"{key}: the paper profile runs less than cpu-full"


def test_unknown_key_names_the_key(tmp_path):
    p = write(tmp_path, {"maze": {"train": {"epochz": 3}}})
    with pytest.raises(ParamsError, match=r"maze\.train\.epochz: unknown key"):
        load_params(p)


def test_wrong_type_names_the_key(tmp_path):
    p = write(tmp_path, {"maze": {"train": {"epochs": "many"}}})
    with pytest.raises(ParamsError, match=r"maze\.train\.epochs"):
        load_params(p)


def test_out_of_range_value_names_the_key(tmp_path):
    p = write(tmp_path, {"maze": {"data": {"train_size": 8}}})
    with pytest.raises(ParamsError, match=r"maze\.data\.train_size.*odd"):
        load_params(p)
    p = write(tmp_path, {"common": {"device": "tpu"}})
    with pytest.raises(ParamsError, match=r"common\.device"):
        load_params(p)


def test_cross_field_check(tmp_path):
    p = write(tmp_path, {"maze": {"eval": {"extrapolation_size": 21}}})
    with pytest.raises(ParamsError, match="extrapolation_size"):
        load_params(p)


def test_unknown_section_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="mazes: unknown section"):
        load_params(write(tmp_path, {"mazes": {}}))
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(write(tmp_path, "maze: [unclosed"))
    with pytest.raises(ParamsError, match="top level must be a mapping"):
        load_params(write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_profile_is_validated(tmp_path):
    prof = tmp_path / "bad.yaml"
    prof.write_text("maze:\n  model:\n    width: -1\n")
    with pytest.raises(ParamsError, match=r"maze\.model\.width"):
        apply_profile(ROOT / "params.yaml", prof)


def test_flatten():
    secs = load_params(ROOT / "params.yaml", ["maze"])
    flat = flatten(secs["maze"], "maze.")
    assert flat["maze.train.epochs"] == secs["maze"].train.epochs
    assert all("." in k for k in flat)
    from tenfold.core.config import unflatten

    assert unflatten(flat) == {"maze": secs["maze"].model_dump()}  # its inverse


def test_reading_params_imports_no_study_code():
    """Every stage starts by validating params through the registry: it must not pull in a study's heavy modules
    (smoothing's `smooth` brought scipy.stats, 1.3 s of each stage's start-up). Checked in a fresh interpreter."""
    import subprocess
    import sys

    code = (
        "import sys; from tenfold.registry import load_params; load_params('params.yaml', ['smoothing']); "
        "print(sorted(m for m in sys.modules if m == 'scipy.stats' or m.startswith('tenfold.studies.smoothing.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['tenfold.studies.smoothing.params']"


def test_overlay_keeps_the_layout_and_writes_an_emptied_block_list_as_valid_yaml():
    """An overlay that empties a block-style list (security.grid_focus, a list of mappings with comments) once
    dumped a bare `[]` line that broke the rest of the section; every overlay must read back as the merge."""
    from tenfold.core.config import deep_merge, overlay_yaml_text

    text = (ROOT / "params.yaml").read_text()
    for overlay in [
        {"security": {"grid_focus": [], "craft": {"adaptive": [], "targets": 24}, "grid_defenses": ["none"]}},
        {"security": {"grid_focus": [{"attacks": ["patch"], "defenses": ["none"]}]}},
        {"security": {"defense": {}}, "maze": {"eval": {"test_iters": []}}},  # {} merges nothing, as deep_merge
    ]:
        out = overlay_yaml_text(text, overlay)
        assert yaml.safe_load(out) == deep_merge(yaml.safe_load(text), overlay)
        assert "# Study `augmentation` (arXiv:2011.09527)" in out  # comments elsewhere kept
    out = overlay_yaml_text(text, {"security": {"grid_focus": []}})
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("grid_focus:"))
    assert line.split("#")[0].strip() == "grid_focus: []" and "# CPU budget" in line  # the key's comment stays
    assert "gm_success_target: 0.3\n" in out  # the keys after it keep their own lines
