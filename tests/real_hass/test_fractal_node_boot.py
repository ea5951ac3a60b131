"""A real ``hass`` process, the integration copied into a fresh config dir, set up over HTTP.

One boot per module (the ``real_hass`` fixture). Everything goes through the endpoints the
frontend uses: onboarding, the config-flow API, the config-entries API, /api/states and the
entity registry over the websocket. Tests run in file order; the log check comes last so it
covers every flow above it, and the fixture checks the log again after shutdown.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.real_hass.harness import (
    CUSTOM_COMPONENTS,
    HassClient,
    RealHass,
    Response,
    free_port,
    onboarding_steps,
)
from tests.support.certificates import make_ca, mismatched_key_pem

pytestmark = [pytest.mark.real_hass, pytest.mark.enable_socket]

DOMAIN = "fractal_node"
POWER_SENSORS = ("grid_power", "pv_power", "battery_power", "load_power")
NODE_SENSORS = {"link_status", "plan_status", "last_telemetry", *POWER_SENSORS}
LINK_STATES = {"standalone", "connecting", "connected", "disconnected", "error"}


def _ok(response: Response) -> dict[str, Any]:
    assert response.status == 200, f"HTTP {response.status}: {response.body!r}"
    body: dict[str, Any] = response.body
    return body


def start_node_flow(client: HassClient, **user_step: str) -> dict[str, Any]:
    """Open the Fractal Node flow and submit its first step."""
    form = _ok(client.start_config_flow(DOMAIN))
    assert (form["type"], form["step_id"]) == ("form", "user"), form
    return _ok(client.submit_config_flow(form["flow_id"], user_step))


def entry_by_id(client: HassClient, entry_id: str) -> dict[str, Any]:
    entries = {entry["entry_id"]: entry for entry in client.config_entries(DOMAIN)}
    assert entry_id in entries, f"entry {entry_id} not listed: {entries}"
    return entries[entry_id]


def entity_states(client: HassClient, entry_id: str) -> dict[str, dict[str, Any]]:
    """A config entry's enabled entities' states by translation key, found in the registry."""
    entity_ids = {
        entity["translation_key"]: entity["entity_id"]
        for entity in client.entity_registry()
        if entity["config_entry_id"] == entry_id and entity["disabled_by"] is None
    }
    states = client.states()
    missing = [entity_id for entity_id in entity_ids.values() if entity_id not in states]
    assert not missing, f"registered but without state: {missing}"
    return {key: states[entity_id] for key, entity_id in entity_ids.items()}


def test_hass_is_onboarded_and_serves_a_core_config_flow(real_hass: RealHass) -> None:
    """The harness itself: onboarding done, a token that works, a built-in flow end to end."""
    client = real_hass.client

    assert onboarding_steps(client) == {
        "user": True,
        "core_config": True,
        "analytics": True,
        "integration": True,
    }
    form = _ok(client.start_config_flow("sun"))
    created = _ok(client.submit_config_flow(form["flow_id"], {}))

    assert (created["type"], created["title"]) == ("create_entry", "Sun")
    sun = entity_states(client, created["result"]["entry_id"])
    assert sun["next_rising"]["attributes"]["device_class"] == "timestamp"
    assert client.states()["sun.sun"]["state"] in {"above_horizon", "below_horizon"}


def test_the_copied_integration_is_the_one_loaded(real_hass: RealHass) -> None:
    repository_manifest = json.loads((CUSTOM_COMPONENTS / DOMAIN / "manifest.json").read_text())

    loaded = real_hass.client.ws_command({"type": "manifest/get", "integration": DOMAIN})

    assert loaded["is_built_in"] is False
    assert loaded["version"] == repository_manifest["version"]
    assert real_hass.config_dir.joinpath("custom_components", DOMAIN, "manifest.json").is_file()


def test_standalone_node_is_created_and_shows_its_sensors(real_hass: RealHass) -> None:
    client = real_hass.client

    created = start_node_flow(
        client,
        name="Elm Road 12",
        node_id="elm-road-12",
        tags="street=Elm Road\nfeeder=F12",
        link="standalone",
    )

    assert (created["type"], created["title"]) == ("create_entry", "Elm Road 12"), created
    entry_id = created["result"]["entry_id"]
    assert entry_by_id(client, entry_id)["state"] == "loaded"
    sensors = entity_states(client, entry_id)
    assert sensors.keys() >= NODE_SENSORS
    link = sensors["link_status"]
    assert link["state"] == "standalone"
    assert link["attributes"]["device_class"] == "enum"
    assert set(link["attributes"]["options"]) == LINK_STATES
    assert sensors["plan_status"]["attributes"]["device_class"] == "enum"
    assert sensors["last_telemetry"]["attributes"]["device_class"] == "timestamp"
    for key in POWER_SENSORS:
        power = sensors[key]
        assert power["state"] == "unavailable", (key, power)
        assert power["attributes"]["device_class"] == "power", (key, power)
        assert power["attributes"]["unit_of_measurement"] == "W", (key, power)
        assert power["attributes"]["state_class"] == "measurement", (key, power)


def test_node_id_defaults_to_the_slugified_name_and_is_unique(real_hass: RealHass) -> None:
    client = real_hass.client

    first = start_node_flow(client, name="Oak Lane 3", link="standalone")
    again = start_node_flow(
        client, name="Oak Lane, the pub", node_id="oak-lane-3", link="standalone"
    )

    assert (first["type"], first["title"]) == ("create_entry", "Oak Lane 3"), first
    assert (again["type"], again["reason"]) == ("abort", "already_configured"), again


def test_local_node_refuses_a_mismatched_key_then_accepts_its_own(real_hass: RealHass) -> None:
    client = real_hass.client
    ca = make_ca()
    node = ca.issue("elm-road-14")
    local_form = start_node_flow(client, name="Elm Road 14", node_id="elm-road-14", link="local")
    assert (local_form["type"], local_form["step_id"]) == ("form", "local"), local_form
    local_step = {
        "host": "127.0.0.1",
        "port": free_port(),  # nothing listens: the node must not reach beyond loopback
        "ca_pem": ca.certificate_pem,
        "certificate_pem": node.certificate_pem,
    }

    refused = _ok(
        client.submit_config_flow(
            local_form["flow_id"], {**local_step, "private_key_pem": mismatched_key_pem()}
        )
    )
    created = _ok(
        client.submit_config_flow(
            local_form["flow_id"], {**local_step, "private_key_pem": node.private_key_pem}
        )
    )

    assert (refused["type"], refused["step_id"]) == ("form", "local"), refused
    assert "key_mismatch" in refused["errors"].values(), refused
    assert (created["type"], created["title"]) == ("create_entry", "Elm Road 14"), created
    link = entity_states(client, created["result"]["entry_id"])["link_status"]
    assert link["state"] in LINK_STATES - {"standalone"}, link


def test_entry_reloads_and_the_log_has_no_fractal_node_errors(real_hass: RealHass) -> None:
    client = real_hass.client
    created = start_node_flow(client, name="Reload Row 1", link="standalone")
    entry_id = created["result"]["entry_id"]

    reloaded = client.post(f"/api/config/config_entries/entry/{entry_id}/reload")

    assert reloaded == {"require_restart": False}
    assert entry_by_id(client, entry_id)["state"] == "loaded"
    assert entity_states(client, entry_id)["link_status"]["state"] == "standalone"
    problems = real_hass.log_problems(DOMAIN)
    assert not problems, "\n\n".join(record.text for record in problems)
