"""Which homes a simulated fleet has: spread over a few streets and two feeders, with PV,
batteries in three homes of four and an EV in every third; and what each says about itself.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Final

from fractal import __version__
from fractal.protocol import (
    Device,
    DeviceEnvelope,
    DeviceKind,
    LinkMode,
    Mode,
    NodeDescriptor,
    NodeEnvelope,
)

from .home import BatterySpec, EvSpec, HomeSpec

STREETS: Final = (
    ("Elm Road", "F1"),
    ("Oak Street", "F1"),
    ("Mill Lane", "F2"),
    ("Church Walk", "F2"),
)
COMMUNITY: Final = "Demo"
PV_KWP: Final = (2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0)
BATTERIES: Final = (
    BatterySpec(capacity_wh=5200, max_charge_w=2600, max_discharge_w=2600),
    BatterySpec(capacity_wh=9500, max_charge_w=3300, max_discharge_w=3300),
    BatterySpec(capacity_wh=13500, max_charge_w=5000, max_discharge_w=5000),
)
IMPORT_MAX_W: Final = 18_400  # a 80 A single-phase supply
EXPORT_MAX_W: Final = 3_680  # the G98 limit without an application


def home_specs(
    count: int, *, seed: int = 0, extra_tags: Mapping[str, str] | None = None
) -> list[HomeSpec]:
    """`count` homes spread over the streets and feeders; batteries in three of four homes,
    an EV in every third. The same count and seed give the same homes."""
    if not 1 <= count <= 1000:
        raise ValueError(f"the number of homes must be 1 to 1000, not {count}")
    return [_home_spec(index, seed, extra_tags or {}) for index in range(count)]


def _home_spec(index: int, seed: int, extra_tags: Mapping[str, str]) -> HomeSpec:
    rng = random.Random(f"{seed}:home:{index}")
    street, feeder = STREETS[index % len(STREETS)]
    number = 1 + 2 * (index // len(STREETS))
    battery = None if index % 4 == 3 else rng.choice(BATTERIES)
    if battery is not None:
        initial = round(rng.uniform(20, 80))
        battery = BatterySpec(
            battery.capacity_wh, battery.max_charge_w, battery.max_discharge_w,
            initial_soc_pct=initial,
        )  # fmt: skip
    return HomeSpec(
        node_id=f"sim-{index + 1:03d}",
        name=f"{number} {street}",
        tags={"street": street, "feeder": feeder, "community": COMMUNITY, **extra_tags},
        pv_kwp=rng.choice(PV_KWP),
        seed=rng.randrange(2**31),
        base_load_w=round(rng.uniform(150, 400)),
        battery=battery,
        ev=EvSpec(session_wh=round(rng.uniform(6000, 14000))) if index % 3 == 2 else None,
    )


def descriptor(spec: HomeSpec) -> NodeDescriptor:
    """What the simulated node says about itself in `reported.node`."""
    devices = [
        Device(id="pv", kind=DeviceKind.PV, manufacturer="Simulated", model=f"{spec.pv_kwp} kWp")
    ]
    if spec.battery is not None:
        devices.append(_battery_device(spec.battery))
    if spec.ev is not None:
        devices.append(
            Device(
                id="ev_charger",
                kind=DeviceKind.EV_CHARGER,
                manufacturer="Simulated",
                capabilities=(Mode.BALANCE, Mode.OFF, Mode.EV_CURRENT),
                envelope=DeviceEnvelope(ev_current_min_a=6, ev_current_max_a=32),
            )
        )
    return NodeDescriptor(
        node=spec.node_id,
        name=spec.name,
        tags=dict(spec.tags),
        software=__version__,
        link=LinkMode.LOCAL,
        devices=tuple(devices),
        envelope=NodeEnvelope(import_max_w=IMPORT_MAX_W, export_max_w=EXPORT_MAX_W),
    )


def _battery_device(battery: BatterySpec) -> Device:
    return Device(
        id="battery",
        kind=DeviceKind.BATTERY,
        manufacturer="Simulated",
        capabilities=(Mode.BALANCE, Mode.CHARGE, Mode.DISCHARGE, Mode.HOLD),
        envelope=DeviceEnvelope(
            max_charge_w=round(battery.max_charge_w),
            max_discharge_w=round(battery.max_discharge_w),
            soc_min_pct=battery.soc_min_pct,
            soc_max_pct=battery.soc_max_pct,
            capacity_wh=battery.capacity_wh,
        ),
    )
