"""The layout the README promises, checked from the source: the recipe's files at the top, the
simulated world in its own package, imports in one direction with no cycle, private names
kept private, and each stage's Config defaults equal to the default (cpu) preset."""

import ast
import dataclasses
from pathlib import Path

import pytest

import pipeline

ROOT = Path(__file__).resolve().parent.parent
MODULES = {p.stem: p for p in ROOT.glob("*.py")} | {
    "world" if p.stem == "__init__" else f"world.{p.stem}": p for p in ROOT.glob("world/*.py")}


def imports(name: str) -> list[tuple[str, list[str]]]:
    """(module, names taken from it) for each project module that `name` imports."""
    path, out = MODULES[name], []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from .facts import X (inside world/)
                base = ".".join(filter(None, [package, base]))
            out.append((base, [a.name for a in node.names]))
    return [(m, names) for m, names in out if m in MODULES]


def test_the_world_is_a_package_and_the_recipe_sits_at_the_top():
    top = {p.name for p in ROOT.glob("*.py")}
    assert {"gpt.py", "stage.py", "data.py", "pretrain.py", "sft.py", "reward.py", "ppo.py",
            "evaluate.py", "report.py", "pipeline.py"} <= top
    assert not top & {"gold.py", "tasks.py", "corpus.py", "world.py", "utils.py"}
    assert (ROOT / "world" / "README.md").exists()


def test_imports_form_a_chain_without_cycles():
    graph = {m: {dep for dep, _ in imports(m)} - {m} for m in MODULES}
    state: dict[str, int] = {}

    def visit(m, path):  # depth-first: a module met again on the current path is a cycle
        if state.get(m) == 1:
            pytest.fail("import cycle: " + " -> ".join(path + [m]))
        if state.get(m) != 2:
            state[m] = 1
            for dep in sorted(graph[m]):
                visit(dep, path + [m])
            state[m] = 2
    for m in sorted(graph):
        visit(m, [])


def test_the_world_and_the_formats_stay_apart():
    recipe = {m for m in MODULES if not m.startswith("world")} - {"data"}
    for m in MODULES:
        deps = {d for d, _ in imports(m)}
        if m.startswith("world"):  # the simulation may use the formats, nothing of the recipe
            assert not deps & recipe, (m, deps & recipe)
    assert not {d for d, _ in imports("data")}, "data.py must not import the world or a stage"
    assert {d for d, _ in imports("gpt")} == {"tokenizer"}  # the model file: the model only
    assert {d for d, _ in imports("gpt2")} == {"gpt"}  # GPT-2's weights: into the model


def test_private_names_never_cross_a_module_boundary():
    for m in MODULES:
        for dep, names in imports(m):
            inside = m.startswith("world") and dep.startswith("world")  # shared in the package
            private = [n for n in names if n.startswith("_")]
            assert inside or not private, f"{m} imports {private} from {dep}"
    tests = {f"tests.{p.stem}": p for p in ROOT.glob("tests/*.py")}
    for m, path in {**MODULES, **tests}.items():  # attribute access: data._lines, gpt._x, ...
        if m.startswith("world"):
            continue
        tree = ast.parse(path.read_text())
        names = {a.asname or a.name: a.name for node in ast.walk(tree)  # import tokenizer as tok
                 if isinstance(node, ast.Import) for a in node.names if a.name in MODULES}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__") and isinstance(node.value, ast.Name)
                    and node.value.id in names):
                pytest.fail(f"{m} uses {names[node.value.id]}.{node.attr}")


def test_stage_defaults_are_the_cpu_preset_and_presets_list_only_changes():
    assert pipeline.PRESETS["cpu"] == {}
    cpu = {st.name: st.config for st in pipeline.stages("cpu", Path("runs/cpu"))}
    assert cpu["sft"] == pipeline.sft.Config(out="runs/cpu")  # `python sft.py` trains this
    assert cpu["ppo"] == pipeline.ppo.Config(out="runs/cpu")
    assert cpu["ppo_ptx"] == pipeline.ppo.Config(out="runs/cpu", ptx_coef=pipeline.PTX_COEF)
    assert cpu["rm"] == pipeline.reward.Config(out="runs/cpu")
    assert cpu["evaluate"] == pipeline.evaluate.Config(out="runs/cpu")
    assert cpu["pretrain"] == pipeline.pretrain.Config(out="runs/cpu",
                                                       data="runs/cpu/corpus.txt")
    classes = {"pretrain": pipeline.pretrain.Config, "sft": pipeline.sft.Config,
               "collect": pipeline.reward.Config, "rm": pipeline.reward.Config,
               "ppo": pipeline.ppo.Config, "evaluate": pipeline.evaluate.Config}
    for preset in ("tiny", "long", "gpt2"):
        for key, changes in pipeline.PRESETS[preset].items():
            if key == "sweeps":
                continue
            defaults = {f.name: f.default for f in dataclasses.fields(classes[key])}
            same = [k for k, v in changes.items() if defaults[k] == v]
            assert not same, f"{preset}.{key} repeats defaults: {same}"
