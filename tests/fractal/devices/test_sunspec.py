"""SunSpec discovery and decoding against a device image generated from pysunspec2's models."""

from __future__ import annotations

import pytest
from fractal.devices.errors import DeviceUnavailable, WriteRefused
from fractal.devices.regmap import Range
from fractal.devices.sunspec import NotSunSpec, SunSpecDevice, discover

from tests.fractal.devices.modbus_emulator import SILENT, EmulatedSunSpec, EmulatorServer

pytestmark = pytest.mark.enable_socket

INVERTER_AND_BATTERY = {
    1: {"Mn": "Fronius", "Md": "Symo 5.0-3-M", "SN": "30123456", "Vr": "1.2.3"},
    103: {"W_SF": 0, "W": 4200, "WH_SF": 0, "WH": 1234567, "Hz_SF": -2, "Hz": 50.01, "St": 4},
    124: {"ChaState_SF": -1, "ChaState": 57.5, "WChaMax_SF": 0, "WChaMax": 5000, "ChaSt": 3},
    713: {"Pct_SF": 0, "SoC": 57, "WH_SF": 1, "WHRtg": 10000},
}


@pytest.fixture
async def sunspec_server(socket_enabled: None):
    servers: list[EmulatorServer] = []

    async def start(devices: dict[int, object]) -> EmulatorServer:
        server = EmulatorServer(devices)
        await server.start_tcp()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


async def test_discovers_the_model_chain_and_decodes_with_scale_factors(
    sunspec_server, gateways
) -> None:
    emulated = EmulatedSunSpec(INVERTER_AND_BATTERY)
    server = await sunspec_server({1: emulated})
    gateway = gateways(server.port)

    models = await discover(gateway, 1)
    device = SunSpecDevice(gateway, 1, models)
    identity = await device.read_identity()
    readings = await device.poll()

    assert [(m.model_id, m.address) for m in models] == [
        (1, 40002),
        (103, 40070),
        (124, 40122),
        (713, 40148),
    ]
    assert [m.name for m in models] == [
        "common",
        "inverter_three_phase",
        "storage_basic",
        "derstoragecapacity",
    ]
    assert identity["common_mn"].value == "Fronius"
    assert identity["common_sn"].value == "30123456"
    assert readings["inverter_three_phase_w"].value == 4200
    assert readings["inverter_three_phase_w"].unit == "W"
    assert readings["inverter_three_phase_wh"].value == 1234567
    assert readings["inverter_three_phase_wh"].unit == "Wh"
    assert readings["inverter_three_phase_hz"].value == 50.01
    assert readings["inverter_three_phase_st"].value == "MPPT"
    assert readings["storage_basic_chastate"].value == 57.5
    assert readings["storage_basic_chast"].value == "DISCHARGING"  # code 3 in model 124
    assert readings["derstoragecapacity_soc"].value == 57
    assert readings["derstoragecapacity_soc"].unit == "%"
    assert readings["inverter_three_phase_a"].value is None
    assert readings["inverter_three_phase_a"].problem == "not implemented"


async def test_adjacent_models_are_read_in_one_request(sunspec_server, gateways) -> None:
    emulated = EmulatedSunSpec(INVERTER_AND_BATTERY)
    server = await sunspec_server({1: emulated})
    gateway = gateways(server.port)
    device = SunSpecDevice(gateway, 1, await discover(gateway, 1))
    emulated.image.requests.clear()

    await device.poll()

    # 103 (52 registers), 124 (26) and 713 (9) are contiguous: 87 registers, one read.
    assert emulated.image.requests == [("holding", 40070, 87)]


