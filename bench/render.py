"""Benchmark: offline render of one party, as a whole process, against two import floors, and its
growth with the number of inline partners.

Paired runs: each floor command alternates with a render run (floor, render, floor, render, ...),
and the ratio is the median of the per-pair ratios, so machine noise hits both sides of a pair alike.
- bare floor:  `import pulumi, pulumi_kubernetes` (pulumi_kubernetes is lazy: it loads nothing);
- typed floor: pulumi plus the pulumi_kubernetes API groups and classes the program uses, which any
               Pulumi program creating those objects pays;
- typed floor, no exit GC: the same, ending with `gc.freeze()` as render's process does (cli/render.py
               skips the ~130 ms of full-GC passes of interpreter shutdown): the floor on equal
               footing, so the ratio against it is render's own work over the imports;
- render:      `python -m kuscia_components render --stack alice --out <tmp>`.
Growth: render of a party with N partners given inline (endpoint and a real certificate each),
  - through the CLI, `render --config Pulumi.nN.yaml`, while that stack file fits the stack-file
    size limit (1 MiB once #10's bounded reader is in: 1 000 partners are 1.5 MB), and
  - through the library in a fresh process, for every N: the same config handed to
    `offline.render.render` as `cli/render.py` does, without reading a stack file.

Every process runs with a bytecode cache (PYTHONPYCACHEPREFIX in the temporary directory, nothing
written into the repo), as an installed or once-run package has one: a machine that sets
PYTHONDONTWRITEBYTECODE (this one does) otherwise recompiles this package's ~55 modules from
source on every render (~50 ms), which no user pays twice. `--no-bytecode-cache` measures that too.

Usage: python bench/render.py [--runs 11] [--partners 1,10,100,1000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TYPED_FLOOR = (
    "import pulumi, pulumi_kubernetes as k; "
    "k.core.v1.Namespace, k.core.v1.ServiceAccount, k.core.v1.Secret, k.core.v1.Service; "
    "k.apps.v1.Deployment, k.apps.v1.StatefulSet; k.rbac.v1.Role, k.rbac.v1.RoleBinding; "
    "k.networking.v1.NetworkPolicy; k.Provider"
)


ENV: dict[str, str] = dict(os.environ)


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def paired(floor: list[str], render: list[str], runs: int) -> tuple[float, float, float]:
    """(median floor s, median render s, median of per-pair render/floor)."""
    floors, renders = [], []
    for _ in range(runs):
        floors.append(timed(floor))
        renders.append(timed(render))
    ratios = [r / f for f, r in zip(floors, renders, strict=True)]
    return statistics.median(floors), statistics.median(renders), statistics.median(ratios)


STACK_FILE_LIMIT = 1024 * 1024  # config/limits.py STACK_FILE on main since #10
LIBRARY_RENDER = """
import json, sys
from pathlib import Path
from kuscia_components.cli.render import skip_final_collections
from kuscia_components.config import parse_party_config
from kuscia_components.core import pki

config = json.loads(Path(sys.argv[1]).read_text())["config"]
values = {k.removeprefix("kuscia:"): v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
cfg = parse_party_config(values, frozenset())
pki.prepare_domain_key()  # what run_render does before pulumi loads
skip_final_collections()
from kuscia_components.offline.render import render

render(cfg, Path(sys.argv[2]), stack=cfg.domain_id)
"""


def partners_stack(path: Path, count: int) -> Path:
    """A stack file like alice's with `count` inline partners, each with a valid certificate."""
    from kuscia_components.core import pki

    key = pki.generate_domain_key()  # one key, a certificate per partner: signing is cheap
    peers = [
        {
            "domainId": f"p{i}",
            "endpoint": f"https://p{i}.example.com:1080",
            "cert": pki.cert_b64(pki.build_domain_cert(key, f"p{i}")),
            "protocol": "TLS",
        }
        for i in range(count)
    ]
    config = {
        "kuscia:domainId": "alice",
        "kuscia:capacity": {"cpu": "4", "memory": "4Gi", "storage": "100Gi"},
        "kuscia:peers": peers,
    }
    stack_file = path / f"Pulumi.n{count}.yaml"
    stack_file.write_text(json.dumps({"config": config}), encoding="utf-8")  # JSON is YAML
    return stack_file


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--partners", default="1,10,100,1000")
    parser.add_argument(
        "--no-bytecode-cache", action="store_true", help="as PYTHONDONTWRITEBYTECODE=1 leaves it"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_bytecode_cache:
            ENV.pop("PYTHONDONTWRITEBYTECODE", None)
            ENV["PYTHONPYCACHEPREFIX"] = f"{tmp}/pycache"
        render = [py, "-m", "kuscia_components", "render", "--stack", "alice", "--out", f"{tmp}/out"]
        floors = {
            "bare floor": [py, "-c", "import pulumi, pulumi_kubernetes"],
            "typed floor": [py, "-c", TYPED_FLOOR],
            "typed floor, no exit GC": [py, "-c", TYPED_FLOOR + "; import gc; gc.freeze()"],
        }
        for cmd in (render, *floors.values()):
            timed(cmd)  # warm the page cache (and fill the bytecode cache)
        print(f"paired runs per floor: {args.runs}; bytecode cache: {not args.no_bytecode_cache}")
        for name, cmd in floors.items():
            floor_s, render_s, ratio = paired(cmd, render, args.runs)
            print(
                f"{name:24s} {floor_s * 1000:6.0f} ms   render {render_s * 1000:6.0f} ms   render/floor {ratio:4.2f}"
            )
        for count in (int(n) for n in args.partners.split(",")):
            stack_file = partners_stack(Path(tmp), count)
            repeat = 3 if count < 1000 else 1
            cli = [
                py,
                "-m",
                "kuscia_components",
                "render",
                "--config",
                str(stack_file),
                "--out",
                f"{tmp}/c{count}",
            ]
            library = [py, "-c", LIBRARY_RENDER, str(stack_file), f"{tmp}/l{count}"]
            size = stack_file.stat().st_size
            by_cli = (
                f"{statistics.median(timed(cli) for _ in range(repeat)):6.2f} s"
                if size <= STACK_FILE_LIMIT
                else f"  (stack file {size / 1e6:.1f} MB > 1 MiB)"
            )
            by_library = statistics.median(timed(library) for _ in range(repeat))
            print(f"{count:5d} inline partners: render --config {by_cli}   library {by_library:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
