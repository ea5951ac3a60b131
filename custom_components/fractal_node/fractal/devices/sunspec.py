"""SunSpec devices: found by the `SunS` marker, described by their model chain.

pymodbus does the I/O through the shared `Gateway`; pysunspec2's model definitions decode the
words (scale factors, not-implemented values, enumerations), so no map is needed. The chain of
models is contiguous, so the models polled together are read in as few blocks as 125-register
requests allow.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import sunspec2.device as sunspec_device  # type: ignore[import-untyped]

from .device import PolledDevice, Reading, WriteResult
from .errors import (
    DeviceException,
    ModbusDeviceError,
    ProtocolError,
    WriteNotVerified,
    WriteRefused,
)
from .gateway import Gateway
from .health import Availability, Health
from .planner import ReadBlock, plan_reads
from .regmap import Range, Table, Transport

MARKER = (0x5375, 0x6E53)  # "SunS"
BASE_ADDRESSES = (40000, 0, 50000)
END_OF_CHAIN = 0xFFFF
COMMON_MODEL = 1
MAX_MODELS = 64
TRANSPORT = Transport(max_registers_per_read=125, max_gap=0)
UNITS = {
    "W": "W",
    "Wh": "Wh",
    "WH": "Wh",
    "V": "V",
    "A": "A",
    "Hz": "Hz",
    "VA": "VA",
    "var": "var",
    "Var": "var",
    "Pct": "%",
    "C": "°C",
    "Secs": "s",
}
SKIPPED_TYPES = {"sunssf", "pad"}


class NotSunSpec(ModbusDeviceError):
    """No `SunS` marker at any of the usual base addresses."""


@dataclass(frozen=True)
class SunSpecModel:
    """A model in the chain: its id, name, and where its ID register sits."""

    model_id: int
    name: str
    address: int
    length: int  # the model's L: registers after the ID and L header

    @property
    def end(self) -> int:
        """First address after the model."""
        return self.address + 2 + self.length


@dataclass(frozen=True)
class _Word:
    """One holding register, so the planner can merge adjacent models into few reads."""

    address: int
    table: Table = Table.HOLDING
    words: int = 1

    @property
    def end(self) -> int:
        return self.address + 1


async def discover(
    gateway: Gateway, unit: int, bases: Iterable[int] = BASE_ADDRESSES
) -> list[SunSpecModel]:
    """Find the `SunS` marker and walk the model chain; raises NotSunSpec if there is none."""
    for base in bases:
        try:
            marker = await gateway.read(unit, _block(base, 2))
        except DeviceException as err:
            if err.code in (2, 3):  # nothing there: try the next base address
                continue
            raise
        if tuple(marker) == MARKER:
            return await _walk_chain(gateway, unit, base + 2)
    raise NotSunSpec(f"unit {unit} at {gateway.endpoint}: no SunSpec marker")


async def _walk_chain(gateway: Gateway, unit: int, address: int) -> list[SunSpecModel]:
    models: list[SunSpecModel] = []
    while len(models) < MAX_MODELS and address + 2 <= 0x10000:
        model_id, length = await gateway.read(unit, _block(address, 2))
        if model_id == END_OF_CHAIN:
            return models
        models.append(SunSpecModel(model_id, _model_name(model_id), address, length))
        address += 2 + length
    raise ProtocolError(f"unit {unit}: SunSpec chain has no end marker")


def _model_name(model_id: int) -> str:
    try:
        name: str = sunspec_device.get_model_def(model_id)["group"]["name"]
    except Exception:
        return f"model_{model_id}"
    return name.lower()


def _block(address: int, count: int) -> ReadBlock[_Word]:
    return ReadBlock(Table.HOLDING, address, count, ())


class SunSpecDevice:
    """A SunSpec device on a gateway: identity from model 1, the other models polled."""

    poll_groups: Mapping[str, float] = {"fast": 5.0}

    def __init__(
        self,
        gateway: Gateway,
        unit: int,
        models: list[SunSpecModel],
        *,
        envelope: Mapping[str, Range] | None = None,
        clock: Callable[[], float] = time.monotonic,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
    ) -> None:
        self.gateway = gateway
        self.unit = unit
        self.models = models
        self.envelope = dict(envelope or {})
        self.health = Health(str(self), clock, backoff_initial, backoff_max)

    def __str__(self) -> str:
        ids = ",".join(str(model.model_id) for model in self.models)
        return f"SunSpec [{ids}] (unit {self.unit} at {self.gateway.endpoint})"

    @property
    def availability(self) -> Availability:
        """Whether the device answers, since when, and why not."""
        return self.health.availability

    @cached_property
    def polled_models(self) -> list[SunSpecModel]:
        """Models with a public definition, other than the common model."""
        return [m for m in self.models if m.model_id != COMMON_MODEL and _known(m)]

    def plan(self, models: list[SunSpecModel]) -> list[ReadBlock[_Word]]:
        """Fewest reads covering `models` (whole models, headers included)."""
        words = [_Word(a) for model in models for a in range(model.address, model.end)]
        return plan_reads(words, TRANSPORT)

    async def read_identity(self) -> dict[str, Reading]:
        """Manufacturer, model, version and serial number from the common model."""
        common = [m for m in self.models if m.model_id == COMMON_MODEL]
        return await self._read(common)

    async def poll(self, group: str = "fast") -> dict[str, Reading]:
        """Read and decode every polled model; raises DeviceUnavailable if the device is down."""
        if group not in self.poll_groups:
            raise KeyError(f"{self}: no poll group {group!r}")
        return await self._read(self.polled_models)

    async def write(self, name: str, value: float) -> WriteResult:
        """Write a read-write point (e.g. ``storage_basic_wchamax``) within the installer's
        envelope, which SunSpec writes require; then read it back and verify it."""
        model, point_name = self._point(name)
        requested, target = self._within_envelope(name, value)
        decoded = _decoded(model, await self._model_words(model))
        point = decoded.points[point_name]
        if point.pdef.get("access") != "RW":
            raise WriteRefused(f"{self}: {name} is read-only")
        sf = _scale_factor(decoded, point, name)
        point.value = round(target / 10.0**sf)
        written = round(point.value * 10.0**sf, max(0, -sf))
        data = point.get_mb()
        words = list(struct.unpack(f">{len(data) // 2}H", data))
        await self.gateway.write_registers(self.unit, model.address + point.offset, words)
        read_back = _decoded(model, await self._model_words(model)).points[point_name].cvalue
        if read_back is None or not math.isclose(read_back, written, abs_tol=10.0**sf / 2):
            raise WriteNotVerified(f"{self}: wrote {written} to {name}, read back {read_back}")
        return WriteResult(name, requested, written, read_back, clamped=target != requested)

    def _within_envelope(self, name: str, value: float) -> tuple[float, float]:
        """(requested, target): SunSpec has no map ranges, so the installer's are required."""
        bounds = self.envelope.get(name)
        if bounds is None:
            raise WriteRefused(f"{self}: no safety envelope set for {name}")
        requested = float(value)
        if not math.isfinite(requested):
            raise WriteRefused(f"{self}: {value!r} is not a finite number for {name}")
        return requested, min(bounds.max, max(bounds.min, requested))

    def _point(self, name: str) -> tuple[SunSpecModel, str]:
        for model in self.polled_models:
            prefix = f"{model.name}_"
            if name.startswith(prefix):
                wanted = name[len(prefix) :]
                for point_name in sunspec_device.Model(model.model_id).points:
                    if point_name.lower() == wanted:
                        return model, point_name
        raise WriteRefused(f"{self}: no SunSpec point {name!r}")

    async def _model_words(self, model: SunSpecModel) -> list[int]:
        image = await self._image([model])
        return [image[address] for address in range(model.address, model.end)]

    async def _image(self, models: list[SunSpecModel]) -> dict[int, int]:
        self.health.check()
        image: dict[int, int] = {}
        try:
            for block in self.plan(models):
                words = await self.gateway.read(self.unit, block)
                image.update(zip(range(block.start, block.start + block.count), words, strict=True))
        except ModbusDeviceError as err:
            raise self.health.failed(err) from err
        self.health.succeeded()
        return image

    async def _read(self, models: list[SunSpecModel]) -> dict[str, Reading]:
        image = await self._image(models)
        readings: dict[str, Reading] = {}
        for model in models:
            words = [image[address] for address in range(model.address, model.end)]
            readings.update(decode_model(model, words))
        return readings


