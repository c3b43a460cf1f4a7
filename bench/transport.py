"""KusciaAPI calls per transport against the EMULATED API server: service proxy vs port-forward.

    PYTHONPATH=. .venv/bin/python bench/transport.py --calls 200

One client per transport, `/healthZ` `--calls` times, NOTLS and TLS nodes; prints the median and
p90 per call. Port-forward costs one websocket upgrade (plus a TLS handshake on TLS nodes) per
call, the pod being looked up once per transport. Emulated: the numbers compare the transports'
own overhead on loopback, not a real cluster's latency.
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import time

from kuscia_components.peering.client import KusciaApiClient, NodeTarget, RetryPolicy
from tests.emulator import KusciaEmulator


def measure(target: NodeTarget, calls: int) -> list[float]:
    times = []
    with KusciaApiClient(target, retry=RetryPolicy(attempts=1)) as client:
        client.health()  # the kubeconfig, imports and pod look-up out of the way
        for _ in range(calls):
            started = time.perf_counter()
            client.health()
            times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with KusciaEmulator() as emu:
        for protocol in ("NOTLS", "TLS"):
            node = emu.add_node(protocol.lower(), protocol=protocol)
            context = None
            if node.is_tls:
                node.server_tls_context()
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.load_verify_locations(cadata=node.server_cert_pem)
            for transport in ("serviceProxy", "portForward"):
                target = NodeTarget(
                    node.namespace,
                    node.service,
                    node.domain_id,
                    protocol,
                    token=node.token,
                    kube_context=emu.context,
                    kubeconfig=emu.kubeconfig_path,
                    transport=transport,
                    ssl_context=context,
                )
                times = sorted(measure(target, args.calls))
                p90 = times[int(len(times) * 0.9)]
                print(
                    f"{protocol:5} {transport:12} median {statistics.median(times) * 1000:6.2f} ms"
                    f"  p90 {p90 * 1000:6.2f} ms  ({args.calls} calls)"
                )


if __name__ == "__main__":
    main()
