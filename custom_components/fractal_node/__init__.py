"""Fractal Node: this home as a node of a community energy system.

Set-up checks the node's certificates again (they may have expired since the config flow):
expired or unusable -> reauthentication; expiring within 30 days -> a repair issue. The check
repeats twice a day while Home Assistant runs.
"""

from __future__ import annotations

from datetime import datetime

from homeassistant.const import CONF_NAME, EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.typing import ConfigType
from homeassistant.util import dt as dt_util

from .cheap_window import configured_cheap_window
from .const import (
    CERTIFICATE_CHECK_INTERVAL,
    CERTIFICATE_WARNING_PERIOD,
    CONF_CA_PEM,
    CONF_CERTIFICATE_PEM,
    CONF_IMPORT_RATE,
    CONF_LINK,
    CONF_NODE_ID,
    CONF_PLANNING,
    CONF_PRIVATE_KEY_PEM,
    CONF_TAGS,
    DOMAIN,
    ISSUE_CERTIFICATE_EXPIRING,
)
from .coordinator import FractalNodeConfigEntry, FractalNodeCoordinator, FractalNodeData
from .data_export import async_setup_export
from .device_runtime import (
    ISSUE_DEVICE_UNAVAILABLE,
    async_start_devices,
    device_subentries,
    new_pool,
)
from .executor_runtime import ExecutorCoordinator, NodeExecutor
from .fractal.executor import Envelope
from .fractal.link_settings import check_link_credentials
from .fractal.node import LinkMode, NodeConfig, NodeRuntime
from .fractal.protocol import Plan
from .fractal.tls import CertificateInfo, CredentialError
from .meters import async_start_meters
from .modbus import described_device
from .node_link import NodeLink, async_start_link
from .panel import async_register_entry_panel, async_setup_panel_support
from .power_sources import async_feed_power_flows
from .services import async_setup_services
from .standalone import StandalonePlanner

PLATFORMS = [
    Platform.CALENDAR,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the services once, whatever entries load; the dashboard panel's files and
    the householder's data export."""
    async_setup_services(hass)
    await async_setup_panel_support(hass)
    async_setup_export(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: FractalNodeConfigEntry) -> bool:
    config = _node_config(entry)
    certificate = _checked_certificate(entry)
    runtime = NodeRuntime(config)
    coordinator = FractalNodeCoordinator(hass, entry, runtime)
    await coordinator.async_config_entry_first_refresh()
    pool = new_pool()
    entry.async_on_unload(pool.close)  # also when set-up fails below
    devices = await async_start_devices(hass, entry, pool)
    entry.runtime_data = FractalNodeData(runtime, coordinator, certificate, pool, devices)
    entry.runtime_data.meters.update(await async_start_meters(hass, entry))
    entry.async_on_unload(runtime.add_listener(coordinator.async_set_updated_data))
    for unsubscribe in async_feed_power_flows(
        runtime, [*devices.values(), *entry.runtime_data.meters.values()]
    ):
        entry.async_on_unload(unsubscribe)
    envelope = Envelope(runtime.descriptor())
    entry.runtime_data.link = await _async_start_link(hass, entry, runtime, envelope)
    entry.runtime_data.standalone = _standalone_planner(hass, entry, envelope)
    entry.runtime_data.executor = _start_executor(hass, entry, envelope)
    if entry.runtime_data.standalone is not None:
        for unsubscribe in entry.runtime_data.standalone.start():
            entry.async_on_unload(unsubscribe)
    entry.async_on_unload(entry.add_update_listener(_async_reload_on_update))
    if certificate is not None:
        _async_watch_certificate(hass, entry, certificate)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    await async_register_entry_panel(hass, entry)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: FractalNodeConfigEntry) -> bool:
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded and entry.runtime_data.link is not None:
        # Awaited here, not as an unload callback: a pending TLS handshake with an untrusted
        # broker can hold the CRT client's stop for longer than those are given (10 s).
        await entry.runtime_data.link.async_stop()
    return unloaded


def _start_executor(
    hass: HomeAssistant, entry: FractalNodeConfigEntry, envelope: Envelope
) -> NodeExecutor:
    """Run the plan executor every few seconds: the aggregator's plan in force (if linked),
    the local default plan, and the householder's override."""
    data = entry.runtime_data
    node_link = data.link

    def aggregator_plan() -> Plan | None:
        return node_link.link.plan_in_force if node_link is not None else None

    standalone = data.standalone

    def standalone_plan() -> Plan | None:
        return standalone.plan if standalone is not None else None

    executor = NodeExecutor(
        hass,
        data.runtime,
        data.devices,
        envelope,
        aggregator_plan=aggregator_plan,
        coordinator=ExecutorCoordinator(hass, entry),
        standalone_plan=standalone_plan,
        cheap=configured_cheap_window(entry.options, hass.config.time_zone),
    )
    executor.start()
    entry.async_on_unload(executor.stop)
    return executor


def _standalone_planner(
    hass: HomeAssistant, entry: FractalNodeConfigEntry, envelope: Envelope
) -> StandalonePlanner | None:
    """The node's own planner, when the householder picked an import rate to plan with
    (standalone.py); its plan is the executor's local default while in force."""
    settings = entry.options.get(CONF_PLANNING, {})
    if not settings.get(CONF_IMPORT_RATE):
        return None

    def soc_pct(device_id: str) -> float | None:
        executor = entry.runtime_data.executor
        return executor.readings().metric(device_id, "soc_pct") if executor else None

    return StandalonePlanner(hass, entry, envelope, settings, soc_pct)


