"""`network plan` on big meshes: wall time, peak memory and output size, through the real CLI in
a fresh interpreter (times include interpreter start and imports).

    .venv/bin/python bench/network_plan.py 256 1000 3000       # parties per mesh; text and --json
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import contextlib, io, json, resource, sys, time
class Count(io.TextIOBase):  # counts what is printed without keeping it
    size = 0
    def write(self, text):
        self.size += len(text)
        return len(text)
start = time.perf_counter()
from kuscia_components.cli.main import main
out, err = Count(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = main(json.loads(sys.argv[1]))
took = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"code": code, "seconds": took, "peak_mb": peak, "out": out.size,
                  "err": err.getvalue()[:160]}))
"""


def spec_text(parties: int) -> str:
    lines = ["name: big", "topology: mesh", "defaults: {runtime: runp}", "parties:"]
    lines += [f"- domainId: p{i}" for i in range(parties)]
    return "\n".join(lines) + "\n"


def main() -> int:
    sizes = [int(a) for a in sys.argv[1:]] or [256, 1000, 3000]
    print(
        f"{'parties':>7} {'mode':>5} {'spec KB':>7} {'exit':>4} {'seconds':>8} {'peak MB':>8} {'stdout MB':>9}"
    )
    for parties in sizes:
        with tempfile.TemporaryDirectory() as folder:
            spec = Path(folder) / "network.yaml"
            spec.write_text(spec_text(parties))
            for mode in ("text", "json"):
                argv = ["network", "plan", "--spec", str(spec)] + (["--json"] if mode == "json" else [])
                done = subprocess.run(
                    [sys.executable, "-c", CHILD, json.dumps(argv)],
                    capture_output=True,
                    text=True,
                    timeout=900,
                )
                r = json.loads(done.stdout.strip().splitlines()[-1])
                size = spec.stat().st_size / 1024
                print(
                    f"{parties:>7} {mode:>5} {size:>7.0f} {r['code']:>4} {r['seconds']:>8.2f} "
                    f"{r['peak_mb']:>8.0f} {r['out'] / 1e6:>9.2f}  {r['err'].splitlines()[0] if r['err'] else ''}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
