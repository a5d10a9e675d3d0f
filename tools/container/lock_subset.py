"""Write the image's lock (runtime dependencies only) as a subset of the dev lock.

Both locks must pin the same versions with the same hashes: the image runs exactly what
`make install` tests. Usage: python lock_subset.py DEV_LOCK RUNTIME_PINS OUT
(RUNTIME_PINS: a `pip-compile` of pyproject.toml without extras, constrained by DEV_LOCK).
"""

import re
import sys


def blocks(text: str) -> dict[str, str]:
    """name -> its requirement block (pin, hashes, `# via` comments) in a pip-compile file."""
    out, name, lines = {}, None, []
    for line in text.splitlines():
        head = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if head or (line and not line[0].isspace() and not line.startswith("#")):
            if name:
                out[name] = "\n".join(lines)
            name, lines = (head.group(1).lower() if head else None), [line]
        elif name and not line.startswith("# The following"):
            lines.append(line)
    if name:
        out[name] = "\n".join(lines)
    return out


def main(dev_lock: str, runtime_pins: str, out: str) -> None:
    dev = blocks(open(dev_lock).read())
    wanted = [*dict.fromkeys(m.group(1).lower() for m in
              re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", open(runtime_pins).read(), re.M))]
    missing = [n for n in wanted if n not in dev]
    if missing:
        sys.exit(f"lock: error: not in {dev_lock}: {missing}")
    header = ("# The image's dependencies (pyproject.toml without extras), pinned with hashes:\n"
              "# the same versions and hashes as requirements-dev.lock. Regenerate both with\n"
              "# tools/container/lock.sh; install with pip install --require-hashes -r.\n")
    with open(out, "w") as f:
        f.write(header + "\n".join(dev[n] for n in sorted(wanted)) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
