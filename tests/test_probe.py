"""The in-pod probe (peering/probe.py): real curl, openssl and bash outputs, recorded on this
machine against local servers (tests/fixtures/curl_probe/record.py re-records them), each
classified as upstream's docs/troubleshoot/network/network_authorization_check.md reads curl:
401 = reachable, hang = not allow-listed, refused = port down; plus DNS and http/https mismatch.
curl's exit codes: curl(1) EXIT CODES (6 resolve, 7 connect, 28 timeout, 35 TLS connect, 56 recv).
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kuscia_components.peering import probe

RECORDINGS = json.loads((Path(__file__).parent / "fixtures" / "curl_probe" / "recordings.json").read_text())
# case -> {tool: verdict}; "bash" on https is a TCP check only, so it cannot see a 401.
EXPECTED: dict[str, dict[str, str]] = {
    "reachable_https": {"curl": "reachable", "openssl": "reachable", "bash": "unknown"},
    "reachable_http": {"curl": "reachable", "bash": "reachable"},
    "other_server_https": {"curl": "other_answer", "openssl": "other_answer", "bash": "unknown"},
    "refused": {"curl": "refused", "openssl": "refused", "bash": "refused"},
    "dns": {"curl": "dns", "openssl": "dns", "bash": "dns"},
    "https_to_plain_http": {"curl": "protocol_mismatch", "openssl": "protocol_mismatch", "bash": "unknown"},
    "http_to_tls_port": {"curl": "protocol_mismatch", "bash": "protocol_mismatch"},
    "connect_timeout": {
        "curl": "not_allow_listed",
        "openssl": "not_allow_listed",
        "bash": "not_allow_listed",
    },
    "answer_timeout": {"curl": "no_answer", "bash": "no_answer"},
}


def _recorded(case: str, tool: str) -> dict[str, Any]:
    return RECORDINGS["cases"][case][tool]


@pytest.mark.parametrize(
    ("case", "tool"), [(case, tool) for case, tools in EXPECTED.items() for tool in tools]
)
def test_recorded_outputs_are_classified_as_the_seed_reads_them(case: str, tool: str) -> None:
    rec = _recorded(case, tool)
    endpoint = rec["argv"][-1] if tool == "curl" else _recorded(case, "curl")["argv"][-1]
    result = probe.classify(tool, endpoint, rec["exit_code"], rec["stdout"], rec["stderr"])
    assert result.verdict == EXPECTED[case][tool], (result, rec)
    assert endpoint in result.summary


def test_the_reachable_verdict_quotes_the_gateways_header() -> None:
    rec = _recorded("reachable_https", "curl")
    result = probe.classify("curl", rec["argv"][-1], rec["exit_code"], rec["stdout"], rec["stderr"])
    assert result.reachable is True and "kuscia-error-message: Domain bob." in result.evidence
    refused = _recorded("refused", "curl")
    assert probe.classify("curl", refused["argv"][-1], 7, "", refused["stderr"]).reachable is False


def test_a_401_without_kusciasheader_is_not_a_kuscia_gateway() -> None:
    rec = _recorded("reachable_http", "curl")
    stripped = "\n".join(line for line in rec["stderr"].splitlines() if "kuscia-error-message" not in line)
    assert probe.classify("curl", rec["argv"][-1], 0, rec["stdout"], stripped).verdict == "other_answer"


def test_commands_fall_back_from_curl_to_openssl_to_bash() -> None:
    https = probe.commands("https://bob.example:1080", timeout=7)
    assert [tool for tool, _ in https] == ["curl", "openssl", "bash"]
    assert https[0][1] == [
        "curl",
        "-q",
        "--globoff",
        "--proto",
        "=http,https",
        "-kvvv",
        "-sS",
        "--max-time",
        "7",
        "https://bob.example:1080",
    ]
    assert [tool for tool, _ in probe.commands("http://bob.example:1080")] == ["curl", "bash"]


@pytest.mark.parametrize(
    "endpoint",
    ["https://bob;reboot:1080", "https://$(id):1080", "https://u:p@bob:1080", "bob:1080", "ftp://bob"],
)
def test_endpoints_that_could_reach_a_shell_are_refused(endpoint: str) -> None:
    with pytest.raises(ValueError, match=r"https://host:port|user info"):
        probe.commands(endpoint)


def test_shell_fallbacks_take_the_host_as_a_parameter_not_as_script_text() -> None:
    for tool, argv in probe.commands("https://bob-gw.example.com:1080")[1:]:
        script = argv[argv.index("-c") + 1]
        assert "bob-gw" not in script, tool
        assert argv[-2:] == ["bob-gw.example.com", "1080"]


def test_run_tries_the_next_tool_when_one_is_missing() -> None:
    """126/127 (shell) and the runtime's `executable file not found` both mean: not in the image."""
    answers = {
        "curl": (127, "", "sh: curl: command not found"),
        "timeout": (
            126,
            "",
            'OCI runtime exec failed: exec failed: unable to start container process: exec: "timeout": '
            "executable file not found in $PATH: unknown",
        ),
    }
    calls: list[tuple[list[str], float]] = []

    def exec_fn(argv: list[str], timeout: float) -> tuple[int, str, str]:
        calls.append((argv, timeout))
        return answers[argv[0]]

    result = probe.run(exec_fn, "https://bob.example:1080", timeout=4)
    assert result.verdict == "tool_missing" and result.reachable is None
    assert "curl, openssl, bash" in result.summary
    assert [argv[0] for argv, _ in calls] == ["curl", "timeout", "timeout"]
    assert all(timeout == 9 for _, timeout in calls)  # the command's bound plus the exec margin

    answers["timeout"] = (1, _recorded("refused", "openssl")["stdout"], "")
    assert probe.run(exec_fn, "https://bob.example:1080").verdict == "refused"


