"""An EZSP stick (Silicon Labs EFR32: SkyConnect / ZBT-1, Sonoff ZBDongle-E, ...) for the node.

One program per stick: a serial port (or a "socket://" network coordinator) serves a single
Zigbee stack. Before the node talks to one, `port_key` tells whether another user (ZHA, most
often) already has it configured; `probe_ezsp` then checks that an EZSP firmware answers, with
bellows' own link handshake (ASH reset, then the EZSP `version` command).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

import zigpy.config  # type: ignore[import-untyped]
from bellows.ezsp import EZSP  # type: ignore[import-untyped]

DEFAULT_BAUDRATE = 115200
PROBE_TIMEOUT = 15.0  # bellows waits up to 5 s for the reset, then the version answer


class StickError(Exception):
    """The stick did not complete the EZSP handshake: absent, busy, or not EZSP firmware."""


@dataclass(frozen=True)
class StickInfo:
    path: str
    ezsp_version: int  # the EZSP protocol version its firmware speaks


def port_key(path: str) -> str:
    """What identifies the stick behind a path, to compare with other users' paths.

    Serial paths are resolved (a /dev/serial/by-id/... link and /dev/ttyUSB0 are one stick):
    blocking file-system work, run it off the event loop. Network coordinators compare by
    scheme, host and port.
    """
    path = path.strip()
    if "://" in path:
        url = urlsplit(path)
        return f"{url.scheme.lower()}://{(url.hostname or '').lower()}:{url.port}"
    return os.path.realpath(path)


def port_in_use(path: str, others: list[str]) -> str | None:
    """The first of `others` that is the same stick as `path` (blocking, as `port_key`)."""
    key = port_key(path)
    return next((other for other in others if port_key(other) == key), None)


async def probe_ezsp(
    path: str,
    baudrate: int = DEFAULT_BAUDRATE,
    timeout: float = PROBE_TIMEOUT,  # noqa: ASYNC109 - a bound on bellows' own retries
) -> StickInfo:
    """Connect with bellows, complete the handshake, disconnect."""
    config = zigpy.config.SCHEMA_DEVICE(
        {zigpy.config.CONF_DEVICE_PATH: path, zigpy.config.CONF_DEVICE_BAUDRATE: baudrate}
    )
    ezsp = EZSP(config)
    try:
        async with asyncio.timeout(timeout):
            # No thread of its own: the node's event loop runs the serial/TCP transport.
            await ezsp.connect(use_thread=False)
        return StickInfo(path=path, ezsp_version=int(ezsp.ezsp_version))
    except TimeoutError as error:
        raise StickError(f"{path}: no EZSP answer within {timeout:g} s") from error
    except Exception as error:  # bellows raises serial, socket, ASH and EZSP errors alike
        raise StickError(f"{path}: {error or type(error).__name__}") from error
    finally:
        await ezsp.disconnect()
