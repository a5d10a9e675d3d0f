"""The fingerprint of the code a step runs: gir's and the components' Python sources.

The component bodies come from the submitter's checkout while `gir` comes from the image; the
two match when this hash, computed at compile time (GIR_CODE_HASH on every task) and over the
image's installed packages, is the same. Standard library only: tools/container/build.sh runs
this file with any python3 to label the image (`gir.code`).
"""

import hashlib
import sys
from pathlib import Path

PACKAGES = ("gir", "components")


def code_hash(parent: str | Path) -> str:
    """sha256 (16 hex) of every .py under parent/gir and parent/components, by relative path."""
    parent = Path(parent)
    digest = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((parent / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            digest.update(path.relative_to(parent).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


if __name__ == "__main__":
    print(code_hash(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]))
