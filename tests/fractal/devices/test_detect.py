"""Auto-detection against real emulated devices, as the installer's "Add device" step runs it."""

from __future__ import annotations

import pytest
from fractal.devices.detect import detect
from fractal.devices.errors import DeviceTimeout

from tests.fractal.devices.modbus_emulator import SILENT, EmulatedSunSpec, EmulatorServer

pytestmark = pytest.mark.enable_socket


@pytest.mark.parametrize(
    ("shipped", "expected"),
    [
        ("eastron_sdm630", ["eastron_sdm630", "eastron_sdm230"]),
        ("eastron_sdm230", ["eastron_sdm630", "eastron_sdm230"]),  # ambiguous: installer picks
        ("generic_battery", ["generic_battery"]),
        ("generic_evse", ["generic_evse"]),
        ("generic_hydro", ["generic_hydro"]),
    ],
)
async def test_each_shipped_device_is_recognised(
    start_server, gateways, shipped: str, expected: list[str]
) -> None:
    server = await start_server({9: shipped})

    detection = await detect(gateways(server.port), 9)

    assert detection.sunspec == []
    assert detection.maps == expected


async def test_sunspec_device_is_recognised_by_its_models(socket_enabled, gateways) -> None:
    server = EmulatorServer({3: EmulatedSunSpec({1: {"Mn": "SMA"}, 103: {}, 124: {}})})
    await server.start_tcp()
    try:
        detection = await detect(gateways(server.port), 3)
    finally:
        await server.stop()

    assert [model.model_id for model in detection.sunspec] == [1, 103, 124]
    assert detection.maps == []


async def test_silent_unit_is_reported_not_guessed(start_server, gateways) -> None:
    server = await start_server({9: "eastron_sdm630"})
    server.set_fault(9, SILENT)

    with pytest.raises(DeviceTimeout):
        await detect(gateways(server.port), 9)
