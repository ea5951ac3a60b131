"""bellows reaching an EZSP stick over socket://: the ASH link handshake against an emulated NCP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fractal.zigbee.stick import StickError, port_in_use, port_key, probe_ezsp

from tests.support.ezsp_ncp import EzspNcp, frame, randomise, stuff, unstuff

pytestmark = pytest.mark.usefixtures("socket_enabled")  # 127.0.0.1 only


@pytest.fixture
async def ncp() -> AsyncIterator[EzspNcp]:
    stick = EzspNcp()
    await stick.start()
    yield stick
    await stick.stop()


async def test_bellows_completes_the_handshake_with_an_ezsp_v8_stick(ncp: EzspNcp) -> None:
    info = await probe_ezsp(ncp.url)
    assert info.ezsp_version == 8
    # `version` first in the legacy framing, again in EZSP v8's extended framing.
    assert ncp.commands == [(4, 0x0000), (8, 0x0000)]
    assert ncp.bad_frames == 0


async def test_a_stick_that_waits_for_the_hosts_reset(ncp: EzspNcp) -> None:
    ncp.reset_on_connect = False  # a serial stick: bellows sends RST and waits for RSTACK
    ncp.protocol_version = 4
    info = await probe_ezsp(ncp.url)
    assert info.ezsp_version == 4
    assert ncp.commands == [(4, 0x0000)]


async def test_nothing_listening_is_a_clear_error() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(StickError, match=f"socket://127.0.0.1:{port}"):
        await probe_ezsp(f"socket://127.0.0.1:{port}")


async def test_a_silent_device_times_out_with_a_clear_error() -> None:
    async def listen_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(256):  # whatever the host sends, never a word back
            pass
        writer.close()

    server = await asyncio.start_server(listen_only, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(StickError, match="no EZSP answer within 2 s"):
            await probe_ezsp(f"socket://127.0.0.1:{port}", timeout=2)
    finally:
        server.close()


def test_ash_helpers_round_trip() -> None:
    data = bytes([0x7E, 0x7D, 0x11, 0x13, 0x18, 0x1A, 0x00, 0x42])
    assert unstuff(stuff(data)) == data
    assert randomise(randomise(data)) == data
    # UG101's worked example: RST is 1A C0 38 BC 7E on the wire.
    assert frame(0xC0) == bytes([0xC0, 0x38, 0xBC, 0x7E])


def test_the_same_stick_under_two_names_is_one_stick(tmp_path: Path) -> None:
    tty = tmp_path / "ttyUSB0"
    tty.touch()
    by_id = tmp_path / "usb-Silicon_Labs_CP2102N-if00-port0"
    by_id.symlink_to(tty)
    assert port_in_use(str(by_id), ["/dev/ttyAMA0", str(tty)]) == str(tty)
    assert port_in_use(str(tty), ["/dev/ttyAMA0"]) is None
    assert port_key("socket://Stick.local:6638") == port_key("SOCKET://stick.local:6638 ")
    assert port_key("socket://stick.local:6638") != port_key("socket://stick.local:6639")
