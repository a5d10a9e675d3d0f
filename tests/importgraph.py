"""The import graph of gir/, function-level imports included, from the source (AST).

Used by the layout contract test, by the dvc.yaml deps check and by `make dvc-deps`
(tools/dvc_deps.py): all must see every import, even one inside a function, because a lazy
import is still a dependency.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / "gir").rglob("*.py"))}


def imports_of(path: Path, known: dict[str, Path]) -> set[str]:
    """gir modules imported anywhere in path (top level or inside functions)."""
    me = module_name(path)
    pkg = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for name in names:
            # the longest known module that the name starts with
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name.startswith("gir") and name != me and name != "gir":
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    """Each gir module's gir imports (a fresh copy: callers may change it)."""
    return {m: set(deps) for m, deps in _graph(_fingerprint()).items()}


def _fingerprint() -> tuple:
    return tuple((str(p), p.stat().st_mtime_ns) for p in modules().values())


@functools.lru_cache(maxsize=2)
def _graph(fingerprint: tuple) -> dict[str, frozenset[str]]:
    """Parsing every module is the slow part: done once per state of the source tree."""
    known = modules()
    return {m: frozenset(imports_of(p, known)) for m, p in known.items()}


def closure(start: str, g: dict[str, set[str]] | None = None) -> set[str]:
    """start and every gir module it reaches (including the packages' __init__ on the way)."""
    g = g or graph()
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(g.get(m, ()))
        parent = m.rpartition(".")[0]
        if parent and parent != "gir" and parent in g:
            todo.append(parent)   # importing gir.a.b runs gir/a/__init__.py first
    return seen


# Packages a stage depends on as a whole folder: registries that import their members by name
# at run time (generators, sources), and the config package that every step reads.
FOLDER_PACKAGES = {"gir.nn": "gir/nn", "gir.data.sources": "gir/data/sources",
                   "gir.config": "gir/config"}
# Files a step hands to MLflow by path (models-from-code entry files), not by import.
ENTRY_FILES = {"gir.steps.register": ["gir/serving/mlflow_model.py"],
               "gir.steps.detector": ["gir/serving/mlflow_detector.py"]}


def has_code(path: Path) -> bool:
    """False for a package __init__ that is only a docstring."""
    body = ast.parse(path.read_text()).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def step_of(cmd: str) -> str:
    """The step module a dvc.yaml stage's `gir <verb> ...` command runs."""
    return cmd.split()[1].replace("detect-train", "detector")


def code_deps(step_module: str) -> list[str]:
    """The source paths a DVC stage running step_module depends on."""
    g, known = graph(), modules()
    deps = set(ENTRY_FILES.get(step_module, []))
    for m in closure(step_module, g):
        folder = next((d for p, d in FOLDER_PACKAGES.items() if m == p or m.startswith(p + ".")),
                      None)
        if folder:
            deps.add(folder)
        elif has_code(known[m]):
            deps.add(str(known[m].relative_to(ROOT)))
    return sorted(deps)
