"""Wall time and peak memory of every refusal in the hostile corpus (tests/hostile/cases.yaml).

Each case runs in a fresh interpreter (so its peak RSS is its own), through the real CLI; the
time includes interpreter start and imports. Target (issue #10): each refusal <= 2 s, <= 200 MB.

    .venv/bin/python bench/hostile.py            # a table, the slowest last
    .venv/bin/python bench/hostile.py --keys     # own-key check: accept / refuse, 2048-8192 bits
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


def keys() -> int:
    """Accepting a good own key and refusing a damaged one (d + 2), per size: our arithmetic check
    (core/pki) next to OpenSSL's full check, which also tests p and q for primality."""
    import time

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from kuscia_components.core import pki

    def pem(key: rsa.RSAPrivateKey) -> str:
        fmt = serialization.PrivateFormat.TraditionalOpenSSL
        return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()

    def timed(check: object, data: str) -> tuple[float, bool]:
        start = time.perf_counter()
        try:
            check(data)  # type: ignore[operator]
            ok = True
        except ValueError:
            ok = False
        return time.perf_counter() - start, ok

    def openssl(data: str) -> None:
        serialization.load_pem_private_key(data.encode(), None)

    print(f"{'bits':>5} {'key':>8} {'ours s':>8} {'OpenSSL s':>10}")
    for bits in (2048, 4096, 8192):
        good = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        n = good.private_numbers()
        bad = rsa.RSAPrivateNumbers(n.p, n.q, n.d + 2, n.dmp1, n.dmq1, n.iqmp, n.public_numbers).private_key(
            unsafe_skip_rsa_key_validation=True
        )
        for label, key, expect in (("good", good, True), ("damaged", bad, False)):
            data = pem(key)
            ours, ok = timed(pki.load_domain_key, data + "\n")  # a new string: not the cache's
            theirs, _ = timed(openssl, data)
            assert ok == expect, (bits, label)
            print(f"{bits:>5} {label:>8} {ours:>8.3f} {theirs:>10.3f}")
    return 0


def main() -> int:
    if "--keys" in sys.argv:
        return keys()
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