def test_an_exec_that_does_not_return_says_so_and_stops() -> None:
    calls = []

    def exec_fn(argv: list[str], _timeout: float) -> tuple[int, str, str]:
        calls.append(argv[0])
        raise TimeoutError

    result = probe.run(exec_fn, "https://bob.example:1080", timeout=2)
    assert result.verdict == "unknown" and result.reachable is None
    assert "did not return from the pod within 7 s" in result.summary and calls == ["curl"]


# -- live: this machine's curl through the probe's own run(), against a local gateway -------------


class _Gateway(BaseHTTPRequestHandler):
    paths: list[str] = []  # every path asked, across instances (one server per test)

    def do_GET(self) -> None:
        _Gateway.paths.append(self.path)
        self.send_response(401)
        self.send_header("kuscia-error-message", "Domain bob.pod<--127.0.0.1 return http code 401.")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(5)


def _local_exec(argv: list[str], timeout: float) -> tuple[int, str, str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def test_run_with_real_curl_against_a_local_gateway_and_a_closed_port(gateway: int) -> None:
    assert probe.run(_local_exec, f"http://127.0.0.1:{gateway}", timeout=3).verdict == "reachable"
    closed = probe.run(_local_exec, "http://127.0.0.1:9", timeout=3)
    assert closed.verdict == "refused" and "refused" in closed.summary


def test_a_globbing_partner_url_is_one_request_from_the_pod_not_a_sweep(gateway: int) -> None:
    """curl expands `[1-50]` and `{a,b}` in a URL into one request each unless --globoff: a
    hostile bundle's endpoint would make our pod send thousands (review of #11)."""
    _Gateway.paths.clear()
    result = probe.run(_local_exec, f"http://127.0.0.1:{gateway}/kuscia[1-50]{{a,b}}", timeout=3)
    assert result.verdict == "reachable"
    assert _Gateway.paths == ["/kuscia[1-50]{a,b}"]
