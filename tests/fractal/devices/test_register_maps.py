"""The register-map format: shipped maps load, and every error names file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from fractal.devices.regmap import (
    MapIssue,
    RegisterMapError,
    Table,
    load_map,
    load_shipped_map,
    parse_map,
    shipped_map_names,
)
from hypothesis import given, settings
from hypothesis import strategies as st

VALID = """\
version: 1
manufacturer: Acme
model: M1
poll_groups:
  fast: 5
registers:
  - name: power
    table: input
    address: 0
    type: float32
    unit: W
    group: fast
  - name: setpoint
    table: holding
    address: 10
    type: u16
    scale: 0.1
    unit: A
    group: fast
    writable: {min: 6, max: 32}
"""


def issues(text: str) -> list[str]:
    with pytest.raises(RegisterMapError) as caught:
        parse_map(text, "site.yaml")
    return [str(issue) for issue in caught.value.issues]


def test_shipped_maps_are_the_ones_the_issue_asks_for() -> None:
    assert shipped_map_names() == [
        "eastron_sdm230",
        "eastron_sdm630",
        "generic_battery",
        "generic_evse",
        "generic_hydro",
        "generic_immersion",
    ]


@pytest.mark.parametrize("name", shipped_map_names())
def test_every_shipped_map_validates_and_uses_protocol_units(name: str) -> None:
    regmap = load_shipped_map(name)
    units = {register.unit for register in regmap.registers} - {None}
    assert "kWh" not in units  # energy is Wh on the protocol, scaled in the map
    assert regmap.poll_groups


def test_eastron_maps_follow_the_public_document() -> None:
    for name in ("eastron_sdm230", "eastron_sdm630"):
        regmap = load_shipped_map(name)
        assert regmap.transport.max_registers_per_read == 80
        assert regmap.transport.alignment == 2
        serial = regmap.by_name["serial_number"]
        assert (serial.table, serial.address, serial.group) == (Table.HOLDING, 0xFC00, "identity")
        measured = [r for r in regmap.registers if r.group != "identity"]
        assert all(r.table is Table.INPUT and r.type == "float32" for r in measured)
        assert regmap.by_name["energy_import"].scale == 1000  # kWh on the wire


def test_evse_set_point_range_is_6_to_32_amps() -> None:
    setpoint = load_shipped_map("generic_evse").by_name["charge_current_setpoint"]
    assert setpoint.writable is not None
    assert (setpoint.writable.min, setpoint.writable.max, setpoint.unit) == (6, 32, "A")


def test_valid_map_parses_with_hex_addresses_and_defaults() -> None:
    regmap = parse_map(VALID.replace("address: 10", "address: 0x0A"), "site.yaml")
    assert regmap.by_name["setpoint"].address == 10
    assert regmap.transport.word_order == "big"


def test_wrong_type_names_file_line_and_field() -> None:
    assert issues(VALID.replace("type: float32", "type: float")) == [
        "site.yaml:10: registers[0].type: Input should be 'u16', 's16', 'u32', 's32', "
        "'float32', 'string' or 'bool'"
    ]


def test_every_error_is_reported_not_just_the_first() -> None:
    text = VALID.replace("table: input", "table: inputs").replace("unit: A", "unit: amps")
    found = issues(text)
    assert len(found) == 2
    assert found[0].startswith("site.yaml:8: registers[0].table:")
    assert found[1].startswith("site.yaml:18: registers[1].unit:")


def test_unknown_field_is_named_at_its_line() -> None:
    first_group = "    group: fast\n  - name: setpoint"
    misspelt = VALID.replace(first_group, first_group.replace("group", "grup"))
    found = issues(misspelt)
    assert "site.yaml:12: registers[0].grup: Extra inputs are not permitted" in found
    assert "site.yaml:7: registers[0].group: Field required" in found


def test_consistency_errors_name_the_field() -> None:
    assert issues(VALID.replace("group: fast\n    writable", "group: slow\n    writable")) == [
        "site.yaml:19: registers[1].group: unknown poll group (known: fast, identity)"
    ]
    # The same address in different tables is fine; in one table it is an overlap.
    parse_map(VALID.replace("address: 10", "address: 1"), "site.yaml")
    overlap = VALID.replace("table: holding", "table: input").replace("address: 10", "address: 1")
    found = issues(overlap)
    assert any(f.startswith("site.yaml:15: registers[1].address: overlaps 'power'") for f in found)
    assert any("registers[1].writable: input registers are read-only" in f for f in found)


def test_string_needs_a_length_and_coils_are_bool() -> None:
    found = issues(VALID.replace("type: float32", "type: string"))
    assert found == [
        # a missing field is reported at the line where its entry starts
        "site.yaml:7: registers[0].length: strings need a length in registers; "
        "other types must not have one"
    ]
    found = issues(VALID.replace("table: holding", "table: coil"))
    assert found == [
        "site.yaml:16: registers[1].type: coils are type bool, and bool is only for coils"
    ]


def test_yaml_syntax_and_duplicate_keys_name_the_line() -> None:
    assert issues(VALID.replace("  fast: 5", "  fast: 5\n  fast: 10")) == [
        "site.yaml:6: (yaml): duplicate key 'fast'"
    ]
    found = issues(VALID.replace("model: M1", "model: [M1"))
    assert found == [
        "site.yaml:4: (yaml): did not find expected ',' or ']' "
        "(while parsing a flow sequence started at line 3)"
    ]


def test_custom_map_from_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "osney_plc.yaml"
    path.write_text(VALID.replace("version: 1", "version: 2"), encoding="utf-8")
    with pytest.raises(RegisterMapError, match=r"^osney_plc\.yaml:1: version: Input should be 1"):
        load_map(path)


def test_writable_range_must_fit_the_register_type() -> None:
    negative = VALID.replace("writable: {min: 6, max: 32}", "writable: {min: -5, max: 32}")
    assert issues(negative) == [
        "site.yaml:20: registers[1].writable.min: does not fit u16 with scale 0.1"
    ]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_mangled_map_gives_located_errors_never_a_crash(data: st.DataObject) -> None:
    lines = VALID.splitlines()
    index = data.draw(st.integers(0, len(lines) - 1))
    replacement = data.draw(st.text(alphabet="abc:- {}[]0x1'\"\t#&*!|>", max_size=12))
    mangled = "\n".join([*lines[:index], replacement, *lines[index + 1 :]])
    for issue in issues_or_none(mangled):
        assert str(issue).startswith("site.yaml:")
        assert 1 <= issue.line <= len(lines) + 1


def issues_or_none(text: str) -> list[MapIssue]:
    """The issues of an invalid map, [] for a valid one; any other exception fails the test."""
    try:
        parse_map(text, "site.yaml")
    except RegisterMapError as err:
        return err.issues
    return []
