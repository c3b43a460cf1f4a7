"""Wall time and peak memory of every refusal in the hostile corpus (tests/hostile/cases.yaml).

Each case runs in a fresh interpreter (so its peak RSS is its own), through the real CLI; the
time includes interpreter start and imports. Target (issue #10): each refusal <= 2 s, <= 200 MB.

    .venv/bin/python bench/hostile.py            # a table, the slowest last
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_hostile import CASES, command_for  # noqa: E402  (the corpus and its file layout)

CHILD = """
import json, resource, sys, time, io, contextlib
start = time.perf_counter()
from kuscia_components.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
    code = main(json.loads(sys.argv[1]))
took = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"code": code, "seconds": took, "peak_mb": peak}))
"""


def main() -> int:
    rows = []
    for case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            argv = command_for(case, Path(folder))
            done = subprocess.run(
                [sys.executable, "-c", CHILD, json.dumps(argv)], capture_output=True, text=True, timeout=600
            )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append((case["name"], result["code"], result["seconds"], result["peak_mb"]))
    rows.sort(key=lambda row: row[2])
    print(f"{'case':<32} {'exit':>4} {'seconds':>8} {'peak MB':>8}")
    for name, code, seconds, peak in rows:
        print(f"{name:<32} {code:>4} {seconds:>8.2f} {peak:>8.0f}")
    over = [r for r in rows if r[1] != 0 and (r[2] > 2.0 or r[3] > 200)]
    print(f"\n{len(rows)} cases; {len(over)} refusals over 2 s or 200 MB")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
