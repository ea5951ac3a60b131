"""Long-running commands (`demo`, `simulate`): run until Ctrl-C or SIGTERM, then stop cleanly."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable

Main = Callable[[asyncio.Event], Awaitable[None]]


def run_until_signalled(command: str, main: Main, errors: tuple[type[Exception], ...]) -> int:
    """Run `main(stop)` in a new event loop; SIGINT and SIGTERM set `stop`. The exit status:
    0, or 1 with `fractal-aggregator COMMAND: <error>` on stderr for one of `errors`."""

    async def with_signals() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await main(stop)

    try:
        asyncio.run(with_signals())
    except errors as error:
        print(f"fractal-aggregator {command}: {error}", file=sys.stderr)
        return 1
    return 0
