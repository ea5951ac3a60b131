"""Hildebrand Glow CAD messages (local MQTT) as meter readings.

The CAD publishes, about every 10 s, to the broker the householder gave it:

* ``glow/<device id>/SENSOR/electricitymeter``: ``{"electricitymeter": {"timestamp": ...,
  "energy": {"export": {"cumulative", "units"}, "import": {"cumulative", "day", "week",
  "month", "units", "mpan", "supplier", "price": {"unitrate", "standingcharge"}}},
  "power": {"value", "units"}}}`` - energy in kWh, power in kW (negative: export), prices in
  pounds per kWh and per day.
* ``glow/<device id>/SENSOR/gasmeter``: the same ``energy.import`` plus ``cumulativevol`` and
  ``cumulativevolunits`` (m3); the gas meter updates the CAD every 30 minutes.
* ``glow/<device id>/STATE``: ``{"software", "timestamp", "hardware", "wifistamac",
  "smetsversion", "eui", "zigbee", "han": {"rssi", "status", "lqi"}}``.

Fields the CAD leaves out are None; a message that is not JSON, not an object, has no valid
timestamp, or carries a number of the wrong type or unknown unit raises `GlowMessageError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from .reading import MeterReading

GLOW_TOPIC_ROOT: Final = "glow"
SUBSCRIPTION: Final = "glow/+/#"  # every CAD on the broker: STATE and SENSOR messages
STATE_SUBSCRIPTION: Final = "glow/+/STATE"  # what discovery listens to
ELECTRICITY: Final = "electricitymeter"
GAS: Final = "gasmeter"

_ENERGY_TO_WH: Final = {"kWh": 1000.0, "Wh": 1.0}
_POWER_TO_W: Final = {"kW": 1000.0, "W": 1.0}
_VOLUME_TO_M3: Final = {"m3": 1.0, "m³": 1.0}
_POUNDS_TO_PENCE: Final = 100.0


class GlowMessageError(ValueError):
    """A Glow message that cannot be read; the message says what is wrong with it."""


@dataclass(frozen=True)
class GlowDevice:
    """A CAD as its STATE message describes it (discovery and device info)."""

    device_id: str
    hardware: str | None
    software: str | None
    smets_version: str | None
    mac: str | None


@dataclass(frozen=True)
class GlowMessage:
    device_id: str
    reading: MeterReading
    device: GlowDevice | None = None  # set for STATE messages


def topics(device_id: str) -> str:
    """The subscription for one CAD's messages."""
    return f"{GLOW_TOPIC_ROOT}/{device_id}/#"


def parse_message(topic: str, payload: bytes | str) -> GlowMessage | None:
    """The reading in a message of a Glow topic; None for topics that carry no reading."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != GLOW_TOPIC_ROOT or not parts[1]:
        return None
    device_id = parts[1]
    kind = "/".join(parts[2:])
    if kind not in ("STATE", f"SENSOR/{ELECTRICITY}", f"SENSOR/{GAS}"):
        return None
    document = _json_object(payload)
    if kind == "STATE":
        return GlowMessage(device_id, _state_reading(document), _device(device_id, document))
    meter = _object(document, kind.removeprefix("SENSOR/"))
    if kind == f"SENSOR/{ELECTRICITY}":
        return GlowMessage(device_id, _electricity_reading(meter))
    return GlowMessage(device_id, _gas_reading(meter))


def _electricity_reading(meter: dict[str, Any]) -> MeterReading:
    energy = _optional_object(meter, "energy")
    imported = _optional_object(energy, "import")
    exported = _optional_object(energy, "export")
    price = _optional_object(imported, "price")
    power = _optional_object(meter, "power")
    return MeterReading(
        timestamp=_timestamp(meter),
        power_w=_scaled(power, "value", _POWER_TO_W),
        import_energy_wh=_scaled(imported, "cumulative", _ENERGY_TO_WH),
        export_energy_wh=_scaled(exported, "cumulative", _ENERGY_TO_WH),
        unit_rate_p_per_kwh=_pence(price, "unitrate"),
        standing_charge_p_per_day=_pence(price, "standingcharge"),
    )


def _gas_reading(meter: dict[str, Any]) -> MeterReading:
    imported = _optional_object(_optional_object(meter, "energy"), "import")
    price = _optional_object(imported, "price")
    return MeterReading(
        timestamp=_timestamp(meter),
        gas_energy_wh=_scaled(imported, "cumulative", _ENERGY_TO_WH),
        gas_volume_m3=_scaled(imported, "cumulativevol", _VOLUME_TO_M3, "cumulativevolunits"),
        gas_unit_rate_p_per_kwh=_pence(price, "unitrate"),
        gas_standing_charge_p_per_day=_pence(price, "standingcharge"),
    )


def _state_reading(document: dict[str, Any]) -> MeterReading:
    han = _optional_object(document, "han")
    status = han.get("status")
    if status is not None and not isinstance(status, str):
        raise GlowMessageError(f"han.status is {status!r}, not text")
    return MeterReading(
        timestamp=_timestamp(document),
        signal_strength_dbm=_number(han, "rssi"),
        link_quality=_number(han, "lqi"),
        link_status=status,
    )


def _device(device_id: str, document: dict[str, Any]) -> GlowDevice:
    def text(key: str) -> str | None:
        value = document.get(key)
        return value if isinstance(value, str) else None

    return GlowDevice(
        device_id=device_id,
        hardware=text("hardware"),
        software=text("software"),
        smets_version=text("smetsversion"),
        mac=text("wifistamac"),
    )


def _json_object(payload: bytes | str) -> dict[str, Any]:
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GlowMessageError(f"not JSON: {error}") from error
    if not isinstance(document, dict):
        raise GlowMessageError("not a JSON object")
    return document


def _object(document: dict[str, Any], key: str) -> dict[str, Any]:
    value = document.get(key)
    if not isinstance(value, dict):
        raise GlowMessageError(f"no {key!r} object")
    return value


def _optional_object(document: dict[str, Any], key: str) -> dict[str, Any]:
    value = document.get(key, {})
    if not isinstance(value, dict):
        raise GlowMessageError(f"{key!r} is {value!r}, not an object")
    return value


def _timestamp(document: dict[str, Any]) -> datetime:
    text = document.get("timestamp")
    try:
        stamp = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        raise GlowMessageError(f"timestamp {text!r} is not an ISO-8601 time with a zone")
    return stamp


def _number(document: dict[str, Any], key: str) -> float | None:
    value = document.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GlowMessageError(f"{key} is {value!r}, not a number")
    return float(value)


def _scaled(
    document: dict[str, Any], key: str, units: dict[str, float], units_key: str = "units"
) -> float | None:
    value = _number(document, key)
    if value is None:
        return None
    unit = document.get(units_key)
    if unit not in units:
        raise GlowMessageError(f"{key} in unknown units {unit!r} (expected one of {list(units)})")
    return round(value * units[unit], 6)  # kWh to Wh without float noise (4595.563 kWh)


def _pence(document: dict[str, Any], key: str) -> float | None:
    value = _number(document, key)
    return None if value is None else round(value * _POUNDS_TO_PENCE, 6)
