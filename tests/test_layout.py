"""The import contract of gir/: one-way dependencies between packages, no cycles, and the
low layers free of MLflow, DVC and KFP. Imports inside functions count: a lazy import is
still a dependency. dvc.yaml's code deps follow from the same graph.
"""

from __future__ import annotations

import ast

import pytest
import yaml

from importgraph import ROOT, code_deps, graph, modules, step_of

# Layers, top to bottom. A module may import its own package and anything in a lower layer.
EDGE = ("gir.cli", "gir.serving", "gir.benchmarks", "gir.registry", "gir.detect_train",
        "gir.__main__")
LAYERS: dict[str, tuple[str, ...]] = {
    "edge": EDGE,
    "steps": ("gir.steps",),
    "training": ("gir.training",),
    "tracking": ("gir.tracking",),
    "rectifier": ("gir.rectifier",),
    "nn": ("gir.nn",),
    "data": ("gir.data",),
    "base": ("gir.config", "gir.errors", "gir"),
}
ALLOWED = {
    "edge": {"edge", "steps", "training", "tracking", "rectifier", "nn", "data", "base"},
    "steps": {"training", "tracking", "rectifier", "nn", "data", "base"},
    "training": {"tracking", "rectifier", "nn", "data", "base"},
    "tracking": {"rectifier", "nn", "data", "base"},
    "rectifier": {"nn", "data", "base"},
    "nn": {"base"},
    "data": {"base"},
    "base": {"base"},
}
NO_WORKFLOW_LIBS = ("nn", "data", "rectifier")     # plain libraries: usable without MLflow/DVC/KFP
WORKFLOW_LIBS = ("mlflow", "dvc", "kfp")


def package_of(module: str) -> str:
    """The unit a module belongs to for the 'own package' rule (gir.steps.train -> gir.steps)."""
    for prefixes in LAYERS.values():
        for p in sorted(prefixes, key=len, reverse=True):
            if p != "gir" and (module == p or module.startswith(p + ".")):
                return p
    return module


def layer_of(module: str) -> str:
    pkg = package_of(module)
    for layer, prefixes in LAYERS.items():
        if pkg in prefixes:
            return layer
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS")


def violations(g: dict[str, set[str]]) -> list[str]:
    """Every import that points up (or sideways into another package of a layer that may not)."""
    bad = []
    for mod, deps in sorted(g.items()):
        for dep in sorted(deps):
            src, dst = layer_of(mod), layer_of(dep)
            if package_of(mod) == package_of(dep) and src != "base":
                continue
            if dst not in ALLOWED[src] or (src == dst and src not in ("edge", "base")):
                bad.append(f"{mod} ({src}) imports {dep} ({dst})")
    return bad


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles between modules (Tarjan's strongly connected components of size > 1)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    for mod in modules():
        layer_of(mod)


def test_no_upward_import():
    assert violations(graph()) == []


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_the_check_catches_a_deliberate_upward_import_and_cycle():
    g = graph()
    g["gir.data.blur"] = g["gir.data.blur"] | {"gir.steps.train"}
    assert "gir.data.blur (data) imports gir.steps.train (steps)" in violations(g)
    assert any("gir.data.blur" in c for c in cycles(g))
    g = graph()
    g["gir.rectifier.inference"] = g["gir.rectifier.inference"] | {"gir.tracking.resolve"}
    assert any("gir.rectifier.inference (rectifier) imports gir.tracking.resolve" in v
               for v in violations(g))


@pytest.mark.parametrize("layer", NO_WORKFLOW_LIBS)
def test_low_layers_do_not_import_mlflow_dvc_or_kfp(layer):
    for mod, path in modules().items():
        if layer_of(mod) != layer:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            for name in names:
                assert name.split(".")[0] not in WORKFLOW_LIBS, f"{mod} imports {name}"


def test_dvc_stages_depend_on_the_code_they_run():
    """dvc.yaml lists exactly the gir/ files each stage's step reaches, so a code change
    re-runs the stages that use it and no others."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        listed = sorted(d for d in stage["deps"] if str(d).startswith("gir/"))
        assert listed == code_deps(f"gir.steps.{step_of(stage['cmd'])}"), (
            f"dvc.yaml stage {name}: its code deps differ from what its step imports; "
            "`make dvc-deps` prints the right list")


MAX_FUNCTION_LINES = 80


def long_functions(limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """Library functions (gir/, components/, pipelines/) longer than limit lines, def to end."""
    found = []
    for folder in ("gir", "components", "pipelines"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = node.end_lineno - node.lineno + 1
                    if n > limit:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} "
                                     f"({n} lines)")
    return found


def test_no_library_function_is_longer_than_80_lines():
    """A function that does one thing fits on a screen; split longer ones along their seams."""
    offenders = long_functions()
    assert not offenders, (f"{len(offenders)} functions over {MAX_FUNCTION_LINES} lines:\n"
                           + "\n".join(offenders))


def contributing_modules() -> set[str]:
    """The gir/ modules CONTRIBUTING.md's layout tree names (paths relative to the repo)."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    block = text.split("## The layout", 1)[1].split("```", 2)[1]
    listed, stack = set(), []
    for line in block.splitlines()[1:]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        tokens = line.split()
        if tokens[0].endswith("/"):
            stack.append((indent, tokens[0].rstrip("/")))
            continue
        folder = "/".join(name for _, name in stack)
        for token in tokens:
            if not token.endswith(".py"):
                break
            listed.add(f"{folder}/{token}")
    return {m for m in listed if m.startswith("gir/")}


def test_contributing_lists_every_module():
    """A newcomer finds every module in CONTRIBUTING.md's tree, and no module that is gone."""
    actual = {str(p.relative_to(ROOT)) for p in (ROOT / "gir").rglob("*.py")}
    listed = contributing_modules()
    missing = sorted(m for m in actual - listed if not m.endswith("/__init__.py")
                     or m == "gir/__init__.py")
    gone = sorted(listed - actual)
    assert not missing and not gone, (f"CONTRIBUTING.md's layout lacks {missing}"
                                      f" and lists modules that are gone: {gone}")
