"""The data side of the embedded aggregator in one piece, for `serve`: the fleet store, the rules
dispatcher on the broker's loopback listener and the fleet page on the HTTP application.

    app = build_app(service)                    # the iot-data REST application
    async with fleet_data(layout.root / "fleet.sqlite3", app, local_port, tls) as fleet:
        ...                                     # set up the runner, serve until stopped

Entering returns once the dispatcher is subscribed (a broker that refuses it the first time
raises); leaving stops the dispatcher and closes the store. `fleet.task` ends only with an
error, so `serve` can watch it like the shadow service's task."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from aiohttp import web

from aggregator_cloud.local.rules import RulesDispatcher
from aggregator_cloud.store import SqliteStore
from aggregator_cloud.web import add_routes
from aggregator_cloud.web.reports import add_report_routes


@dataclass(frozen=True)
class FleetData:
    store: SqliteStore
    dispatcher: RulesDispatcher
    task: asyncio.Task[None]
    """The dispatcher's task."""


@contextlib.asynccontextmanager
async def fleet_data(
    database: Path,
    app: web.Application,
    local_port: int,
    tls_context: ssl.SSLContext | None,
    intensity: pd.Series | None = None,
    *,
    retention_days: float | None = None,
) -> AsyncIterator[FleetData]:
    """Open the store, add the fleet page to `app` (before its runner is set up) and run the
    rules dispatcher until the block ends."""
    store = SqliteStore(database)
    try:
        add_routes(app, store, intensity=intensity)
        # reports, shared links (key in the data directory) and the retention job
        add_report_routes(app, store, database.parent, retention_days=retention_days)
        dispatcher = RulesDispatcher(store, local_port, tls_context=tls_context)
        subscribed = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(subscribed.set), name="fractal rules")
        try:
            await _subscribed_or_failed(subscribed, task)
            yield FleetData(store, dispatcher, task)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        store.close()


async def _subscribed_or_failed(subscribed: asyncio.Event, task: asyncio.Task[None]) -> None:
    waiter = asyncio.ensure_future(subscribed.wait())
    done, _ = await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()  # raises the dispatcher's error
        raise RuntimeError("the rules dispatcher stopped before it subscribed")