async def _async_start_link(
    hass: HomeAssistant, entry: FractalNodeConfigEntry, runtime: NodeRuntime, envelope: Envelope
) -> NodeLink | None:
    """Start a linked node's link; stopped on unload, on Home Assistant's stop, or (as an
    unload callback) when set-up fails after this point."""

    def soc_pct() -> float | None:
        executor = entry.runtime_data.executor
        return executor.readings().soc if executor is not None else None

    try:
        node_link = await async_start_link(
            hass,
            runtime,
            entry.data,
            envelope.envelope_check,
            soc_pct,
            clamp_check=envelope.clamped_parts,
        )
    except ValueError as error:  # awscrt refused the PEM text the checks accepted
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN,
            translation_key="credentials_rejected",
            translation_placeholders={"problems": str(error)},
        ) from error
    if node_link is not None:
        entry.async_on_unload(node_link.async_stop)
        entry.async_on_unload(
            hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, node_link.async_stop)
        )
    return node_link


async def async_remove_entry(hass: HomeAssistant, entry: FractalNodeConfigEntry) -> None:
    ir.async_delete_issue(hass, DOMAIN, _expiry_issue_id(entry))
    _async_delete_device_issues(hass, entry)


@callback
def _async_delete_device_issues(hass: HomeAssistant, entry: FractalNodeConfigEntry) -> None:
    prefix = f"{ISSUE_DEVICE_UNAVAILABLE}_{entry.entry_id}_"
    for domain, issue_id in list(ir.async_get(hass).issues):
        if domain == DOMAIN and issue_id.startswith(prefix):
            ir.async_delete_issue(hass, DOMAIN, issue_id)


async def _async_reload_on_update(hass: HomeAssistant, entry: FractalNodeConfigEntry) -> None:
    """Options (tags) changed: restart the node with them."""
    await hass.config_entries.async_reload(entry.entry_id)


def _node_config(entry: FractalNodeConfigEntry) -> NodeConfig:
    try:
        config = NodeConfig(
            node_id=entry.data[CONF_NODE_ID],
            name=entry.data[CONF_NAME],
            link=LinkMode(entry.data[CONF_LINK]),
            tags=entry.options.get(CONF_TAGS, {}),
            devices=tuple(
                described_device(subentry_id, subentry.data)
                for subentry_id, subentry in device_subentries(entry).items()
            ),
        )
    except (KeyError, ValueError) as error:  # stored data damaged or edited by hand
        raise _invalid_configuration([f"missing or invalid {error}"]) from error
    if problems := config.problems():
        raise _invalid_configuration(problems)
    return config


def _invalid_configuration(problems: list[str]) -> ConfigEntryError:
    return ConfigEntryError(
        translation_domain=DOMAIN,
        translation_key="invalid_configuration",
        translation_placeholders={"problems": "; ".join(problems)},
    )


def _checked_certificate(entry: FractalNodeConfigEntry) -> CertificateInfo | None:
    """The node certificate of a linked node, if its credentials are usable now."""
    link = LinkMode(entry.data[CONF_LINK])
    if link is LinkMode.STANDALONE:
        return None
    check = check_link_credentials(
        link,
        node_id=entry.data[CONF_NODE_ID],
        # A missing PEM is an unusable one: reauthentication asks for it again.
        certificate_pem=entry.data.get(CONF_CERTIFICATE_PEM, ""),
        private_key_pem=entry.data.get(CONF_PRIVATE_KEY_PEM, ""),
        ca_pem=entry.data.get(CONF_CA_PEM, ""),
        now=dt_util.utcnow(),
    )
    problems = set(check.problems.values())
    if problems == {CredentialError.CERTIFICATE_NOT_YET_VALID}:
        # Most likely this machine's clock is behind: try again later, do not ask for new ones.
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN, translation_key="certificate_not_yet_valid"
        )
    if problems:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN,
            translation_key="credentials_rejected",
            translation_placeholders={"problems": ", ".join(sorted(problems))},
        )
    assert check.certificate is not None  # a check without problems describes the certificate
    return check.certificate


@callback
def _async_watch_certificate(
    hass: HomeAssistant, entry: FractalNodeConfigEntry, certificate: CertificateInfo
) -> None:
    @callback
    def check(_: datetime | None = None) -> None:
        now = dt_util.utcnow()
        _async_update_expiry_issue(hass, entry, certificate, now)
        if now > certificate.not_after:
            entry.async_start_reauth(hass)

    check()
    entry.async_on_unload(async_track_time_interval(hass, check, CERTIFICATE_CHECK_INTERVAL))


@callback
def _async_update_expiry_issue(
    hass: HomeAssistant, entry: FractalNodeConfigEntry, certificate: CertificateInfo, now: datetime
) -> None:
    issue_id = _expiry_issue_id(entry)
    if not certificate.expires_within(now, CERTIFICATE_WARNING_PERIOD):
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=ISSUE_CERTIFICATE_EXPIRING,
        translation_placeholders={
            "name": entry.title,
            "expiry": certificate.not_after.strftime("%Y-%m-%d %H:%M UTC"),
            "days": str(max((certificate.not_after - now).days, 0)),
        },
    )


def _expiry_issue_id(entry: FractalNodeConfigEntry) -> str:
    return f"{ISSUE_CERTIFICATE_EXPIRING}_{entry.entry_id}"
