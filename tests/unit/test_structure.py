"""The shape of the project: the study registry against dvc.yaml, params.yaml, the profiles and docs; one source of
defaults; the import layers (no cycle, no upward import); thin flows."""

import ast
import re
from pathlib import Path

import pytest
import yaml

from tenfold.registry import DATA_STAGES, STUDIES, UnknownStudy, get, load_params, models, stages

ROOT = Path(__file__).resolve().parents[2]


def _yaml(name):
    return yaml.safe_load((ROOT / name).read_text())


def test_registry_matches_dvc_params_profiles_and_docs():
    dvc = _yaml("dvc.yaml")["stages"]
    params, paper, tiny = _yaml("params.yaml"), _yaml("profiles/paper.yaml"), _yaml("profiles/tiny.yaml")
    study_stages = set(stages())
    assert study_stages | set(DATA_STAGES) == set(dvc) - {"report"}, "every DVC stage is a study's or a data build"
    assert not study_stages & set(DATA_STAGES)
    for slug, s in STUDIES.items():
        assert slug in s.stages, f"{slug}: its own stage is named by its slug"
        assert f"run {slug}" in dvc[slug]["cmd"]
        for stage in s.stages:
            assert dvc[stage]["cmd"] == f"python -m flows.cli run {stage}"
        assert f"metrics/{slug}.json" in str(dvc[slug].get("metrics")), slug
        assert f"results/{slug}.json" in str(dvc[slug].get("outs")), slug
        assert "tenfold/core/claims.py" in dvc[slug]["deps"], f"{slug}: its metrics' holds are computed by claims.py"
        assert slug in params and slug in paper and slug in tiny, f"{slug}: params/profile sections"
        assert (ROOT / s.doc).exists(), f"{slug}: no {s.doc}"
        assert (ROOT / "reports" / f"{slug}.md").exists(), f"{slug}: no committed report"
        assert re.fullmatch(r"\d{4}\.\d{5}", s.arxiv)
    assert set(params) - {"common"} == set(STUDIES), "params.yaml has exactly one section per study"
    assert set(paper) - {"common"} <= set(STUDIES) and set(tiny) - {"common"} <= set(STUDIES)
    assert f"results/{slug}.json" in dvc["report"]["deps"]


def test_unknown_slug_lists_the_known_ones():
    with pytest.raises(UnknownStudy, match="unknown study 'mazes'.*maze, depth"):
        get("mazes")


@pytest.mark.parametrize("section", ["common", *STUDIES])
def test_params_yaml_equals_the_models_defaults(section):
    """One source of defaults: a params model's defaults are exactly the CPU default in params.yaml."""
    in_file = load_params(ROOT / "params.yaml")[section].model_dump()
    assert models()[section]().model_dump() == in_file, f"{section}: code defaults differ from params.yaml"


# ---------------------------------------------------------------- import layers
LAYERS = {
    "tenfold.core": 0,
    "tenfold.components": 1,
    "tenfold.studies": 2,
    "tenfold.registry": 3,
    "tasks": 4,
    "flows": 5,
}


def _modules():
    out = {}
    for top in ("tenfold", "tasks", "flows"):
        for f in (ROOT / top).rglob("*.py"):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _layer(mod: str):
    for prefix, rank in sorted(LAYERS.items(), key=lambda kv: -len(kv[0])):
        if mod == prefix or mod.startswith(prefix + "."):
            return rank
    return None


def _graph():
    mods = _modules()
    return mods, {m: {i for i in _imports(f) if i in mods} for m, f in mods.items()}


