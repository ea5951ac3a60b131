"""Read planning: the fewest requests within each device's block size, alignment and gaps."""

from __future__ import annotations

import functools

from fractal.devices.planner import minimum_reads, plan_reads
from fractal.devices.regmap import Register, Table, Transport, load_shipped_map
from hypothesis import given, settings
from hypothesis import strategies as st


def reg(address: int, kind: str = "u16", table: str = "holding") -> Register:
    return Register.model_validate(
        {"name": f"r{address}", "table": table, "address": address, "type": kind, "group": "g"}
    )


def test_contiguous_registers_become_one_read() -> None:
    blocks = plan_reads([reg(0), reg(1), reg(2, "u32"), reg(4)], Transport())
    assert [(b.start, b.count) for b in blocks] == [(0, 5)]


def test_block_size_limit_splits_reads() -> None:
    registers = [reg(a, "float32", "input") for a in range(0, 200, 2)]
    blocks = plan_reads(registers, Transport(max_registers_per_read=80, alignment=2))
    assert [(b.start, b.count) for b in blocks] == [(0, 80), (80, 80), (160, 40)]


def test_holes_are_not_read_unless_the_map_allows_it() -> None:
    blocks = plan_reads([reg(0), reg(2)], Transport())
    assert [(b.start, b.count) for b in blocks] == [(0, 1), (2, 1)]


def test_gap_larger_than_allowed_starts_a_new_read() -> None:
    blocks = plan_reads([reg(0), reg(10), reg(30)], Transport(max_gap=9))
    assert [(b.start, b.count) for b in blocks] == [(0, 11), (30, 1)]


def test_alignment_moves_start_down_and_rounds_count_up() -> None:
    blocks = plan_reads([reg(3), reg(7)], Transport(alignment=2, max_gap=4))
    assert [(b.start, b.count) for b in blocks] == [(2, 6)]


def test_tables_are_never_mixed() -> None:
    registers = [reg(0, table="input"), reg(1), reg(2, table="input")]
    blocks = plan_reads(registers, Transport(max_gap=1))
    assert sorted((b.table, b.start, b.count) for b in blocks) == [
        (Table.HOLDING, 1, 1),
        (Table.INPUT, 0, 3),
    ]


def test_sdm630_fast_group_is_one_read_and_energy_two() -> None:
    regmap = load_shipped_map("eastron_sdm630")
    fast = plan_reads(regmap.group("fast"), regmap.transport)
    energy = plan_reads(regmap.group("energy"), regmap.transport)
    assert [(b.start, b.count) for b in fast] == [(0, 72)]
    assert [(b.start, b.count) for b in energy] == [(0x48, 4), (0x156, 2)]


def fewest_reads(registers: list[Register], transport: Transport) -> int:
    """Independent oracle: dynamic programming over every split of the sorted registers."""
    ordered = sorted(registers, key=lambda r: r.address)
    align = transport.alignment

    def fits(first: int, last: int) -> bool:
        members = ordered[first : last + 1]
        start = members[0].address - members[0].address % align
        end = max(r.end for r in members)
        span = -(-(end - start) // align) * align
        ends = [max(r.end for r in members[: i + 1]) for i in range(len(members))]
        gaps_ok = all(
            m.address - e <= transport.max_gap for m, e in zip(members[1:], ends, strict=False)
        )
        return span <= transport.max_registers_per_read and gaps_ok

    @functools.cache
    def best(first: int) -> int:
        if first == len(ordered):
            return 0
        options = [1 + best(last + 1) for last in range(first, len(ordered)) if fits(first, last)]
        return min(options)

    return best(0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 400), st.sampled_from(["u16", "u32"])), max_size=25),
    st.integers(4, 40),
    st.sampled_from([1, 2]),
    st.integers(0, 20),
)
def test_plan_covers_everything_with_the_fewest_reads(
    specs: list[tuple[int, str]], block: int, alignment: int, max_gap: int
) -> None:
    registers, taken = [], set()
    for address, kind in specs:
        words = range(address, address + (2 if kind == "u32" else 1))
        if not taken.intersection(words):
            taken.update(words)
            registers.append(reg(address, kind))
    transport = Transport(max_registers_per_read=block, alignment=alignment, max_gap=max_gap)
    blocks = plan_reads(registers, transport)
    for block_ in blocks:
        assert block_.count <= block
        assert block_.start % alignment == 0
        assert block_.count % alignment == 0
        for member in block_.registers:
            assert block_.start <= member.address
            assert member.end <= block_.start + block_.count
    covered = sorted(r.address for b in blocks for r in b.registers)
    assert covered == sorted(r.address for r in registers)
    assert len(blocks) == fewest_reads(registers, transport)
    assert len(blocks) >= minimum_reads(registers, transport)
