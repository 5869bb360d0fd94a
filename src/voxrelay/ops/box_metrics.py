"""`/metrics` of a `serve --workers N` box: any worker answers a scrape with every worker's series.

Each worker serves its own registry's exposition text on a unix socket, `worker-<index>.sock` in the
supervisor's private runtime folder (mode 0700, `ops/workers.py`): a sibling connects, reads to the
end, and the connection closes. No request is read, so the socket takes no input.

A scrape on any worker renders its own registry, reads every sibling's socket at the same time
(each within `timeout_s`: a worker restarting, starting or stuck is left out, and
`voxrelay_worker_up{worker="<index>"}` is 0 for it), then merges the texts (`metrics_merge.py`)
on the event loop: ~1 ms for two busy workers, half of what rendering one registry costs
(scripts/metrics_merge_cost.py; a thread would not free the loop for that, the merge holds the GIL).

Call order: `start()` in the app's lifespan before serving, `render()` per scrape, `stop()` at the
end of the lifespan (it removes the socket file).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from voxrelay.ops.metrics_merge import box_exposition

__all__ = ["BoxMetrics", "socket_path"]

log = logging.getLogger("voxrelay.ops.box_metrics")


def socket_path(directory: Path, index: int) -> Path:
    """Where worker `index` serves its own metrics."""
    return directory / f"worker-{index}.sock"


class BoxMetrics:
    """One worker's view of the box's metrics.

    Args:
        index: this worker's slot index (its `worker` label).
        workers: how many workers the box runs (indices 0 .. workers - 1).
        directory: the supervisor's private runtime folder, where the sockets live.
        own: renders this worker's registry (what a single gateway's `/metrics` answers).
        timeout_s: how long a scrape waits for a sibling's text.
    """

    def __init__(
        self, index: int, workers: int, directory: Path, own: Callable[[], bytes], *, timeout_s: float = 1.0
    ) -> None:
        self.index = index
        self.workers = workers
        self.directory = directory
        self._own = own
        self._timeout_s = timeout_s
        self._server: asyncio.Server | None = None

    # Public methods: the lifespan's.

    async def start(self) -> None:
        """Serve this worker's text to its siblings; if the socket cannot be made, log it and serve none."""
        path = socket_path(self.directory, self.index)
        try:
            # A socket file left by a killed predecessor in this slot is removed by asyncio before binding.
            self._server = await asyncio.start_unix_server(self._send_own, path=str(path))
        except OSError as exc:  # e.g. the folder's path is too long for a unix socket (TMPDIR)
            log.error("worker %d cannot serve its metrics to the other workers at %s: %s", self.index, path, exc)

    async def stop(self) -> None:
        """Stop serving and remove the socket file."""
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        with contextlib.suppress(FileNotFoundError):
            socket_path(self.directory, self.index).unlink()

    # Public methods: the /metrics endpoint's.

    async def render(self) -> bytes:
        """Every worker's series, labelled `worker`, plus `voxrelay_worker_up`."""
        siblings = [i for i in range(self.workers) if i != self.index]
        own = self._own()
        answers = await asyncio.gather(*(self._read_sibling(i) for i in siblings))
        texts: dict[int, bytes | None] = {self.index: own, **dict(zip(siblings, answers, strict=True))}
        return box_exposition(texts)

    # Private methods.

    async def _send_own(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(self._own())
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def _read_sibling(self, index: int) -> bytes | None:
        """Sibling `index`'s text, or None when it did not answer in time (absent, refusing, stuck)."""
        try:
            return await asyncio.wait_for(self._fetch(socket_path(self.directory, index)), self._timeout_s)
        except (OSError, asyncio.TimeoutError):
            return None

    @staticmethod
    async def _fetch(path: Path) -> bytes:
        reader, writer = await asyncio.open_unix_connection(str(path))
        try:
            return await reader.read()  # to the end: the sibling closes once its text is written
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
