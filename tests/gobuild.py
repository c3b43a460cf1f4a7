"""Build the small Go test programs against Debian's Go libraries (GOPATH mode, no network).

The libraries are the ones Kuscia itself uses: go-sql-driver/mysql for DSNs, yaml.v3 for
kuscia.yaml. CI installs them (.ci/run); elsewhere a missing toolchain skips, in CI it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

GOPATH = "/usr/share/gocode"


def build_go_program(source: Path, out_dir: Path, *, library: str | None, debian_package: str) -> Path:
    """Compile `source` into `out_dir`; `library` is the import path that must be installed (None:
    the program needs Go's standard library only)."""
    if shutil.which("go") is None or (library is not None and not Path(GOPATH, "src", library).is_dir()):
        install = f"apt-get install golang-go {debian_package}"
        if os.environ.get("CI"):
            pytest.fail(f"CI must install golang-go and {debian_package} (see .ci/run): {install}")
        pytest.skip(f"go or Debian's {library} is not installed ({install})")
    binary = out_dir / source.parent.name
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": GOPATH, "GOCACHE": str(out_dir / "cache")}
    subprocess.run(["go", "build", "-o", str(binary), str(source)], check=True, env=env, capture_output=True)
    return binary
