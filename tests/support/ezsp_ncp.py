"""A small EZSP network co-processor (an EFR32 stick's firmware) on a TCP socket.

It speaks ASH, the UART framing of Silicon Labs' EZSP (UG101), written here from the
specification and not borrowed from bellows, so bellows is tested against the wire: byte
stuffing, the CRC-CCITT, the data randomisation, RST -> RSTACK, DATA frames acknowledged,
and the `version` command answered (legacy EZSP v4 framing first, then the extended framing of
the version it announces). That is bellows' link handshake; nothing beyond it is emulated.
Like zigbeed (the "socket://" coordinators), it can announce a reset as soon as a client
connects.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
from dataclasses import dataclass, field

FLAG, ESCAPE, CANCEL = 0x7E, 0x7D, 0x1A
RESERVED = frozenset({0x7E, 0x7D, 0x11, 0x13, 0x18, 0x1A})
RST, RSTACK = 0xC0, 0xC1
ASH_VERSION, RESET_SOFTWARE = 0x02, 0x0B
VERSION_COMMAND = 0x0000
STACK_TYPE_MESH = 2


def crc(data: bytes) -> bytes:
    return binascii.crc_hqx(data, 0xFFFF).to_bytes(2, "big")


def stuff(data: bytes) -> bytes:
    out = bytearray()
    for byte in data:
        if byte in RESERVED:
            out += bytes([ESCAPE, byte ^ 0x20])
        else:
            out.append(byte)
    return bytes(out)


def unstuff(data: bytes) -> bytes:
    out, escaped = bytearray(), False
    for byte in data:
        if escaped:
            out.append(byte ^ 0x20)
            escaped = False
        elif byte == ESCAPE:
            escaped = True
        else:
            out.append(byte)
    return bytes(out)


def randomise(data: bytes) -> bytes:
    """XOR with the ASH pseudo-random sequence (seed 0x42); its own inverse."""
    out, rand = bytearray(), 0x42
    for byte in data:
        out.append(byte ^ rand)
        rand = (rand >> 1) ^ 0xB8 if rand & 1 else rand >> 1
    return bytes(out)


def frame(control: int, body: bytes = b"") -> bytes:
    raw = bytes([control]) + body
    return stuff(raw + crc(raw)) + bytes([FLAG])


@dataclass
class EzspNcp:
    """The NCP: `protocol_version` is the EZSP version its firmware speaks."""

    protocol_version: int = 8
    stack_version: int = 0x6A00  # EmberZNet 6.10.0
    reset_on_connect: bool = True
    commands: list[tuple[int, int]] = field(default_factory=list)  # (EZSP version, frame id)
    bad_frames: int = 0  # frames whose CRC did not match
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(self, writer)
        if self.reset_on_connect:
            link.send_rstack()
        buffer = bytearray()
        try:
            while chunk := await reader.read(256):
                buffer += chunk
                while FLAG in buffer:
                    end = buffer.index(FLAG)
                    raw = bytes(buffer[:end])
                    del buffer[: end + 1]
                    if CANCEL in raw:
                        raw = raw[raw.rindex(CANCEL) + 1 :]
                    if raw:
                        link.received(unstuff(raw))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


class _Link:
    """One client's ASH session."""

    def __init__(self, ncp: EzspNcp, writer: asyncio.StreamWriter) -> None:
        self.ncp = ncp
        self.writer = writer
        self.sent = 0  # our next frame number
        self.expected = 0  # the host's next frame number
        self.ezsp_version = 4  # every host starts with the legacy framing

    def send_rstack(self) -> None:
        self.writer.write(frame(RSTACK, bytes([ASH_VERSION, RESET_SOFTWARE])))

    def received(self, raw: bytes) -> None:
        if len(raw) < 3 or crc(raw[:-2]) != raw[-2:]:
            self.ncp.bad_frames += 1
            return
        control, body = raw[0], raw[1:-2]
        if control == RST:
            self.sent = self.expected = 0
            self.ezsp_version = 4
            self.send_rstack()
        elif control & 0x80 == 0:  # DATA
            frame_number = (control >> 4) & 0x07
            if frame_number == self.expected:
                self.expected = (self.expected + 1) % 8
                self.writer.write(frame(0x80 | self.expected))  # ACK
                self._ezsp(randomise(body))
        # ACK and NAK frames from the host need no answer here.

    def _ezsp(self, request: bytes) -> None:
        seq, legacy = request[0], self.ezsp_version < 8
        frame_id = request[2] if legacy else int.from_bytes(request[3:5], "little")
        self.ncp.commands.append((self.ezsp_version, frame_id))
        if frame_id != VERSION_COMMAND:
            return  # beyond the handshake: never answered (bellows times out)
        answer = bytes([self.ncp.protocol_version, STACK_TYPE_MESH])
        answer += self.ncp.stack_version.to_bytes(2, "little")
        self._reply(seq, frame_id, answer, legacy=legacy)
        # The host now speaks the version we announced (in its framing from EZSP v8 on).
        self.ezsp_version = self.ncp.protocol_version

    def _reply(self, seq: int, frame_id: int, params: bytes, *, legacy: bool) -> None:
        if legacy:
            ezsp = bytes([seq, 0x80, frame_id]) + params
        else:
            ezsp = bytes([seq, 0x80, 0x01]) + frame_id.to_bytes(2, "little") + params
        control = (self.sent << 4) | self.expected
        self.sent = (self.sent + 1) % 8
        self.writer.write(frame(control, randomise(ezsp)))
