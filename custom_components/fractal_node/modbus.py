"""Modbus devices of a node: from a subentry's data to library objects, and the connection test.

Both the "Add device" flow and set-up build devices here, so what the flow tested is exactly
what runs. Everything on the wire is done by the library (`fractal.devices`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from homeassistant.const import CONF_HOST, CONF_PORT

from .const import (
    CONF_BAUDRATE,
    CONF_CUSTOM_MAP,
    CONF_LIMITS,
    CONF_MODEL,
    CONF_PARITY,
    CONF_ROLE,
    CONF_SERIAL_PORT,
    CONF_STOPBITS,
    CONF_TRANSPORT,
    CONF_UNIT,
    MODEL_AUTO,
    MODEL_CUSTOM,
    MODEL_SUNSPEC,
    Role,
    Transport,
)
from .fractal.devices import (
    Device,
    DeviceException,
    DeviceTimeout,
    Gateway,
    GatewayUnavailable,
    ModbusDeviceError,
    PolledDevice,
    Range,
    Reading,
    RegisterMap,
    SerialEndpoint,
    SunSpecDevice,
    TcpEndpoint,
    detect,
    discover,
    load_shipped_map,
)
from .fractal.devices.regmap import IDENTITY_GROUP, parse_map
from .fractal.protocol import Device as DescribedDevice
from .fractal.protocol import DeviceEnvelope, DeviceKind
from .fractal.protocol.rules import MODES_BY_KIND

Endpoint = TcpEndpoint | SerialEndpoint
CUSTOM_MAP_SOURCE: Final = "custom map"
# Exception codes a gateway answers when nothing responds at the unit id behind it.
GATEWAY_TARGET_CODES: Final = frozenset({10, 11})


def endpoint_of(data: Mapping[str, Any]) -> Endpoint:
    """The gateway a device sits behind, from the flow's data."""
    transport = Transport(data[CONF_TRANSPORT])
    if transport is Transport.SERIAL:
        return SerialEndpoint(
            data[CONF_SERIAL_PORT],
            baudrate=int(data[CONF_BAUDRATE]),
            parity=data[CONF_PARITY],
            stopbits=int(data[CONF_STOPBITS]),
        )
    if transport is Transport.RTU_OVER_TCP:
        return TcpEndpoint(data[CONF_HOST], int(data[CONF_PORT]), "rtu")
    return TcpEndpoint(data[CONF_HOST], int(data[CONF_PORT]))


def device_unique_id(data: Mapping[str, Any]) -> str:
    """One device per (gateway address, unit id): framing and line settings do not count."""
    endpoint = endpoint_of(data)
    where = (
        endpoint.port
        if isinstance(endpoint, SerialEndpoint)
        else f"{endpoint.host}:{endpoint.port}"
    )
    return f"{where}/{data[CONF_UNIT]}"


def custom_map(text: str) -> RegisterMap:
    """Parse a pasted map; raises RegisterMapError naming line and field."""
    return parse_map(text, CUSTOM_MAP_SOURCE)


def register_map(data: Mapping[str, Any]) -> RegisterMap:
    """The map a stored (non-SunSpec) device is read with."""
    if data[CONF_MODEL] == MODEL_CUSTOM:
        return custom_map(data[CONF_CUSTOM_MAP])
    return load_shipped_map(data[CONF_MODEL])


def envelope_of(data: Mapping[str, Any]) -> dict[str, Range]:
    """The installer's limits as ranges of the set-point registers they protect.

    Names follow the generic maps (the plan executor's names) and SunSpec's storage model.
    The hydro's maximum rate of change is not a register range: the executor applies it.
    """
    role, limits = data.get(CONF_ROLE), data.get(CONF_LIMITS, {})
    if role == Role.BATTERY:
        power = Range(min=-limits["max_discharge_w"], max=limits["max_charge_w"])
        return {
            "power_setpoint": power,
            "min_soc": Range(min=limits["soc_min"], max=limits["soc_max"]),
            "storage_basic_wchamax": Range(min=0, max=limits["max_charge_w"]),
        }
    if role == Role.EV_CHARGER:
        current = Range(min=limits["ev_current_min"], max=limits["ev_current_max"])
        return {"charge_current_setpoint": current}
    if role == Role.HYDRO:
        level = Range(min=limits["river_level_min"], max=limits["river_level_max"])
        return {"river_level_setpoint": level}
    return {}


async def build_device(gateway: Gateway, data: Mapping[str, Any]) -> PolledDevice:
    """The library device for a stored subentry (SunSpec models are discovered again)."""
    unit, envelope = int(data[CONF_UNIT]), envelope_of(data)
    if data[CONF_MODEL] == MODEL_SUNSPEC:
        return SunSpecDevice(gateway, unit, await discover(gateway, unit), envelope=envelope)
    return Device(gateway, unit, register_map(data), envelope=envelope)


