"""Type-check ``core/`` with mypy against a baseline that may only shrink.

Type checking began (issue 17) on a code base with errors already in it.  Each file
may keep at most the number of errors it had then (``scripts/mypy-baseline.json``);
a file not listed there must be clean, and the modules named strict in
``pyproject.toml`` are checked strictly.  When a file loses errors, ``--update``
lowers its allowance so they cannot come back; it never raises one.

    python scripts/typecheck.py            # the check (scripts/test.sh runs it)
    python scripts/typecheck.py --update   # lower the baseline after fixing errors
    python scripts/typecheck.py --init     # the first baseline (issue 17) only
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scripts" / "mypy-baseline.json"
ERROR = re.compile(r"^(?P<file>[^:\s]+\.py):(?P<line>\d+): error: (?P<text>.*)$")


def run_mypy() -> tuple[int, list[tuple[str, str]]]:
    """mypy's exit status and its (file, message) errors, files relative to ROOT."""
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--no-pretty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    errors = []
    for line in done.stdout.splitlines():
        match = ERROR.match(line)
        if match:
            errors.append((match["file"], f"{match['line']}: {match['text']}"))
    if done.returncode not in (0, 1) or (done.returncode == 1 and not errors):
        # 2 = mypy itself failed (bad config, crash): never mistake that for a pass
        sys.exit(f"typecheck: mypy did not run: {(done.stderr or done.stdout).strip()}")
    return done.returncode, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="lower the baseline")
    parser.add_argument(
        "--init", action="store_true", help="write the baseline from scratch (once)"
    )
    args = parser.parse_args(argv)

    _, errors = run_mypy()
    counts = Counter(file for file, _ in errors)
    if args.init:
        _write(counts)
        return 0
    baseline: dict[str, int] = json.loads(BASELINE.read_text(encoding="utf-8"))

    grown = {f: n for f, n in counts.items() if n > baseline.get(f, 0)}
    if grown:
        print("typecheck: new type errors (fix them; the baseline only shrinks):")
        for file, message in errors:
            if file in grown:
                print(f"  {file}:{message}")
        for file, count in sorted(grown.items()):
            print(f"  {file}: {count} errors, baseline allows {baseline.get(file, 0)}")
        return 1

    shrunk = {f: counts.get(f, 0) for f, n in baseline.items() if counts.get(f, 0) < n}
    if args.update:
        _write(counts)  # no file grew (checked above), so this only lowers
        return 0
    if shrunk:
        print(
            f"typecheck: {len(shrunk)} files have fewer errors than the baseline; "
            "run `python scripts/typecheck.py --update` to keep them out"
        )
    print(
        f"typecheck: OK ({sum(counts.values())} baseline errors left in "
        f"{len(counts)} files; none new)"
    )
    return 0


def _write(counts: Counter[str]) -> None:
    kept = {f: n for f, n in sorted(counts.items()) if n}
    BASELINE.write_text(json.dumps(kept, indent=1) + "\n", encoding="utf-8")
    print(f"typecheck: baseline now {sum(kept.values())} errors in {len(kept)} files")


if __name__ == "__main__":
    sys.exit(main())
