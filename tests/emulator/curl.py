"""EMULATION ONLY: `curl -kvvv <endpoint>` inside an emulated node's pod, for pods/exec.

What the seed's network check prints (upstream docs/troubleshoot/network/
network_authorization_check.md) depends on what the endpoint is from the pod: a partner's
gateway answers 401 with `kuscia-error-message` (NOTES §4.4); a partner that is down or whose
port is closed refuses; one that has not allow-listed us never accepts (a connect timeout); a
name no Service has does not resolve; https to a plain-HTTP gateway or http to a TLS one fails
in the TLS layer. The outputs are the real curl 7.88.1 recordings in
tests/fixtures/curl_probe/recordings.json with the recorded address, port, time limit and the
gateway's answer replaced by this emulation's, never invented text. The emulator never sleeps
for a timeout: the recording says it happened.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .node import EmulatedNode

RECORDINGS = Path(__file__).resolve().parent.parent / "fixtures" / "curl_probe" / "recordings.json"
Answer = tuple[int, bytes, bytes]


@cache
def _recorded() -> dict[str, Any]:
    cases: dict[str, Any] = json.loads(RECORDINGS.read_text())["cases"]
    return cases


def install(node: EmulatedNode) -> None:
    """Give the node's image curl (as Kuscia's has, build/dockerfile/kuscia-anolis.Dockerfile)."""
    node.exec_handlers["curl"] = lambda argv: answer(node, argv)


def answer(source: EmulatedNode, argv: list[str]) -> Answer:
    """What curl prints in `source`'s pod for the URL at the end of `argv`."""
    url = argv[-1]
    parts = urlsplit(url)
    host, scheme = parts.hostname or "", parts.scheme
    port = parts.port or (443 if scheme == "https" else 80)
    limit = _max_time(argv)
    emu = source.network
    with emu.lock:
        target = emu.resolve(host, port)
        mode = emu.unreachable_mode(target.domain_id) if target is not None else ""
    if target is None:
        return _replay("dns", *_recorded_address("dns"), host, port, limit)
    if mode == "timeout":
        return _replay("connect_timeout", *_recorded_address("connect_timeout"), host, port, limit)
    if mode == "refused" or target.is_down:
        return _replay("refused", *_recorded_address("refused"), host, port, limit)
    if scheme == "https" and not target.is_tls:
        return _replay("https_to_plain_http", *_recorded_address("https_to_plain_http"), host, port, limit)
    if scheme == "http" and target.is_tls:
        return _replay("http_to_tls_port", *_recorded_address("http_to_tls_port"), host, port, limit)
    return _gateway_answer(source, target, scheme, host, port, limit)


def _max_time(argv: list[str]) -> str:
    if "--max-time" in argv[:-1]:
        return argv[argv.index("--max-time") + 1]
    return "0"


def _recorded_address(case: str) -> tuple[str, int]:
    parts = urlsplit(_recorded()[case]["curl"]["argv"][-1])
    return parts.hostname or "", parts.port or 0


def _replay(case: str, old_host: str, old_port: int, host: str, port: int, limit: str) -> Answer:
    """The recording of `case` with its address and time limit replaced by this probe's."""
    recorded = _recorded()[case]["curl"]
    text = _readdress(recorded["stderr"], old_host, old_port, host, port)
    text = re.sub(r"after \d+000 milliseconds", f"after {int(float(limit) * 1000)} milliseconds", text)
    return int(recorded["exit_code"]), recorded["stdout"].encode(), text.encode()


def _readdress(text: str, old_host: str, old_port: int, host: str, port: int) -> str:
    text = text.replace(f"{old_host}:{old_port}", f"{host}:{port}")
    text = text.replace(f"{old_host} ({old_host}) port {old_port}", f"{host} ({host}) port {port}")
    text = text.replace(f"to {old_host} port {old_port}", f"to {host} port {port}")
    return text.replace(old_host, host)


def _gateway_answer(
    source: EmulatedNode, target: EmulatedNode, scheme: str, host: str, port: int, limit: str
) -> Answer:
    """The recorded 401 exchange, its response lines and body from the target's gateway."""
    case = "reachable_https" if scheme == "https" else "reachable_http"
    recorded = _recorded()[case]["curl"]
    old_host, old_port = _recorded_address(case)
    status, headers, body = target.gateway("GET", "/", {"Host": f"{host}:{port}"}, source.pod_ip)
    lines: list[str] = []
    replied = False
    for line in recorded["stderr"].splitlines():
        if line.startswith("< "):
            if not replied:
                lines.append(f"< HTTP/1.1 {status} Unauthorized")
                lines += [f"< {k}: {v}" for k, v in headers.items()]
                lines += [f"< content-length: {len(body)}", "< "]
                replied = True
            continue
        lines.append(line.replace("CN=bob_ENVOY_EXTERNAL", f"CN={target.domain_id}_ENVOY_EXTERNAL"))
    text = _readdress("\n".join(lines) + "\n", old_host, old_port, host, port)
    return int(recorded["exit_code"]), body, text.encode()
