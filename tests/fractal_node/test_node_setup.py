"""Set-up and unload of a node, certificate checks at set-up and while running."""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.fractal_node.const import CONF_CERTIFICATE_PEM, DOMAIN
from custom_components.fractal_node.fractal import __version__
from custom_components.fractal_node.fractal.node import LinkStatus
from tests.fractal_node.helpers import (
    NAME,
    NODE_ID,
    aws_settings,
    issue_for,
    local_settings,
    node_entry,
    setup_entry,
)
from tests.support.certificates import CertificateAuthority, Issued, foreign_ca, now_utc


def expiry_issue(hass: HomeAssistant, entry_id: str) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"certificate_expiring_{entry_id}")


def reauth_flows(hass: HomeAssistant, entry_id: str) -> list[str]:
    return [
        flow["flow_id"]
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_REAUTH and flow["context"]["entry_id"] == entry_id
    ]


async def test_standalone_node_loads_as_a_device_and_unloads(
    hass: HomeAssistant, device_registry: dr.DeviceRegistry
) -> None:
    entry = node_entry()
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    data = entry.runtime_data
    assert data.certificate is None
    assert data.coordinator.data.link_status is LinkStatus.STANDALONE
    assert data.runtime.config.tags == {"street": "Elm Road", "feeder": "F12"}
    device = device_registry.async_get_device(identifiers={(DOMAIN, NODE_ID)})
    assert device is not None
    assert device.name == NAME
    assert device.manufacturer == "Fractal Node"
    assert device.sw_version == __version__
    assert device.config_entries == {entry.entry_id}

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    # The runtime no longer feeds the unloaded coordinator.
    assert data.runtime._listeners == []


async def test_services_exist_before_any_entry(hass: HomeAssistant) -> None:
    from homeassistant.setup import async_setup_component

    assert await async_setup_component(hass, DOMAIN, {})
    assert hass.services.has_service(DOMAIN, "get_descriptor")


async def test_a_valid_certificate_loads_without_repair_issue(
    hass: HomeAssistant, local_ca: CertificateAuthority, node_credentials: Issued
) -> None:
    entry = node_entry("local", **local_settings(local_ca, node_credentials))
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.certificate is not None
    assert entry.runtime_data.certificate.common_name == NODE_ID
    assert expiry_issue(hass, entry.entry_id) is None


async def test_an_expired_certificate_starts_reauthentication(
    hass: HomeAssistant, local_ca: CertificateAuthority
) -> None:
    now = now_utc()
    expired = local_ca.issue(
        NODE_ID, not_before=now - timedelta(days=400), not_after=now - timedelta(days=1)
    )
    entry = node_entry("local", **local_settings(local_ca, expired))
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert "certificate_expired" in (entry.reason or "")
    assert len(reauth_flows(hass, entry.entry_id)) == 1


async def test_unusable_stored_credentials_start_reauthentication(
    hass: HomeAssistant, amazon_root_ca: CertificateAuthority, aws_credentials: Issued
) -> None:
    settings = aws_settings(amazon_root_ca, aws_credentials) | {CONF_CERTIFICATE_PEM: "gone"}
    entry = node_entry("aws", **settings)
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert "invalid_certificate" in (entry.reason or "")
    assert len(reauth_flows(hass, entry.entry_id)) == 1


async def test_a_certificate_not_yet_valid_is_retried_not_reauthenticated(
    hass: HomeAssistant, local_ca: CertificateAuthority
) -> None:
    future = local_ca.issue(NODE_ID, not_before=now_utc() + timedelta(hours=2))
    entry = node_entry("local", **local_settings(local_ca, future))
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert reauth_flows(hass, entry.entry_id) == []


async def test_invalid_stored_configuration_is_a_setup_error(hass: HomeAssistant) -> None:
    entry = node_entry(tags={"Not A Key": "x"})
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert "Not A Key" in (entry.reason or "")


async def test_damaged_stored_data_is_a_setup_error_with_a_reason(hass: HomeAssistant) -> None:
    entry = node_entry("carrier-pigeon")
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert "carrier-pigeon" in (entry.reason or "")


async def test_a_missing_certificate_starts_reauthentication(
    hass: HomeAssistant, local_ca: CertificateAuthority, node_credentials: Issued
) -> None:
    settings = local_settings(local_ca, node_credentials)
    del settings[CONF_CERTIFICATE_PEM]
    entry = node_entry("local", **settings)
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert len(reauth_flows(hass, entry.entry_id)) == 1


async def test_a_certificate_expiring_within_30_days_raises_a_repair_issue(
    hass: HomeAssistant, local_ca: CertificateAuthority
) -> None:
    soon = issue_for(local_ca, valid_for=timedelta(days=10, hours=1))
    entry = node_entry("local", **local_settings(local_ca, soon))
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    issue = expiry_issue(hass, entry.entry_id)
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_key == "certificate_expiring"
    assert issue.translation_placeholders == {
        "name": NAME,
        "expiry": soon.certificate.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC"),
        "days": "10",
    }

    # Reauthentication with a renewed certificate clears the issue once the entry reloads.
    renewed = local_ca.issue(NODE_ID)
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            "ca_pem": local_ca.certificate_pem,
            "certificate_pem": renewed.certificate_pem,
            "private_key_pem": renewed.private_key_pem,
        },
    )
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert expiry_issue(hass, entry.entry_id) is None


async def test_removing_the_entry_removes_its_issue(
    hass: HomeAssistant, local_ca: CertificateAuthority
) -> None:
    soon = issue_for(local_ca, valid_for=timedelta(days=5))
    entry = node_entry("local", **local_settings(local_ca, soon))
    await setup_entry(hass, entry)
    assert expiry_issue(hass, entry.entry_id) is not None
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert expiry_issue(hass, entry.entry_id) is None


async def test_a_running_node_notices_its_certificate_ageing(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    ca = foreign_ca()
    certificate = issue_for(ca, valid_for=timedelta(days=40))
    entry = node_entry("local", **local_settings(ca, certificate))
    await setup_entry(hass, entry)
    assert expiry_issue(hass, entry.entry_id) is None

    freezer.tick(timedelta(days=11))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    issue = expiry_issue(hass, entry.entry_id)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["days"] == "28"
    assert reauth_flows(hass, entry.entry_id) == []

    freezer.tick(timedelta(days=30))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert len(reauth_flows(hass, entry.entry_id)) == 1
    issue = expiry_issue(hass, entry.entry_id)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["days"] == "0"


async def test_the_certificate_watch_stops_on_unload(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    ca = foreign_ca()
    entry = node_entry("local", **local_settings(ca, issue_for(ca, valid_for=timedelta(days=40))))
    await setup_entry(hass, entry)
    assert await hass.config_entries.async_unload(entry.entry_id)
    freezer.tick(timedelta(days=20))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert expiry_issue(hass, entry.entry_id) is None