async def test_scripted_change_and_silence_then_recovery(sunspec_server, gateways) -> None:
    emulated = EmulatedSunSpec(INVERTER_AND_BATTERY)
    server = await sunspec_server({1: emulated})
    gateway = gateways(server.port)
    device = SunSpecDevice(gateway, 1, await discover(gateway, 1), backoff_initial=0)

    emulated.set(103, W=-150)
    first = await device.poll()
    server.set_fault(1, SILENT)
    with pytest.raises(DeviceUnavailable, match="no answer"):
        await device.poll()
    assert not device.availability.available
    server.set_fault(1, None)
    second = await device.poll()

    assert first["inverter_three_phase_w"].value == -150
    assert second["derstoragecapacity_soc"].value == 57
    assert device.availability.available


async def test_marker_found_at_another_base_address(sunspec_server, gateways) -> None:
    server = await sunspec_server({7: EmulatedSunSpec({1: {"Mn": "SMA"}, 101: {}}, base=50000)})
    gateway = gateways(server.port)

    models = await discover(gateway, 7)

    assert [(m.model_id, m.address) for m in models] == [(1, 50002), (101, 50070)]


async def test_a_meter_is_not_sunspec(start_server, gateways) -> None:
    server = await start_server({1: "eastron_sdm630"})

    with pytest.raises(NotSunSpec, match="no SunSpec marker"):
        await discover(gateways(server.port), 1)


async def test_storage_set_point_is_clamped_written_and_verified(sunspec_server, gateways) -> None:
    emulated = EmulatedSunSpec(INVERTER_AND_BATTERY)
    server = await sunspec_server({1: emulated})
    gateway = gateways(server.port)
    envelope = {"storage_basic_wchamax": Range(min=0, max=3000)}
    device = SunSpecDevice(gateway, 1, await discover(gateway, 1), envelope=envelope)

    result = await device.write("storage_basic_wchamax", 4500)
    readings = await device.poll()

    assert (result.requested, result.written, result.clamped) == (4500, 3000, True)
    assert readings["storage_basic_wchamax"].value == 3000
    assert emulated.image.tables["holding"][40124] == 3000  # WChaMax, right after ID and L


async def test_sunspec_writes_need_an_envelope_and_a_writable_point(
    sunspec_server, gateways
) -> None:
    emulated = EmulatedSunSpec(INVERTER_AND_BATTERY)
    server = await sunspec_server({1: emulated})
    gateway = gateways(server.port)
    envelope = {"storage_basic_chastate": Range(min=0, max=100)}
    device = SunSpecDevice(gateway, 1, await discover(gateway, 1), envelope=envelope)

    with pytest.raises(WriteRefused, match="no safety envelope set for storage_basic_wchamax"):
        await device.write("storage_basic_wchamax", 1000)
    with pytest.raises(WriteRefused, match="storage_basic_chastate is read-only"):
        await device.write("storage_basic_chastate", 50)
    with pytest.raises(WriteRefused, match="no SunSpec point 'storage_basic_nothing'"):
        await device.write("storage_basic_nothing", 1)

    assert emulated.image.writes == []


async def test_der_model_longer_than_one_read_is_split_and_decoded(
    sunspec_server, gateways
) -> None:
    der = {
        1: {"Mn": "Acme"},
        701: {"W_SF": 0, "W": 3100, "Hz_SF": -2, "Hz": 49.98, "TotWh_SF": 0, "TotWhInj": 98765},
        713: {"Pct_SF": 0, "SoC": 81, "WH_SF": 0, "WHRtg": 9000},
    }
    emulated = EmulatedSunSpec(der)
    server = await sunspec_server({1: emulated})
    gateway = gateways(server.port)
    device = SunSpecDevice(gateway, 1, await discover(gateway, 1))
    emulated.image.requests.clear()

    readings = await device.poll()

    # 701 is 155 registers and 713 is 9: 164 contiguous registers, two reads of at most 125.
    assert emulated.image.requests == [("holding", 40070, 125), ("holding", 40195, 39)]
    assert readings["dermeasureac_w"].value == 3100
    assert readings["dermeasureac_hz"].value == 49.98
    assert readings["dermeasureac_totwhinj"].value == 98765
    assert readings["derstoragecapacity_soc"].value == 81
