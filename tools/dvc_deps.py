"""Print each dvc.yaml stage's code deps: the gir/ files its step imports (lazy imports too).

    make dvc-deps            # or: python tools/dvc_deps.py [--check]

After adding a step or changing what a step imports, copy the printed list into the stage's
deps in dvc.yaml; tests/test_layout.py fails until they agree. --check exits 1 on a mismatch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from importgraph import code_deps, step_of  # noqa: E402  (the import graph lives with its test)


def main(argv: list[str]) -> int:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    stale = 0
    for name, stage in stages.items():
        want = code_deps(f"gir.steps.{step_of(stage['cmd'])}")
        have = sorted(d for d in stage["deps"] if str(d).startswith("gir/"))
        mark = "" if want == have else "   # differs from dvc.yaml"
        stale += bool(mark)
        print(f"{name}:{mark}\n" + "".join(f"  - {d}\n" for d in want))
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