# The protocol's names for the installer's limits (the flow's field names are shorter).
ENVELOPE_NAMES: Final = {
    "max_charge_w": "max_charge_w",
    "max_discharge_w": "max_discharge_w",
    "soc_min": "soc_min_pct",
    "soc_max": "soc_max_pct",
    "ev_current_min": "ev_current_min_a",
    "ev_current_max": "ev_current_max_a",
    "river_level_min": "level_min_m",
    "river_level_max": "level_max_m",
    "river_level_max_rate": "level_rate_max_m_per_h",
    "heater_power_w": "power_max_w",
}
KIND_OF_ROLE: Final = {
    Role.GRID_METER: DeviceKind.GRID_METER,
    Role.PV_METER: DeviceKind.PV,
    Role.PV_INVERTER: DeviceKind.PV_INVERTER,
    Role.BATTERY: DeviceKind.BATTERY,
    Role.EV_CHARGER: DeviceKind.EV_CHARGER,
    Role.HYDRO: DeviceKind.HYDRO,
    Role.SUB_METER: DeviceKind.SUB_METER,
    Role.IMMERSION: DeviceKind.IMMERSION,
}


def described_device(device_id: str, data: Mapping[str, Any]) -> DescribedDevice:
    """The device as the node descriptor tells the aggregator: kind, model, the modes it
    accepts (every mode the protocol allows its kind: the executor carries them all out) and
    its envelope."""
    limits = data.get(CONF_LIMITS, {})
    envelope = DeviceEnvelope(**{ENVELOPE_NAMES[name]: value for name, value in limits.items()})
    manufacturer = model = None
    if data[CONF_MODEL] != MODEL_SUNSPEC:
        regmap = register_map(data)
        manufacturer, model = regmap.manufacturer[:64], regmap.model[:64]
    kind = KIND_OF_ROLE[Role(data[CONF_ROLE])]
    return DescribedDevice(
        id=device_id,
        kind=kind,
        capabilities=tuple(sorted(MODES_BY_KIND[kind])),
        manufacturer=manufacturer,
        model=model,
        envelope=envelope,
    )


@dataclass(frozen=True)
class Identified:
    """What the connection test found: the model to store and how to show the device."""

    model: str
    title: str
    alternatives: list[str] = field(default_factory=list)


class ProbeFailed(Exception):
    """The connection test failed; `error` is the form's error code, `detail` the reason."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error
        self.detail = detail


async def identify(
    gateway: Gateway, unit: int, model: str, regmap: RegisterMap | None = None
) -> Identified:
    """Read the identity and one of every poll group; raises ProbeFailed saying what is wrong."""
    try:
        if model == MODEL_AUTO:
            return await _detected(gateway, unit)
        regmap = regmap or load_shipped_map(model)
        return Identified(model, await _checked_map_identity(gateway, unit, regmap))
    except ModbusDeviceError as err:
        raise _probe_failure(err) from err


async def _detected(gateway: Gateway, unit: int) -> Identified:
    found = await detect(gateway, unit)
    if found.sunspec:
        device = SunSpecDevice(gateway, unit, found.sunspec)
        return Identified(MODEL_SUNSPEC, _sunspec_title(await device.read_identity()))
    if not found.maps:
        raise ProbeFailed("not_detected", f"unit {unit} at {gateway.endpoint}")
    best, *others = found.maps
    regmap = load_shipped_map(best)
    return Identified(best, await _checked_map_identity(gateway, unit, regmap), others)


async def _checked_map_identity(gateway: Gateway, unit: int, regmap: RegisterMap) -> str:
    """Read every group once (without availability bookkeeping); garbage means wrong model."""
    device = Device(gateway, unit, regmap)
    identity = await device.read_group(IDENTITY_GROUP)
    readings = dict(identity)
    for group in regmap.poll_groups:
        readings.update(await device.read_group(group))
    if problems := [f"{r.name}: {r.problem}" for r in readings.values() if r.problem]:
        raise ProbeFailed("implausible", "; ".join(problems))
    return _title(f"{regmap.manufacturer} {regmap.model}", identity.get("serial_number"))


def _sunspec_title(identity: Mapping[str, Reading]) -> str:
    names = [identity[key].value for key in ("common_mn", "common_md") if key in identity]
    return _title(
        " ".join(str(name) for name in names if name) or "SunSpec device", identity.get("common_sn")
    )


def _title(model: str, serial: Reading | None) -> str:
    if serial is None or serial.value in (None, ""):
        return model
    return f"{model}, serial {serial.value}"


def _probe_failure(err: ModbusDeviceError) -> ProbeFailed:
    if isinstance(err, GatewayUnavailable):
        return ProbeFailed("cannot_connect", str(err))
    if isinstance(err, DeviceTimeout):
        return ProbeFailed("timeout", str(err))
    if isinstance(err, DeviceException) and err.code in GATEWAY_TARGET_CODES:
        return ProbeFailed("wrong_unit", str(err))
    # An exception code (e.g. 2, illegal data address) or a malformed answer: the unit answers,
    # but not with this model's registers.
    return ProbeFailed("wrong_model", str(err))
