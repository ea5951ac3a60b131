"""Plan reads: cover a group's registers with the fewest requests the device allows.

Registers of one table are sorted and swept greedily: a block grows while the next value still
fits in `max_registers_per_read` from the block's aligned start and the hole before it is at
most `max_gap` registers (holes may be unmapped on the device, and reading them costs bytes).
For a fixed window length this greedy sweep is optimal: no plan covers the same values with
fewer requests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .regmap import Table, Transport


class Span(Protocol):
    """Anything that occupies registers: a map's Register, a SunSpec model's words."""

    @property
    def table(self) -> Table: ...
    @property
    def address(self) -> int: ...
    @property
    def words(self) -> int: ...
    @property
    def end(self) -> int: ...


@dataclass(frozen=True)
class ReadBlock[S: Span]:
    """One request: `count` registers (or coils) of `table` from `start`."""

    table: Table
    start: int
    count: int
    registers: tuple[S, ...] = field(repr=False)


def plan_reads[S: Span](registers: Iterable[S], transport: Transport) -> list[ReadBlock[S]]:
    """Merge registers into the fewest reads within the device's block size and alignment."""
    registers = list(registers)
    blocks: list[ReadBlock[S]] = []
    for table in Table:
        in_table = sorted((r for r in registers if r.table is table), key=lambda r: r.address)
        if in_table:
            blocks.extend(_sweep(table, in_table, transport))
    return blocks


def _align_down(address: int, alignment: int) -> int:
    return address - address % alignment


def _aligned_count(start: int, end: int, alignment: int) -> int:
    return math.ceil((end - start) / alignment) * alignment


def _sweep[S: Span](table: Table, ordered: Sequence[S], transport: Transport) -> list[ReadBlock[S]]:
    limit, alignment = _limit(table, transport), transport.alignment
    blocks: list[ReadBlock[S]] = []
    members: list[S] = []
    start = end = 0
    for register in ordered:
        fits = _aligned_count(start, max(end, register.end), alignment) <= limit
        if members and fits and register.address - end <= transport.max_gap:
            members.append(register)
            end = max(end, register.end)
            continue
        if members:
            blocks.append(_block(table, start, end, alignment, members))
        members, start, end = [register], _align_down(register.address, alignment), register.end
    blocks.append(_block(table, start, end, alignment, members))
    return blocks


def _limit(table: Table, transport: Transport) -> int:
    # Coils are bits: the protocol allows 2000 per read, register limits do not apply.
    return 2000 if table is Table.COIL else transport.max_registers_per_read


def _block[S: Span](
    table: Table, start: int, end: int, alignment: int, members: list[S]
) -> ReadBlock[S]:
    count = end - start if table is Table.COIL else _aligned_count(start, end, alignment)
    return ReadBlock(table, start, count, tuple(members))


def minimum_reads(registers: Iterable[Span], transport: Transport) -> int:
    """Lower bound on requests: per table, registers needed / max block, rounded up."""
    registers = list(registers)
    total = 0
    for table in Table:
        needed = sum(r.words for r in registers if r.table is table)
        total += math.ceil(needed / _limit(table, transport))
    return total
