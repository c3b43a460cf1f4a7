"""Benchmark: offline render of one party, end to end as a process, against import floors.

Compares, in the same run and interleaved (so machine noise hits all alike):
- floor:      a process that only runs `import pulumi, pulumi_kubernetes` (the issue's floor);
- floor+k8s:  the same plus touching the Kubernetes API groups the program uses, which is what
              any Pulumi program creating those objects must pay;
- render:     `python -m kuscia_components render --stack alice --out <tmp>`.

Usage: python bench/render.py [--runs 15] [--stack alice]
Prints medians, p90 and the ratio render/floor; results are recorded in bench/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--stack", default="alice")
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        commands = {
            "floor": [py, "-c", "import pulumi, pulumi_kubernetes"],
            "floor+k8s": [
                py,
                "-c",
                "import pulumi, pulumi_kubernetes as k; k.core.v1.Service; k.apps.v1.Deployment;"
                " k.rbac.v1.Role; k.networking.v1.NetworkPolicy",
            ],
            "render": [py, "-m", "kuscia_components", "render", "--stack", args.stack, "--out", f"{tmp}/out"],
        }
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for cmd in commands.values():  # warm the page cache once
            timed(cmd)
        for _ in range(args.runs):
            for name, cmd in commands.items():
                samples[name].append(timed(cmd))
    floor = statistics.median(samples["floor"])
    print(f"runs per command: {args.runs}")
    for name, values in samples.items():
        med = statistics.median(values)
        p90 = sorted(values)[int(0.9 * (len(values) - 1))]
        print(
            f"{name:10s} median {med * 1000:7.0f} ms   p90 {p90 * 1000:7.0f} ms   x floor {med / floor:4.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
