"""Zigbee meters through zigpy's whole stack, on an in-process radio sending real ZCL frames."""

from __future__ import annotations

import pytest
from fractal.zigbee import (
    ELECTRICAL_MEASUREMENT,
    METERING,
    NotAMeter,
    ScalingError,
    ZigbeeMeter,
    ZigbeeUnavailable,
    meter_candidates,
)
from fractal.zigbee.scaling import Scale, scale_of

from tests.support.zigbee_radio import COORDINATOR_IEEE, FakeRadio, clamp_meter, smart_plug


@pytest.fixture
def radio() -> FakeRadio:
    return FakeRadio.create()


async def started(device: object) -> ZigbeeMeter:
    meter = ZigbeeMeter(device)
    meter.start()
    await meter.async_read()
    return meter


async def test_clamp_meter_reads_scaled_by_its_multiplier_and_divisor(radio: FakeRadio) -> None:
    # 1234 x 3 / 1000 kW = 3.702 kW; 5 000 000 x 3 / 1000 kWh = 15 000 kWh.
    device = radio.join(clamp_meter(multiplier=3))
    meter = await started(device)
    reading = meter.reading()
    assert reading.power_w == pytest.approx(3702.0)
    assert reading.import_wh == pytest.approx(15_000_000.0)
    assert reading.export_wh == pytest.approx(750_000.0)
    assert reading.voltage_v is None
    assert reading.current_a is None
    assert meter.scaled
    assert meter.link_quality == 200  # of the frames that answered the reads
    assert meter.signal_strength == -60


async def test_smart_plug_power_voltage_and_current(radio: FakeRadio) -> None:
    device = radio.join(smart_plug())
    reading = (await started(device)).reading()
    assert reading.power_w == pytest.approx(234.5)  # active_power 2345 / 10 W
    assert reading.voltage_v == pytest.approx(241.0)
    assert reading.current_a == pytest.approx(9.8)  # 9800 mA
    assert reading.import_wh == pytest.approx(123_450.0)  # 12345 / 100 kWh


async def test_metering_demand_wins_over_active_power_on_a_device_with_both(
    radio: FakeRadio,
) -> None:
    plug = smart_plug()
    plug.attributes[METERING]["instantaneous_demand"] = 50  # 50 / 100 kW
    reading = (await started(radio.join(plug))).reading()
    assert reading.power_w == pytest.approx(500.0)


async def test_attribute_reports_update_the_reading_and_tell_listeners(radio: FakeRadio) -> None:
    sim = clamp_meter()
    meter = await started(radio.join(sim))
    heard: list[float | None] = []
    unsubscribe = meter.add_listener(lambda: heard.append(meter.reading().power_w))

    radio.receive(sim.report(METERING, {"instantaneous_demand": -2500}))  # exporting 2.5 kW
    radio.receive(sim.report(METERING, {"current_summ_received": 260_000}))
    assert meter.reading().power_w == pytest.approx(-2500.0)
    assert meter.reading().export_wh == pytest.approx(260_000.0)
    assert heard == [pytest.approx(-2500.0), pytest.approx(-2500.0)]

    unsubscribe()
    radio.receive(sim.report(METERING, {"instantaneous_demand": 10}))
    assert len(heard) == 2
    assert meter.reading().power_w == pytest.approx(10.0)


async def test_scaling_comes_from_zigpys_cache_once_known(radio: FakeRadio) -> None:
    sim = clamp_meter()
    device = radio.join(sim)
    await started(device)
    sim.reads.clear()
    await started(device)  # a second meter on the same device: e.g. after a reload
    assert sim.reads == [
        (METERING, ["instantaneous_demand", "current_summ_delivered", "current_summ_received"])
    ]


async def test_a_device_without_scaling_attributes_counts_in_units(radio: FakeRadio) -> None:
    sim = smart_plug()
    for name in ("ac_power_multiplier", "ac_power_divisor"):
        del sim.attributes[ELECTRICAL_MEASUREMENT][name]
    reading = (await started(radio.join(sim))).reading()
    assert reading.power_w == pytest.approx(2345.0)


async def test_a_divisor_of_zero_is_a_clear_error_and_no_reading(radio: FakeRadio) -> None:
    device = radio.join(clamp_meter(divisor=0))
    meter = ZigbeeMeter(device)
    meter.start()
    with pytest.raises(ScalingError, match="divisor of 0"):
        await meter.async_read()
    assert meter.problem == "Metering: the device reports a divisor of 0"
    assert meter.reading().power_w is None
    assert not meter.scaled