def test_no_upward_import_and_no_study_imports_another():
    mods, graph = _graph()
    bad = []
    for m, deps in graph.items():
        for d in deps:
            if _layer(m) is not None and _layer(d) is not None and _layer(d) > _layer(m):
                bad.append(f"{m} -> {d}")
            sm, sd = m.split("."), d.split(".")
            if sm[:2] == sd[:2] == ["tenfold", "studies"] and len(sm) > 2 and len(sd) > 2 and sm[2] != sd[2]:
                bad.append(f"{m} -> {d} (a study imports another study)")
            if (
                m.startswith("flows.")
                and d.startswith("flows.")
                and d not in ("flows.common", "flows._env")
                and m not in ("flows.cli", "flows.all", "flows.deploy")
                and not d.startswith("flows.cli")
            ):
                bad.append(f"{m} -> {d} (a flow imports another flow)")
    assert not bad, "\n".join(sorted(bad))


def test_the_library_never_imports_orchestration_or_tracking():
    mods, _ = _graph()
    for m, f in mods.items():
        if m.startswith("tenfold"):
            used = {i.split(".")[0] for i in _imports(f)}
            assert not used & {"prefect", "mlflow", "dvc"}, f"{m} imports {used & {'prefect', 'mlflow', 'dvc'}}"


def test_import_graph_has_no_cycle():
    _, graph = _graph()
    # a module importing its own package's __init__ (and vice versa) is Python's package mechanics, not a cycle
    edges = {
        m: {d for d in deps if d != m and not (m.startswith(d + ".") or d.startswith(m + "."))}
        for m, deps in graph.items()
    }
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in edges.get(m, ()):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d) :] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_flows_are_thin():
    for f in (ROOT / "flows").glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                assert n <= 80, f"{f.name}:{node.name} is {n} lines (at most 80)"


# ---------------------------------------------------------------- DVC lineage covers the code a stage runs
# Tracking, progress and CPU slots only: they log to MLflow or a terminal, or decide when a task body runs (the
# slots), and never touch a computed number.
NOT_COMPUTATION = {"tasks/_env.py", "tasks/track.py", "tasks/progress.py", "tasks/_task.py", "tenfold/core/slots.py"}
SHARED_LAYER = ("tenfold/core/", "flows/common.py", "tenfold/components/data/")


def _code_of(module: str, mods, graph) -> set[str]:
    """Files a flow module runs: its import closure inside the project, stopping at the registry (the CLI's table of
    every study's params models, not code a stage executes), without package __init__ files."""
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        if m in seen or m == "tenfold.registry":
            continue
        seen.add(m)
        todo += graph.get(m, ())
    files = {str(mods[m].relative_to(ROOT)) for m in seen if mods[m].name != "__init__.py"}
    return files - NOT_COMPUTATION


def test_every_stage_depends_on_the_code_it_runs():
    """A change to any file a stage executes (e.g. tenfold/core/seeds.py) must make `dvc status` show the stage.
    A stage whose flow module is its own (every study's stage, lowkey_faces, lowkey_surrogates) covers the whole
    import closure of that module; a stage whose flow module also hosts another stage (build_mazes in flows/maze.py)
    covers at least the shared layer (core, flows/common.py, data), since a module's imports over-state what one of
    its flows runs."""
    mods, graph = _graph()
    dvc = _yaml("dvc.yaml")["stages"]
    module_of = {stage: ref.split(":")[0] for stage, ref in DATA_STAGES.items()}
    for s in STUDIES.values():
        module_of.update({stage: ref.split(":")[0] for stage, ref in s.stages.items()})
    hosts = {}
    for stage, module in module_of.items():
        hosts.setdefault(module, []).append(stage)
    gaps = {}
    for stage, module in module_of.items():
        files = _code_of(module, mods, graph)
        if stage not in STUDIES and len(hosts[module]) > 1:
            files = {f for f in files if f.startswith(SHARED_LAYER)}
        deps = [d if isinstance(d, str) else next(iter(d)) for d in dvc[stage]["deps"]]
        missing = sorted(f for f in files if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps))
        if missing:
            gaps[stage] = missing
    assert not gaps, f"stages that run code they do not depend on: {gaps}"
    assert "tenfold/core/seeds.py" in dvc["security"]["deps"]  # the case that slipped through before this test
    assert len(hosts["flows.lowkey_faces"]) == 1 and "flows/lowkey.py" not in dvc["lowkey_faces"]["deps"]
