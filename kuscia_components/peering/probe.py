"""The seed's network check, `curl -kvvv <partner endpoint>`, run from inside our Kuscia pod (pure).

Kuscia reports "the partner has not registered us" and "the partner is unreachable" the same way
on a route (`DestinationIsNotAuthrized`, NOTES §3.5); upstream's troubleshooting page tells them
apart with this curl from the source node (docs/troubleshoot/network/network_authorization_check.md):
401 = reachable, a hang = our egress is not allow-listed, `Connection refused` = their service or
port is down, other answers = a proxy or firewall. Only a request from the pod itself shares its
network path (egress IP, DNS, NetworkPolicy), which the API server's service proxy does not.

The Kuscia image ships curl (upstream docs run `docker exec <node> curl ...`, and
`scripts/deploy/deploy.sh` probes endpoints with it), `openssl` and `bash`
(build/dockerfile/kuscia-anolis.Dockerfile installs openssl; the kuscia user's shell is bash). When
a command is missing (exit 126/127) the next one is tried: `openssl s_client` for https, bash's
`/dev/tcp` (TCP only for https). Running the commands is the caller's: an injected
`exec(argv, timeout) -> (exit_code, stdout, stderr)`, e.g. pods/exec in kube/podexec.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

Verdict = Literal[
    "reachable",  # 401 with kuscia-error-message: a Kuscia gateway answered
    "other_answer",  # something answered, but not a Kuscia gateway (proxy, firewall, another server)
    "not_allow_listed",  # the connection never opened: dropped on the way (allow-list, firewall)
    "no_answer",  # connected, then nothing came back in time (a proxy holding the request)
    "refused",  # nothing listens there: their Service or port is down
    "no_route",  # no route to the address from the pod
    "dns",  # the name does not resolve from the pod
    "protocol_mismatch",  # http vs https: the endpoint's scheme is not what the port speaks
    "tls_error",  # the TLS handshake failed for another reason
    "tool_missing",  # none of the probe commands is in the image
    "unknown",
]
ExecFn = Callable[[list[str], float], tuple[int, str, str]]
DEFAULT_TIMEOUT = 10.0
MAX_OUTPUT = 64 * 1024  # what is looked at of each stream; a gateway's 401 fits many times
MISSING_EXIT = (126, 127)
_EXEC_MARGIN = 5.0  # the exec call's own bound on top of the command's
_STATUS = re.compile(r"^< HTTP/[0-9.]+ (\d{3})", re.M)
_RAW_STATUS = re.compile(r"^HTTP/[0-9.]+ (\d{3})", re.M)
_CURL_ERROR = re.compile(r"^curl: \((\d+)\) (.*)$", re.M)
_PLAINTEXT_TLS = ("wrong version number", "packet length too long", "record layer failure", "http_request")
_NOT_FOUND = (
    "executable file not found",
    "no such file or directory",
    "command not found",
    "not found in $path",
)


@dataclass(frozen=True)
class ProbeResult:
    """What one probe found, in words; `reachable` is None when it cannot say."""

    verdict: Verdict
    endpoint: str
    tool: str  # curl | openssl | bash
    summary: str  # one sentence for the diagnosis
    evidence: str = ""  # the line of output the verdict rests on

    @property
    def reachable(self) -> bool | None:
        if self.verdict == "reachable":
            return True
        if self.verdict in ("tool_missing", "unknown"):
            return None
        return False


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    url: str


def parse_endpoint(endpoint: str) -> Target:
    """`http(s)://host:port` (a partner endpoint as the route dials it); ValueError otherwise."""
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"a partner endpoint must look like https://host:port; got {endpoint!r}")
    if not re.fullmatch(r"[A-Za-z0-9.:\-\[\]]+", parts.netloc):
        raise ValueError(f"a partner endpoint must not carry user info, spaces or quotes; got {endpoint!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return Target(parts.scheme, parts.hostname, port, f"{parts.scheme}://{parts.netloc}{parts.path or ''}")


def commands(endpoint: str, timeout: float = DEFAULT_TIMEOUT) -> list[tuple[str, list[str]]]:
    """(tool, argv) in the order tried. Values reach the shell fallbacks as positional
    parameters (`"$1"`), never spliced into the script, so no endpoint can inject a command."""
    target = parse_endpoint(endpoint)
    seconds = str(max(1, int(timeout)))
    request = 'printf "GET / HTTP/1.1\\r\\nHost: %s\\r\\nConnection: close\\r\\n\\r\\n" "$1"'
    # -q first: no ~/.curlrc in the pod changes the request; --globoff: a partner's `[1-1000000]`
    # or `{a,b}` in the URL is one request, not a sweep from our pod; only http(s).
    curl = ["curl", "-q", "--globoff", "--proto", "=http,https", "-kvvv", "-sS", "--max-time", seconds]
    found = [("curl", [*curl, target.url])]
    if target.scheme == "https":
        openssl = f'{request} | openssl s_client -quiet -connect "$1:$2" -servername "$1" 2>&1'
        found.append(
            ("openssl", ["timeout", seconds, "bash", "-c", openssl, "probe", target.host, str(target.port)])
        )
    tcp = 'exec 3<>"/dev/tcp/$1/$2" || exit 7; echo "connected to $1:$2"; ' + (
        f"{request} >&3; cat <&3" if target.scheme == "http" else "exit 0"
    )
    found.append(("bash", ["timeout", seconds, "bash", "-c", tcp, "probe", target.host, str(target.port)]))
    return found


def run(exec_fn: ExecFn, endpoint: str, timeout: float = DEFAULT_TIMEOUT) -> ProbeResult:
    """Try each command until one is in the image; classify its answer. Bounded: each exec gets
    `timeout` plus a margin, and at most three are tried."""
    tried = []
    for tool, argv in commands(endpoint, timeout):
        try:
            exit_code, stdout, stderr = exec_fn(argv, timeout + _EXEC_MARGIN)
        except TimeoutError:  # the command has its own bound: the exec channel itself is stuck
            return ProbeResult(
                "unknown",
                endpoint,
                tool,
                f"the probe of {endpoint} did not return from the pod within {timeout + _EXEC_MARGIN:g} s",
            )
        if _missing(exit_code, stdout, stderr):
            tried.append(tool)
            continue
        return classify(tool, endpoint, exit_code, stdout[:MAX_OUTPUT], stderr[:MAX_OUTPUT])
    return ProbeResult(
        "tool_missing",
        endpoint,
        tried[-1] if tried else "",
        f"could not probe {endpoint} from the pod: none of {', '.join(tried)} is in the image",
    )


def classify(tool: str, endpoint: str, exit_code: int, stdout: str, stderr: str) -> ProbeResult:
    """The verdict for one command's output (curl's exit codes: curl(1) EXIT CODES)."""
    scheme = urlsplit(endpoint).scheme
    if tool == "curl":
        return _classify_curl(endpoint, scheme, exit_code, stdout, stderr)
    return _classify_shell(tool, endpoint, scheme, exit_code, f"{stdout}\n{stderr}")


def _result(verdict: Verdict, endpoint: str, tool: str, evidence: str) -> ProbeResult:
    return ProbeResult(
        verdict, endpoint, tool, _SUMMARY[verdict].format(endpoint=endpoint), evidence.strip()[:300]
    )


_SUMMARY: dict[Verdict, str] = {
    "reachable": "{endpoint} answered from inside our pod with 401 and kuscia-error-message: the partner's "
    "gateway is reachable",
    "other_answer": "{endpoint} answered from inside our pod, but not as a Kuscia gateway (no 401 with "
    "kuscia-error-message): a proxy, firewall or another service sits at that address",
    "not_allow_listed": "{endpoint} did not accept a connection from inside our pod in time: the partner has "
    "most likely not allow-listed our egress IP, or a firewall drops the traffic",
    "no_answer": "{endpoint} accepted the connection from inside our pod but sent nothing back in time: a "
    "proxy or firewall in between holds the request",
    "refused": "{endpoint} refused the connection from inside our pod: nothing listens there (the partner's "
    "Service or port is down, or the port is wrong)",
    "no_route": "{endpoint} has no network route from inside our pod",
    "dns": "{endpoint}'s host name does not resolve from inside our pod",
    "protocol_mismatch": "{endpoint} does not speak the scheme the route uses (http vs https): the partner's "
    "protocol (NOTLS: http://, TLS/MTLS: https://) and the endpoint disagree",
    "tls_error": "the TLS handshake with {endpoint} failed from inside our pod",
    "tool_missing": "could not probe {endpoint} from the pod",
    "unknown": "the probe of {endpoint} from inside our pod gave an answer this tool cannot read",
}


def _classify_curl(endpoint: str, scheme: str, exit_code: int, stdout: str, stderr: str) -> ProbeResult:
    error = _CURL_ERROR.search(stderr)
    line = error.group(0) if error else _last_line(stderr)
    if exit_code == 0:
        return _answer(endpoint, "curl", _STATUS.findall(stderr), stderr)
    lower = stderr.lower()
    if exit_code == 6:
        return _result("dns", endpoint, "curl", line)
    if exit_code == 7:
        if "no route to host" in lower or "network is unreachable" in lower:
            return _result("no_route", endpoint, "curl", line)
        return _result("refused", endpoint, "curl", _line_with(stderr, "refused") or line)
    if exit_code == 28:
        connected = "* Connected to" in stderr
        return _result("no_answer" if connected else "not_allow_listed", endpoint, "curl", line)
    if exit_code == 35 and any(s in lower for s in _PLAINTEXT_TLS):
        return _result("protocol_mismatch", endpoint, "curl", line)
    if exit_code in (52, 56) and scheme == "http":  # a TLS port drops a plain request
        return _result("protocol_mismatch", endpoint, "curl", line)
    if exit_code in (35, 51, 53, 54, 58, 59, 60, 66, 80, 83, 90, 91):
        return _result("tls_error", endpoint, "curl", line)
    return _result("unknown", endpoint, "curl", line)


def _classify_shell(tool: str, endpoint: str, scheme: str, exit_code: int, text: str) -> ProbeResult:
    lower = text.lower()
    statuses = _RAW_STATUS.findall(text)
    if statuses:
        return _answer(endpoint, tool, statuses, text)
    if (
        "name or service not known" in lower
        or "temporary failure in name resolution" in lower
        or ("bio_lookup" in lower)
    ):
        return _result("dns", endpoint, tool, _line_with(text, "name") or _last_line(text))
    if "connection refused" in lower or "errno=111" in lower:
        return _result("refused", endpoint, tool, _line_with(text, "refused") or _line_with(text, "errno"))
    if "no route to host" in lower or "network is unreachable" in lower:
        return _result("no_route", endpoint, tool, _last_line(text))
    if any(s in lower for s in _PLAINTEXT_TLS):
        return _result("protocol_mismatch", endpoint, tool, _line_with(text, "version") or _last_line(text))
    if exit_code == 124:  # coreutils timeout
        connected = "connected to" in lower or "connected(" in lower
        verdict: Verdict = "no_answer" if connected else "not_allow_listed"
        return _result(verdict, endpoint, tool, "no answer before the time limit (timeout exit 124)")
    if tool == "bash" and scheme == "http" and "connected to" in lower:
        # Connected, then closed without any HTTP answer: a TLS port drops a plain request.
        return _result(
            "protocol_mismatch", endpoint, tool, "the port closed the connection without an HTTP answer"
        )
    if tool == "bash" and exit_code == 0 and scheme == "https":
        return ProbeResult(
            "unknown",
            endpoint,
            tool,
            f"{endpoint} accepts TCP connections from inside our pod (only a TCP check: neither curl nor "
            "openssl is in the image, so the gateway's 401 was not asked for)",
            _last_line(text),
        )
    if tool == "openssl" and "ssl" in lower and exit_code != 0:
        return _result("tls_error", endpoint, tool, _line_with(text, "error") or _last_line(text))
    return _result("unknown", endpoint, tool, _last_line(text))


def _answer(endpoint: str, tool: str, statuses: list[str], text: str) -> ProbeResult:
    status = statuses[-1] if statuses else ""
    header = re.search(r"^(?:< )?kuscia-error-message:.*$", text, re.M | re.I)
    if status == "401" and header:
        return _result("reachable", endpoint, tool, header.group(0))
    if status == "400" and re.search(
        r"plain HTTP request was sent to HTTPS port|HTTP request to an HTTPS server", text
    ):
        return _result("protocol_mismatch", endpoint, tool, f"HTTP {status}")
    answered = f"HTTP {status}" if status else "an answer without an HTTP status"
    server = re.search(r"^(?:< )?server:.*$", text, re.M | re.I)
    return _result(
        "other_answer", endpoint, tool, f"{answered}{'; ' + server.group(0).lstrip('< ') if server else ''}"
    )


def _missing(exit_code: int, stdout: str, stderr: str) -> bool:
    """The command is not in the image: the shell's 126/127, or the runtime's exec error."""
    if exit_code in MISSING_EXIT and not stdout.strip():
        return True
    lower = stderr.lower()
    return (
        exit_code != 0
        and not stdout.strip()
        and any(s in lower for s in _NOT_FOUND)
        and "curl: (" not in lower
    )


def _line_with(text: str, word: str) -> str:
    return next((line for line in text.splitlines() if word.lower() in line.lower()), "")


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