async def test_a_divisor_of_zero_reported_later_keeps_the_previous_scale(
    radio: FakeRadio,
) -> None:
    sim = clamp_meter()
    meter = await started(radio.join(sim))
    radio.receive(sim.report(METERING, {"divisor": 0}))
    radio.receive(sim.report(METERING, {"instantaneous_demand": 2000}))
    assert meter.reading().power_w == pytest.approx(2000.0)  # still / 1000 kW
    assert "divisor of 0" in (meter.problem or "")
    radio.receive(sim.report(METERING, {"divisor": 100}))
    assert meter.reading().power_w == pytest.approx(20_000.0)


async def test_a_gas_meter_is_not_an_electricity_meter(radio: FakeRadio) -> None:
    meter = ZigbeeMeter(radio.join(clamp_meter(unit_of_measure=0x01)))
    meter.start()
    with pytest.raises(ScalingError, match="not kW/kWh"):
        await meter.async_read()


async def test_garbage_frames_are_dropped_and_nothing_is_lost(radio: FakeRadio) -> None:
    sim = clamp_meter()
    meter = await started(radio.join(sim))
    good = sim.report(METERING, {"instantaneous_demand": 777}).data.serialize()
    for junk in (
        good[:-2],  # cut short on the air
        b"\x18\x42\x0a\x00\x04\x2a\x01",  # a report whose int24 value is one byte long
        b"\xff\xff\xff\xff\xff\xff",
        b"",
    ):
        radio.receive(sim.raw_frame(METERING, junk))
    assert meter.reading().power_w == pytest.approx(1234.0)
    radio.receive(sim.raw_frame(METERING, good))
    assert meter.reading().power_w == pytest.approx(777.0)


async def test_the_zcl_non_value_is_never_a_reading(radio: FakeRadio) -> None:
    sim = clamp_meter()
    meter = await started(radio.join(sim))
    # 0x800000: "no demand measured" (the -8388.608 kW some meters show).
    radio.receive(sim.report(METERING, {"instantaneous_demand": -0x800000}))
    radio.receive(sim.report(METERING, {"current_summ_delivered": 0xFFFFFFFFFFFF}))
    assert meter.reading().power_w is None
    assert meter.reading().import_wh == pytest.approx(5_000_000.0)  # the last good one stays


async def test_a_poll_reads_the_values_again_and_the_scaling_once(radio: FakeRadio) -> None:
    sim = clamp_meter()
    meter = await started(radio.join(sim))
    sim.attributes[METERING]["instantaneous_demand"] = 4321
    sim.reads.clear()
    await meter.async_read_values()
    assert meter.reading().power_w == pytest.approx(4321.0)
    assert [cluster for cluster, _ in sim.reads] == [METERING]


async def test_a_poll_before_the_scaling_is_known_reads_it(radio: FakeRadio) -> None:
    sim = clamp_meter()
    sim.reachable = False
    meter = ZigbeeMeter(radio.join(sim))
    meter.start()
    with pytest.raises(ZigbeeUnavailable):
        await meter.async_read()
    sim.reachable = True  # back in range
    await meter.async_read_values()
    assert meter.scaled
    assert meter.reading().power_w == pytest.approx(1234.0)


async def test_an_unreachable_device_is_reported_as_such(radio: FakeRadio) -> None:
    sim = clamp_meter()
    sim.reachable = False
    meter = ZigbeeMeter(radio.join(sim))
    meter.start()
    with pytest.raises(ZigbeeUnavailable, match="no answer"):
        await meter.async_read()
    assert not meter.scaled


async def test_stopped_meter_ignores_reports(radio: FakeRadio) -> None:
    sim = clamp_meter()
    meter = await started(radio.join(sim))
    meter.stop()
    radio.receive(sim.report(METERING, {"instantaneous_demand": 5}))
    assert meter.reading().power_w == pytest.approx(1234.0)


async def test_candidates_are_the_devices_measuring_electricity(radio: FakeRadio) -> None:
    radio.join(clamp_meter())
    radio.join(smart_plug())
    candidates = meter_candidates(radio)
    assert [(c.ieee, c.clusters) for c in candidates] == [
        ("00:0d:6f:00:0a:bc:de:01", (METERING,)),
        ("54:ef:44:10:00:11:22:33", (METERING, ELECTRICAL_MEASUREMENT)),
    ]
    assert candidates[0].title == "Develco Products A/S ZHEMI101 (00:0d:6f:00:0a:bc:de:01)"
    assert COORDINATOR_IEEE not in {c.ieee for c in candidates}


async def test_a_device_without_meter_clusters_is_refused(radio: FakeRadio) -> None:
    sim = clamp_meter()
    sim.attributes = {}
    with pytest.raises(NotAMeter):
        ZigbeeMeter(radio.join(sim))


def test_scale_arithmetic() -> None:
    assert Scale(3, 1000, 1000.0).apply(1234) == pytest.approx(3702.0)
    assert scale_of(None, None, "x") == Scale(1, 1)
    with pytest.raises(ScalingError, match="multiplier of 0"):
        scale_of(0, 1, "x")
