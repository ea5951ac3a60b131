"""Glow CAD messages (recorded format, tests/support/glow_messages.py) read as meter readings."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from fractal.meters import Quantity
from fractal.meters.glow import GlowMessageError, parse_message, topics

from tests.support import glow_messages as glow


def test_electricity_message_in_protocol_units() -> None:
    parsed = parse_message(glow.electricity_topic(), glow.electricity("2023-01-07T23:24:14Z"))

    assert parsed is not None
    assert parsed.device_id == glow.DEVICE_ID
    assert parsed.device is None
    assert parsed.reading.timestamp == datetime(2023, 1, 7, 23, 24, 14, tzinfo=UTC)
    assert parsed.reading.values() == {
        Quantity.POWER: 623.0,  # kW -> W
        Quantity.IMPORT_ENERGY: 4_595_563.0,  # kWh -> Wh, no float noise
        Quantity.EXPORT_ENERGY: 12_500.0,
        Quantity.UNIT_RATE: 30.0,  # £/kWh -> p/kWh
        Quantity.STANDING_CHARGE: 44.57,  # £/day -> p/day
    }


def test_export_is_negative_power() -> None:
    parsed = parse_message(
        glow.electricity_topic(), glow.electricity("2023-01-07T12:00:00Z", power_kw=-1.25)
    )
    assert parsed is not None
    assert parsed.reading.power_w == -1250.0


def test_gas_message_has_energy_volume_and_prices() -> None:
    parsed = parse_message(glow.gas_topic(), glow.gas("2023-01-07T23:24:10Z"))

    assert parsed is not None
    assert parsed.reading.values() == {
        Quantity.GAS_ENERGY: 7_063_546.0,
        Quantity.GAS_VOLUME: 629.514,
        Quantity.GAS_UNIT_RATE: 10.24,
        Quantity.GAS_STANDING_CHARGE: 26.84,
    }


def test_state_message_describes_the_cad_and_its_link() -> None:
    parsed = parse_message(glow.state_topic(), glow.state("2023-01-07T23:24:15Z"))

    assert parsed is not None
    assert parsed.reading.values() == {
        Quantity.SIGNAL_STRENGTH: -47.0,
        Quantity.LINK_QUALITY: 212.0,
        Quantity.LINK_STATUS: "joined",
    }
    assert parsed.device is not None
    assert parsed.device.device_id == glow.DEVICE_ID
    assert parsed.device.hardware == "GLOW-IHD-01-1v4-SMETS2"
    assert parsed.device.software == "v1.8.13"
    assert parsed.device.smets_version == "SMETS2"
    assert parsed.device.mac == glow.DEVICE_ID


def test_missing_parts_are_none_not_errors() -> None:
    payload = json.dumps({"electricitymeter": {"timestamp": "2023-01-07T23:24:14Z"}})
    parsed = parse_message(glow.electricity_topic(), payload)
    assert parsed is not None
    assert parsed.reading.values() == {}


@pytest.mark.parametrize(
    "topic",
    ["glow/ABC/SENSOR/other", "other/ABC/STATE", "glow//STATE", "glow/ABC", "glow/ABC/SENSOR"],
)
def test_topics_without_readings_are_skipped(topic: str) -> None:
    assert parse_message(topic, b"not even json") is None


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"gasmeter": {}}', "no 'electricitymeter' object"),
        (b'{"electricitymeter": {"timestamp": "yesterday"}}', "timestamp"),
        (b'{"electricitymeter": {"timestamp": "2023-01-07T23:24:14"}}', "with a zone"),
        (
            b'{"electricitymeter": {"timestamp": "2023-01-07T23:24:14Z", "power": 5}}',
            "not an object",
        ),
        (
            b'{"electricitymeter": {"timestamp": "2023-01-07T23:24:14Z",'
            b' "power": {"value": "1.2", "units": "kW"}}}',
            "not a number",
        ),
        (
            b'{"electricitymeter": {"timestamp": "2023-01-07T23:24:14Z",'
            b' "power": {"value": true, "units": "kW"}}}',
            "not a number",
        ),
        (
            b'{"electricitymeter": {"timestamp": "2023-01-07T23:24:14Z",'
            b' "power": {"value": 1.2, "units": "MW"}}}',
            "unknown units 'MW'",
        ),
    ],
)
def test_bad_messages_say_what_is_wrong(payload: bytes, problem: str) -> None:
    with pytest.raises(GlowMessageError, match=problem):
        parse_message(glow.electricity_topic(), payload)


def test_bad_link_status_is_refused() -> None:
    payload = json.dumps({"timestamp": "2023-01-07T23:24:15Z", "han": {"status": 3}})
    with pytest.raises(GlowMessageError, match=r"han\.status"):
        parse_message(glow.state_topic(), payload)


def test_one_cads_subscription() -> None:
    assert topics("ABC123") == "glow/ABC123/#"