def _known(model: SunSpecModel) -> bool:
    return not model.name.startswith("model_")


def _scale_factor(decoded: Any, point: Any, name: str) -> int:
    """The point's power-of-ten scale: fixed in the model, or read from its SF point."""
    sf = point.pdef.get("sf")
    if sf is None:
        return 0
    if isinstance(sf, int) or str(sf).lstrip("-").isdigit():
        return int(sf)
    value = decoded.points[sf].value
    if value is None:
        raise WriteRefused(f"{name}: its scale factor {sf} is not implemented by the device")
    return int(value)


def _decoded(model: SunSpecModel, words: list[int]) -> Any:
    data = struct.pack(f">{len(words)}H", *words)
    return sunspec_device.Model(model.model_id, model.address, model.length, data=data)


def decode_model(model: SunSpecModel, words: list[int]) -> dict[str, Reading]:
    """Decode a model's words with pysunspec2 into readings named `<model>_<point>`."""
    decoded = _decoded(model, words)
    readings = {}
    for point_name, point in decoded.points.items():
        if point_name in ("ID", "L") or point.pdef["type"] in SKIPPED_TYPES:
            continue
        name = f"{model.name}_{point_name}".lower()
        readings[name] = _reading(name, point)
    return readings


def _reading(name: str, point: Any) -> Reading:
    unit = UNITS.get(point.pdef.get("units", ""))
    value = point.cvalue
    if value is None:
        return Reading(name, None, unit, "not implemented")
    if isinstance(value, float) and not math.isfinite(value):
        return Reading(name, None, unit, f"not a number ({value})")
    symbols = {s["value"]: s["name"] for s in point.pdef.get("symbols", [])}
    if point.pdef["type"].startswith("enum") and symbols:
        label = symbols.get(value)
        if label is None:
            return Reading(name, None, unit, f"unknown state code {value}")
        return Reading(name, label, unit)
    if isinstance(value, str):
        return Reading(name, value.strip("\x00 "), unit)
    return Reading(name, value, unit)


if TYPE_CHECKING:  # mypy checks that this kind of device serves the shell

    def _conforms(device: SunSpecDevice) -> PolledDevice:
        return device
