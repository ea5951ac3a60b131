"""Diagnostics: what support needs to see, with keys, certificates and addresses redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant

from .const import CONF_CA_PEM, CONF_CERTIFICATE_PEM, CONF_ENDPOINT, CONF_PRIVATE_KEY_PEM, CONF_TAGS
from .coordinator import FractalNodeConfigEntry
from .device_runtime import NodeDevice
from .fractal.protocol import to_jsonable
from .meter_entities import MeterSource

# PEM text, key material and passwords never leave; the host / endpoint would identify a broker
# or an AWS account, a username (a Bright account's e-mail) a person, and tag values (a street,
# a feeder) where a home is.
TO_REDACT = {
    CONF_CA_PEM,
    CONF_CERTIFICATE_PEM,
    CONF_PRIVATE_KEY_PEM,
    CONF_HOST,
    CONF_ENDPOINT,
    CONF_PASSWORD,
    CONF_USERNAME,
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: FractalNodeConfigEntry
) -> dict[str, Any]:
    data = entry.runtime_data
    tags: dict[str, str] = entry.options.get(CONF_TAGS, {})
    certificate = data.certificate
    return {
        "entry": {
            "data": async_redact_data(entry.data, TO_REDACT),
            "options": {CONF_TAGS: async_redact_data(tags, set(tags))},
        },
        "certificate": None
        if certificate is None
        else {
            # Validity and issuer help with "why does it not connect"; the CN is the node id.
            "common_name": certificate.common_name,
            "issuer": certificate.issuer,
            "not_before": certificate.not_before.isoformat(),
            "not_after": certificate.not_after.isoformat(),
        },
        "state": _state(entry),
        "link": _link(entry),
        "devices": [_device(node_device) for node_device in data.devices.values()],
        "meters": [
            _meter(meter) for meter in data.meters.values() if isinstance(meter, MeterSource)
        ],
    }


def _state(entry: FractalNodeConfigEntry) -> dict[str, Any]:
    state = asdict(entry.runtime_data.runtime.state())
    state["link_reason"] = _without_address(entry, state["link_reason"])
    return state


def _link(entry: FractalNodeConfigEntry) -> dict[str, Any] | None:
    """The link's delivery and buffer (how far behind the node is), and the last plan answer."""
    node_link = entry.runtime_data.link
    if node_link is None:
        return None
    status = node_link.link.status
    return {
        "state": status.state.value,
        "reason": _without_address(entry, status.reason),
        "delivered_seq": status.delivered_seq,
        "buffer": asdict(status.buffer) if status.buffer else None,
        "plan_ack": to_jsonable(status.plan_ack) if status.plan_ack else None,
    }


def _without_address(entry: FractalNodeConfigEntry, text: str | None) -> str | None:
    """`text` with the broker's host or endpoint redacted (errors may name it)."""
    for key in (CONF_HOST, CONF_ENDPOINT):
        if text and (address := entry.data.get(key)):
            text = text.replace(address, REDACTED)
    return text


def _device(node_device: NodeDevice) -> dict[str, Any]:
    """A device's settings (address redacted), whether it answers, and its rejected readings."""
    availability = node_device.device.availability
    reason = availability.reason
    if reason and (host := node_device.subentry.data.get(CONF_HOST)):
        reason = reason.replace(host, REDACTED)  # the library names the gateway in its errors
    rejected = {
        name: reading.problem
        for coordinator in node_device.coordinators.values()
        for name, reading in (coordinator.data or {}).items()
        if reading.problem
    }
    return {
        "title": node_device.subentry.title,
        "data": async_redact_data(node_device.subentry.data, TO_REDACT),
        "available": availability.available,
        "reason": reason,
        "rejected_readings": rejected,
    }


def _meter(meter: MeterSource) -> dict[str, Any]:
    """A smart meter's settings (broker and login redacted), whether it is heard, why not, and
    its latest good values with the meter's timestamps."""
    state = meter.state()
    problem = meter.problem
    if problem and (host := meter.subentry.data.get(CONF_HOST)):
        problem = problem.replace(host, REDACTED)
    return {
        "title": meter.subentry.title,
        "type": meter.subentry.subentry_type,
        "data": async_redact_data(meter.subentry.data, TO_REDACT),
        "silent": state.silent,
        "problem": problem,
        "values": {
            quantity.value: {"value": value, "stamped": state.stamped[quantity].isoformat()}
            for quantity, value in state.values.items()
        },
    }
