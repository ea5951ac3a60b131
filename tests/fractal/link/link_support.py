"""Real parts for the link's end-to-end tests: a cable that can be pulled, an observer on the
aggregator's loopback listener, and a way to wait without timing anything.

* `Cable`: a TCP relay between the node and the broker (TLS passes through untouched).
  `pull()` cuts every connection and refuses new ones, like an unplugged network cable;
  `plug()` lets the node back in.
* `TelemetryObserver`: subscribes to `$aws/rules/fractal_telemetry/+` as the aggregator's own
  service identity on the loopback listener, and keeps every batch it sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt

WAIT_LIMIT = 30.0
"""Seconds before a wait gives up and the test fails; never part of an assertion."""


async def until(condition: Callable[[], bool], what: str, limit: float = WAIT_LIMIT) -> None:
    """Wait until `condition()` holds; fail with `what` if it never does."""
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 (conditions over several sources; no Event)
            await asyncio.sleep(0.02)
    assert condition(), what


class Cable:
    """A pluggable TCP relay on 127.0.0.1 in front of `upstream_port`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.plugged = True
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Cable:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.pull()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    def pull(self) -> None:
        self.plugged = False
        for writer in list(self._writers):
            writer.transport.abort()

    def plug(self) -> None:
        self.plugged = True

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.plugged:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        pipes = [self._pipe(reader, up_writer), self._pipe(up_reader, writer)]
        for pipe in pipes:
            task = asyncio.create_task(pipe)
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()


class TelemetryObserver:
    """Every telemetry batch published to the broker, as decoded JSON, in arrival order.
    `start` again after the aggregator restarted to subscribe anew."""

    def __init__(self, data_dir: Path) -> None:
        self.batches: list[dict[str, Any]] = []
        self._data_dir = data_dir
        self._task: asyncio.Task[None] | None = None

    def _connection(self) -> tuple[int, ssl.SSLContext]:
        """The loopback listener's port (new at every aggregator start) and our TLS identity."""
        runtime = json.loads((self._data_dir / "runtime.json").read_text())
        context = ssl.create_default_context(cafile=runtime["ca"])
        service = self._data_dir / "service"
        context.load_cert_chain(service / "service.pem", service / "service.key")
        return runtime["local_mqtt"]["port"], context

    def samples(self) -> list[int]:
        """Sample seqs in arrival order (a resent batch appears twice)."""
        return [sample["seq"] for batch in self.batches for sample in batch["samples"]]

    def unique_samples(self) -> list[int]:
        """What the aggregator keeps after deduplicating by seq, in arrival order."""
        return list(dict.fromkeys(self.samples()))

    async def start(self) -> None:
        """Subscribe, and return once the subscription is in place."""
        subscribed = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(subscribed))
        await subscribed

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
            self._task = None

    async def _run(self, subscribed: asyncio.Future[None]) -> None:
        try:
            port, context = self._connection()
            async with aiomqtt.Client("127.0.0.1", port, tls_context=context) as client:
                await client.subscribe("$aws/rules/fractal_telemetry/+", qos=1)
                subscribed.set_result(None)
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    self.batches.append(json.loads(message.payload))
        except Exception as error:
            if not subscribed.done():
                subscribed.set_exception(error)
            raise
