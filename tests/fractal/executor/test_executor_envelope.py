"""The envelope's check of a plan: unknown devices and modes reject it whole, values beyond
the limits are listed (with their paths) as clamped, and the link acknowledges accordingly."""

from __future__ import annotations

from datetime import timedelta

from fractal.link.plan_inbox import check_plan
from fractal.protocol import PlanAck, PlanStatus, Problem, dump

from tests.fractal.executor.executor_fixtures import (
    NODE,
    START,
    envelope,
    everywhere,
    plan,
    windows,
)


def test_a_plan_within_the_envelope_has_no_problems_and_nothing_clamped() -> None:
    checked = plan(
        {
            "battery": windows("battery", (0, 2, "charge", 3000), (2, 4, "discharge", 2800)),
            "ev": everywhere("ev_charger", "ev_current", 16),
            "hydro": everywhere("hydro", "level", 1.4),
        }
    )

    assert envelope().envelope_check(checked) == []
    assert envelope().clamped_parts(checked) == []


def test_an_unknown_device_or_a_mode_the_device_does_not_accept_rejects_the_plan() -> None:
    checked = plan(
        {
            "boiler": everywhere("immersion", "on"),
            "grid": everywhere("grid_meter", "export_limit", 0),
        }
    )
    narrow = envelope()
    battery_hold_only = plan({"battery": everywhere("battery", "hold")})
    without_hold = narrow.descriptor.model_copy(
        update={
            "devices": tuple(
                d.model_copy(update={"capabilities": ("balance",)}) if d.id == "battery" else d
                for d in narrow.descriptor.devices
            )
        }
    )

    assert [p.path for p in narrow.envelope_check(checked)] == ["devices.boiler"]
    assert type(narrow)(without_hold).envelope_check(battery_hold_only) == [
        Problem("devices.battery.windows[0].mode", "the device does not accept mode hold")
    ]


def test_values_beyond_the_limits_are_listed_with_their_paths() -> None:
    checked = plan(
        {
            "battery": {
                "kind": "battery",
                "setpoints": {"quantity": "battery_w", "values": [3500, 0, -3000, None]},
            },
            "ev": windows("ev_charger", (0, 1, "ev_current", 40), (1, 2, "ev_current", 3)),
            "hydro": everywhere("hydro", "level", 1.8),
            "grid": everywhere("grid_meter", "export_limit", 5000),
        }
    )

    clamped = envelope().clamped_parts(checked)

    assert clamped == [
        Problem(
            "devices.battery.setpoints.values[0]", "charge 3500 W limited to max_charge_w 3000 W"
        ),
        Problem(
            "devices.battery.setpoints.values[2]",
            "discharge 3000 W limited to max_discharge_w 2800 W",
        ),
        Problem("devices.ev.windows[0].value", "40 A limited to ev_current_max_a 32 A"),
        Problem(
            "devices.ev.windows[1].value",
            "3 A is below 6 A: charges at 6 A until the slot's energy is in",
        ),
        Problem("devices.hydro.windows[0].value", "level 1.8 m limited to the band 1.2-1.6 m"),
        Problem(
            "devices.grid.windows[0].value", "export limit 5000 W limited to export_max_w 3680 W"
        ),
    ]


def test_a_limit_the_installer_left_out_is_reported_as_not_run() -> None:
    no_limits = envelope(battery={}, ev={}, hydro={})
    checked = plan(
        {
            "battery": everywhere("battery", "charge", 1000),
            "ev": everywhere("ev_charger", "ev_current", 10),
            "hydro": everywhere("hydro", "level", 1.3),
        }
    )

    messages = [p.message for p in no_limits.clamped_parts(checked)]

    assert messages == [
        "charge 1000 W: no max_charge_w in the envelope, not run",
        "10 A: no ev_current_max_a in the envelope, not run",
        "level 1.3 m: no level band in the envelope, not run",
    ]


def test_the_link_rejects_a_plan_the_envelope_check_refuses_and_keeps_it_whole() -> None:
    refused = plan({"boiler": everywhere("immersion", "on")})

    kept, ack = check_plan(
        dump(refused),
        node_id=NODE,
        now=START + timedelta(minutes=1),
        envelope_check=envelope().envelope_check,
    )

    assert kept is None
    assert ack.status is PlanStatus.REJECTED
    assert [issue.path for issue in ack.issues] == ["devices.boiler"]


def test_clamped_parts_fit_an_ack() -> None:
    every_slot = plan(
        {
            "battery": {
                "kind": "battery",
                "setpoints": {"quantity": "battery_w", "values": [9000] * 96},
            }
        },
        slots=96,
        step=900,
    )
    clamped = envelope().clamped_parts(every_slot)

    ack = PlanAck.fitted(
        plan_id=every_slot.id, status=PlanStatus.EXECUTING, ts=START, clamped=clamped
    )

    assert len(clamped) == 96
    assert ack.clamped[0].path == "devices.battery.setpoints.values[0]"
    assert ack.reason is not None
    assert "more not listed" in ack.reason
