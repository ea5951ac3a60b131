"""Auto-detection: what answers at a unit id, for the installer's "Add device" step.

SunSpec devices identify themselves (the `SunS` marker and model chain). Other devices do not,
so each shipped map is tried: a map is a candidate when every read of its identity and poll
groups succeeds and no reading is garbage. Candidates are ranked by how many values they
explain; ties (an SDM230 also answers the SDM630's registers with zeros) are left to the
installer, who picks from the list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .device import Device
from .errors import DeviceTimeout, GatewayUnavailable, ModbusDeviceError
from .gateway import Gateway
from .regmap import IDENTITY_GROUP, RegisterMap, load_shipped_map, shipped_map_names
from .sunspec import NotSunSpec, SunSpecModel, discover


@dataclass(frozen=True)
class Detection:
    """SunSpec models if the device speaks SunSpec, else the shipped maps that fit, best first."""

    sunspec: list[SunSpecModel] = field(default_factory=list)
    maps: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        """Whether anything fits."""
        return bool(self.sunspec or self.maps)


async def detect(gateway: Gateway, unit: int, map_names: list[str] | None = None) -> Detection:
    """Probe `unit`; raises DeviceTimeout/GatewayUnavailable if nothing answers at all."""
    try:
        return Detection(sunspec=await discover(gateway, unit))
    except NotSunSpec:
        pass
    except (DeviceTimeout, GatewayUnavailable):
        raise  # nothing answers: say so rather than guess
    except ModbusDeviceError:  # an exception code: the unit answers, just not SunSpec
        pass
    scores: dict[str, int] = {}
    for name in map_names or shipped_map_names():
        explained = await _explained(gateway, unit, load_shipped_map(name))
        if explained:
            scores[name] = explained
    return Detection(maps=sorted(scores, key=lambda name: (-scores[name], name)))


async def _explained(gateway: Gateway, unit: int, regmap: RegisterMap) -> int:
    """Number of plausible values the map reads from the unit; 0 if any read or value fails."""
    device = Device(gateway, unit, regmap)
    count = 0
    for group in (IDENTITY_GROUP, *regmap.poll_groups):
        try:
            readings = await device.read_group(group)
        except (GatewayUnavailable, DeviceTimeout):
            raise
        except ModbusDeviceError:  # e.g. exception code 2: this map's registers are not there
            return 0
        if any(reading.problem for reading in readings.values()):
            return 0
        count += len(readings)
    return count
