"""Glowmarkt meters as the "Add smart meter (Glowmarkt cloud)" flow stores them, and the local
Glowmarkt API the integration is pointed at."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME

from custom_components.fractal_node import glowmarkt
from custom_components.fractal_node.const import CONF_ROLE
from custom_components.fractal_node.glowmarkt import CONF_RESOURCES, SUBENTRY_GLOWMARKT
from tests.support.glowmarkt_server import (
    EXPORT_ID,
    GAS_ID,
    IMPORT_ID,
    PASSWORD,
    USERNAME,
    GlowmarktServer,
)

CLASSIFIERS = {
    IMPORT_ID: "electricity.consumption",
    EXPORT_ID: "electricity.export",
    GAS_ID: "gas.consumption",
}


@pytest.fixture
async def api(
    socket_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[GlowmarktServer]:
    """A local Glowmarkt API; the integration's clients are pointed at it."""
    async with GlowmarktServer.started() as server:
        monkeypatch.setattr(glowmarkt, "BASE_URL", server.url)
        yield server


def glowmarkt_subentry(
    username: str = USERNAME, password: str = PASSWORD, resources: list[str] | None = None
) -> ConfigSubentryData:
    return ConfigSubentryData(
        data={
            CONF_USERNAME: username,
            CONF_PASSWORD: password,
            CONF_RESOURCES: [
                {"id": rid, "classifier": CLASSIFIERS[rid], "name": rid}
                for rid in resources or [IMPORT_ID]
            ],
            CONF_ROLE: "monitor",
        },
        subentry_type=SUBENTRY_GLOWMARKT,
        title="Smart meter (Glowmarkt)",
        unique_id=f"glowmarkt_{username.lower()}",
    )
