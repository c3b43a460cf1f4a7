"""Bounded input: every file the tools read, read through one function with a size cap.

A hostile or mistaken path (`/dev/zero`, a FIFO, a 2 GB log, a binary) must be refused in well
under two seconds and a few MB, with a sentence naming the file, the rule and a good example,
never a `UnicodeDecodeError` traceback or an unbounded read. So a file is opened without blocking,
must be a regular file, is read to at most its cap plus one byte, and must be UTF-8 text without
NUL bytes. YAML documents are bounded separately (config/yaml_limits.py).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class FileKind:
    """What a file is for: its name in messages, its cap, and a good example of one."""

    what: str
    max_bytes: int
    example: str


# A stack file holds a few dozen settings (a few KB; inline partner certificates add ~2 KB each).
STACK_FILE = FileKind("stack file", 1 * MiB, "Pulumi.alice.yaml, written by `pulumi config set`")
PROJECT_FILE = FileKind("project file", 1 * MiB, "Pulumi.yaml with name, runtime and description")
NETWORK_SPEC = FileKind("network spec", 1 * MiB, "network.yaml (see the sample in the repo root)")
# An RSA-8192 private key is ~6.5 KB of PEM; one certificate is smaller.
KEY_FILE = FileKind("key file", 64 * KiB, "the PEM written by `openssl genrsa -traditional 2048`")
SECRET_FILE = FileKind("secret file", 64 * KiB, "a file holding one password or one PEM key")
# Embedded CA data and exec plugins make kubeconfigs a few KB per cluster.
KUBECONFIG = FileKind("kubeconfig", 4 * MiB, "~/.kube/config as written by `kubectl config`")
# A file a kubeconfig names (certificate-authority, client-certificate, client-key, tokenFile):
# a CA bundle can be a few hundred KiB; the official client and the provider read it whole.
KUBECONFIG_FILE = FileKind(
    "file a kubeconfig names", 1 * MiB, "a PEM CA bundle such as /etc/ssl/certs/ca.pem"
)
_KUBECONFIG_FILE_FIELDS = (
    ("clusters", "cluster", ("certificate-authority",)),
    ("users", "user", ("client-certificate", "client-key", "tokenFile")),
)


class InputLimitError(ValueError):
    """A file refused before (or instead of) parsing; `reason` is the rule it broke."""

    def __init__(self, path: str | os.PathLike[str], kind: FileKind, reason: str) -> None:
        self.path = str(path)
        self.kind = kind
        self.reason = reason
        super().__init__(f"{kind.what} {self.path} {reason}. Example: {kind.example}")


def size_text(count: int) -> str:
    """1048576 -> '1 MiB', 65536 -> '64 KiB', 100 -> '100 bytes'."""
    for unit, size in (("MiB", MiB), ("KiB", KiB)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"


def read_bytes(path: str | os.PathLike[str], kind: FileKind) -> bytes:
    """At most `kind.max_bytes` of a regular file; OSError (missing, unreadable) propagates."""
    fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InputLimitError(path, kind, f"is {_file_type(mode)}, not a regular file")
        chunks: list[bytes] = []
        left = kind.max_bytes + 1  # one byte more than allowed tells "too large" without reading on
        while left > 0:
            chunk = os.read(fd, min(left, 256 * KiB))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > kind.max_bytes:
        raise InputLimitError(
            path, kind, f"is larger than {size_text(kind.max_bytes)}, the most a {kind.what} may be"
        )
    return data


def read_text(path: str | os.PathLike[str], kind: FileKind) -> str:
    """The file as UTF-8 text, refused as InputLimitError when it is not text."""
    data = read_bytes(path, kind)
    return decode_text(data, path, kind)


def decode_text(data: bytes, path: str | os.PathLike[str], kind: FileKind) -> str:
    nul = data.find(b"\0")
    if nul >= 0:
        raise InputLimitError(path, kind, f"is a binary file (a NUL byte at offset {nul}), not UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputLimitError(
            path, kind, f"is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})"
        ) from None


class KubeconfigRefused(ValueError):
    """A kubeconfig file refused before any loader reads it; `reason` follows "it" in a sentence
    ("is a named pipe (FIFO), not a regular file"). Never quotes the file's content."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{KUBECONFIG.what} {path} {reason}")
        self.path = path
        self.reason = reason


