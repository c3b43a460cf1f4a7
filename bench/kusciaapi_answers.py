"""Cost of refusing the worst KusciaAPI answer the client will read (just under 4 MiB).

`python bench/kusciaapi_answers.py` parses a 4 MiB answer of a million empty lists (the most
objects per byte JSON allows) and reports the time and the traced memory peak of the refusal.
"""

from __future__ import annotations

import contextlib
import time
import tracemalloc

from kuscia_components.kube.transport import Response
from kuscia_components.peering.client import ANSWER_LIMIT_BYTES, KusciaApiClient, NodeTarget, UnexpectedAnswer

COUNT = (ANSWER_LIMIT_BYTES - 40) // 3
BODY = b'{"status":{"code":0},"data":{"routes":[' + b"[]," * (COUNT - 1) + b"[]]}}"


class Worst:
    def request(self, *_args: object, **_kwargs: object) -> Response:
        return Response(200, BODY, {})

    def close(self) -> None:
        pass


def main() -> None:
    client = KusciaApiClient(
        NodeTarget("autonomy-alice", "kuscia-autonomy-alice", "alice", "TLS"), transport=Worst()
    )
    for traced in (False, True):
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        with contextlib.suppress(UnexpectedAnswer):
            client.route_status([("alice", "bob")])
        took = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] / 1e6 if traced else float("nan")
        tracemalloc.stop()
        print(
            f"{len(BODY)} bytes refused in {took:.2f} s"
            + (f", peak {peak:.0f} MB (traced)" if traced else "")
        )


if __name__ == "__main__":
    main()
