"""The directory render writes: render owns it, so `kubectl apply -f DIR` applies only the plan.

A marker file (MARKER) lists the files the last render wrote. A new render removes the ones that
are no longer planned (a StatefulSet after switching to an external database), and refuses a
non-empty directory without the marker: it could be someone's work.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

MARKER = ".kuscia-render"
MARKER_HEADER = "# Written by `kuscia-p2p render`; it replaces the files listed here on every render.\n"


class OutputDirError(Exception):
    """--out cannot be used; the message names the directory, the reason and what to do."""


def claim(out_dir: Path) -> list[str]:
    """Make `out_dir` ours (create it if needed); return the files the last render wrote there."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputDirError(
            f"--out {out_dir} is a file, not a directory: name a directory (a new one is created)"
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputDirError(f"--out {out_dir}: cannot create the directory ({_reason(err)})") from None
    marker = out_dir / MARKER
    try:
        if not marker.is_file():
            if any(out_dir.iterdir()):
                raise OutputDirError(
                    f"--out {out_dir} is not empty and was not written by render (no {MARKER} file): "
                    "name a new or empty directory, or empty this one"
                )
            previous: list[str] = []
        else:
            previous = [
                line for line in marker.read_text(encoding="utf-8").splitlines() if line and line[0] != "#"
            ]
        if not os.access(out_dir, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
        marker.write_text(MARKER_HEADER + "\n".join(previous) + "\n", encoding="utf-8")
    except OSError as err:
        raise OutputDirError(f"--out {out_dir}: cannot write there ({_reason(err)})") from None
    return previous


def write_owned(out_dir: Path, files: Mapping[str, str], previous: list[str]) -> list[str]:
    """Write `files`, remove what the last render wrote and this one does not; return the names."""
    try:
        for name, text in files.items():
            (out_dir / name).write_text(text, encoding="utf-8")
        for name in previous:
            if name not in files and "/" not in name and name != MARKER:
                (out_dir / name).unlink(missing_ok=True)
        (out_dir / MARKER).write_text(MARKER_HEADER + "".join(f"{n}\n" for n in files), encoding="utf-8")
    except OSError as err:
        raise OutputDirError(f"--out {out_dir}: cannot write there ({_reason(err)})") from None
    return list(files)


def _reason(err: OSError) -> str:
    return err.strerror or type(err).__name__