def kubeconfig_text(path: str) -> str:
    """The text of one kubeconfig file, checked as every reader of it needs: a bounded regular
    UTF-8 file holding one bounded YAML document (kubectl's yaml.v2 refuses alias bombs too).
    KubeconfigRefused when it is not; OSError (missing, unreadable) propagates, as a KUBECONFIG
    list may name a missing file. The one check: `render` and the program, `check`
    (read_kubeconfig) and the API-server transport (kube.kubeconfig, each file of the list)."""
    import yaml

    from kuscia_components.config import yaml_limits

    try:
        text = read_text(path, KUBECONFIG)
        _check_named_files(yaml_limits.safe_load(text), path)
        return text
    except InputLimitError as err:
        reason = err.reason
    except yaml_limits.YamlLimitError as err:
        reason = str(err)
    except (yaml.YAMLError, RecursionError) as err:  # never the YAML error's text: it quotes the line
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None)
        reason = f"is not valid YAML{f' ({problem})' if problem else ''}{where}"
    raise KubeconfigRefused(path, reason)


def _check_named_files(document: object, path: str) -> None:
    """Each file the kubeconfig names is a regular file within KUBECONFIG_FILE's size (a
    relative name is the kubeconfig's directory's, as client-go resolves it). A missing one is
    left to the client, which names it; /dev/zero or a FIFO would be read without end."""
    if not isinstance(document, dict):
        return
    base = os.path.dirname(os.path.abspath(path))
    for section, key, fields in _KUBECONFIG_FILE_FIELDS:
        entries = document.get(section)
        for entry in entries if isinstance(entries, list) else ():
            body = entry.get(key) if isinstance(entry, dict) else None
            for field in fields:
                named = body.get(field) if isinstance(body, dict) else None
                if not isinstance(named, str) or not named:
                    continue
                target = os.path.join(base, os.path.expanduser(named))
                try:
                    read_bytes(target, KUBECONFIG_FILE)
                except OSError:  # missing or unreadable: the client says which and why
                    continue
                except InputLimitError as err:
                    where = f"{section}[{entry.get('name', '?')}].{key}.{field}"
                    raise InputLimitError(
                        path, KUBECONFIG, f"names in {where} {named[:200]!r}, which {err.reason}"
                    ) from None


def read_kubeconfig(path: str) -> str:
    """The text of the file `kuscia:kubeconfig` names (an absolute path: see
    kube.kubeconfig.project_path), checked by `kubeconfig_text`. Refused as a ConfigError naming
    the setting, never quoting the content. `check` and the program (whose provider gets the
    content) call this one function, so `check` refuses what `render` refuses."""
    from kuscia_components.config.errors import ConfigError, Problem

    try:
        return kubeconfig_text(path)
    except KubeconfigRefused as err:
        rule = f"must name a kubeconfig file: it {err.reason}"
    except OSError as err:
        rule = (
            f"must name a readable kubeconfig file ({err.strerror or type(err).__name__}; "
            "a relative path is read from the project directory)"
        )
    raise ConfigError([Problem("kuscia:kubeconfig", rule, KUBECONFIG.example, path[:200])])


def check_text(text: str, what: str, max_chars: int) -> str | None:
    """The rule a text value breaks (NUL, over `max_chars`), for values not read from a file."""
    if len(text) > max_chars:
        return f"{what} is longer than {max_chars} characters"
    if "\0" in text:
        return f"{what} contains a NUL character"
    return None


def _file_type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device (like /dev/zero)"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def is_regular(path: str | os.PathLike[str]) -> bool:
    """Path.is_file without following into devices: used to pick candidates, not to read them."""
    return Path(path).is_file()
