"""Shared helpers of the integration's tests: entries as the config flow makes them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fractal_node.const import (
    CONF_CA_PEM,
    CONF_CERTIFICATE_PEM,
    CONF_ENDPOINT,
    CONF_LINK,
    CONF_NODE_ID,
    CONF_PRIVATE_KEY_PEM,
    CONF_TAGS,
    DOMAIN,
)
from tests.support.certificates import CertificateAuthority, Issued, now_utc

NODE_ID = "elm-road-12"
NAME = "Elm Road 12"
TAGS = {"street": "Elm Road", "feeder": "F12"}
AWS_ENDPOINT = "abc123-ats.iot.eu-west-2.amazonaws.com"
# Linked entries really connect: to a loopback port where nothing listens (refused at once),
# unless a test starts a real aggregator.
LOCAL_BROKER = "127.0.0.1"


def local_settings(ca: CertificateAuthority, node: Issued) -> dict[str, Any]:
    return {
        CONF_HOST: LOCAL_BROKER,
        CONF_PORT: 8883,
        CONF_CA_PEM: ca.certificate_pem,
        CONF_CERTIFICATE_PEM: node.certificate_pem,
        CONF_PRIVATE_KEY_PEM: node.private_key_pem,
    }


def aws_settings(ca: CertificateAuthority, node: Issued) -> dict[str, Any]:
    return {
        CONF_ENDPOINT: AWS_ENDPOINT,
        CONF_PORT: 8883,
        CONF_CERTIFICATE_PEM: node.certificate_pem,
        CONF_PRIVATE_KEY_PEM: node.private_key_pem,
        CONF_CA_PEM: ca.certificate_pem,
    }


def node_entry(
    link: str = "standalone",
    tags: dict[str, str] | None = None,
    devices: list[ConfigSubentryData] | None = None,
    **settings: Any,
) -> MockConfigEntry:
    """A config entry as the config flow creates it, with devices added as subentries."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=NAME,
        unique_id=NODE_ID,
        data={CONF_NAME: NAME, CONF_NODE_ID: NODE_ID, CONF_LINK: link, **settings},
        options={CONF_TAGS: TAGS if tags is None else tags},
        version=1,
        minor_version=1,
        subentries_data=devices or [],
    )


def issue_for(ca: CertificateAuthority, *, valid_for: timedelta) -> Issued:
    """A node certificate valid from a day ago until ``valid_for`` from now."""
    now = now_utc()
    return ca.issue(NODE_ID, not_before=now - timedelta(days=1), not_after=now + valid_for)


async def until(condition: Callable[[], bool], limit: float = 30.0) -> None:
    """Wait until `condition()` holds (a real broker or device answers in its own time)."""
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 (state from several sources; no Event)
            await asyncio.sleep(0.05)


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
