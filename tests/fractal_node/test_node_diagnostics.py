"""Diagnostics as downloaded over HTTP: useful, and without any key or certificate material."""

from __future__ import annotations

import json
import re

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from tests.fractal_node.helpers import (
    AWS_ENDPOINT,
    LOCAL_BROKER,
    NODE_ID,
    aws_settings,
    local_settings,
    node_entry,
    setup_entry,
    until,
)
from tests.support.certificates import CertificateAuthority, Issued

REDACTED = "**REDACTED**"


def pem_bodies(*pems: str) -> list[str]:
    """Every base64 line of the PEM documents: none may appear anywhere."""
    return [
        line for pem in pems for line in pem.splitlines() if line and not line.startswith("-----")
    ]


async def test_local_node_diagnostics_redact_every_secret(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    local_ca: CertificateAuthority,
    node_credentials: Issued,
) -> None:
    entry = node_entry("local", **local_settings(local_ca, node_credentials))
    await setup_entry(hass, entry)
    await until(lambda: entry.runtime_data.runtime.state().link_status == "disconnected")
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)

    assert diagnostics["entry"]["data"] == {
        "name": "Elm Road 12",
        "node_id": NODE_ID,
        "link": "local",
        "host": REDACTED,
        "port": 8883,
        "ca_pem": REDACTED,
        "certificate_pem": REDACTED,
        "private_key_pem": REDACTED,
    }
    assert diagnostics["entry"]["options"] == {"tags": {"street": REDACTED, "feeder": REDACTED}}
    certificate = diagnostics["certificate"]
    assert certificate["common_name"] == NODE_ID
    assert certificate["issuer"] == "CN=Fractal Aggregator CA"
    assert certificate["not_after"] == node_credentials.certificate.not_valid_after_utc.isoformat()
    assert diagnostics["state"]["link_status"] == "disconnected"
    assert "CONNECTION_REFUSED" in diagnostics["state"]["link_reason"]
    assert diagnostics["link"]["state"] == "disconnected"
    assert set(diagnostics["link"]["buffer"]) == {"pending", "dropped", "lost", "last_seq", "error"}
    assert diagnostics["state"]["power"] == {
        "grid_w": None,
        "pv_w": None,
        "battery_w": None,
        "load_w": None,
    }

    text = json.dumps(diagnostics)
    assert "BEGIN" not in text
    assert LOCAL_BROKER not in text
    assert 'Elm Road"' not in text  # tag values
    for line in pem_bodies(
        local_ca.certificate_pem, node_credentials.certificate_pem, node_credentials.private_key_pem
    ):
        assert line not in text


async def test_aws_node_diagnostics_hide_the_endpoint(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    amazon_root_ca: CertificateAuthority,
    aws_credentials: Issued,
) -> None:
    settings = aws_settings(amazon_root_ca, aws_credentials)
    entry = node_entry("aws", **settings)
    await setup_entry(hass, entry)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = json.dumps(diagnostics)
    assert diagnostics["entry"]["data"]["endpoint"] == REDACTED
    assert AWS_ENDPOINT not in text
    assert not re.search(r"-----BEGIN [A-Z ]+-----", text)
    for line in pem_bodies(
        *(settings[key] for key in ("ca_pem", "certificate_pem", "private_key_pem"))
    ):
        assert line not in text


async def test_standalone_node_diagnostics(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    entry = node_entry()
    await setup_entry(hass, entry)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["certificate"] is None
    assert diagnostics["state"]["link_status"] == "standalone"
    assert diagnostics["link"] is None
    assert diagnostics["state"]["link_reason"] is None
