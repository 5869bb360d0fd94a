"""The asyncio glue shared by the benchmark's sans-I/O peers (`bench.upstream`, `bench.loadgen`).

Each peer is a websockets sans-I/O protocol (`ServerProtocol`, `ClientProtocol`) on a
plain asyncio `Protocol`: bytes in through `receive_data`, bytes out through `write_out`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from websockets.protocol import Protocol

__all__ = ["run_on_uvloop", "write_out"]

T = TypeVar("T")


def write_out(protocol: Protocol, transport: asyncio.Transport) -> None:
    """Write what `protocol` has to send; its empty chunk means: end the TCP connection."""
    for data in protocol.data_to_send():
        if data:
            transport.write(data)
        else:
            transport.close()
            return


def run_on_uvloop(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on uvloop when it is installed (it is, with uvicorn[standard])."""
    try:
        import uvloop
    except ModuleNotFoundError:
        return asyncio.run(main)
    return uvloop.run(main)
