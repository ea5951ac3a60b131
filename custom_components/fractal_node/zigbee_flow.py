"""The "Add Zigbee meter" flow: a config subentry per Zigbee clamp meter or smart plug.

ZHA loaded: user -> the devices of ZHA's network with a Metering (0x0702) or Electrical
Measurement (0x0B04) cluster, and the role -> subentry. ZHA not loaded: stick -> the serial
port (or socket:// coordinator) of an EZSP stick is checked: one program per stick, so a stick
a ZHA entry is configured with is refused with the reason; a free stick is checked with bellows'
link handshake, and the installer is told to set ZHA up on it (the node reads meters through
ZHA's network; it does not run a Zigbee network of its own). reconfigure changes the role.
"""

from __future__ import annotations

from typing import Any, Final

import voluptuous as vol
from homeassistant.config_entries import SubentryFlowResult
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)

from .const import CONF_ROLE
from .fractal.zigbee import MeterCandidate, meter_candidates
from .fractal.zigbee.stick import StickError, port_in_use, probe_ezsp
from .meter_flow import ROLE_SCHEMA, MeterSubentryFlow
from .zigbee_meter import (
    CONF_CLUSTERS,
    CONF_IEEE,
    CONF_MANUFACTURER,
    CONF_MODEL,
    zha_application,
    zha_stick_paths,
    zigbee_unique_id,
)

CONF_PATH: Final = "path"
STICK_SCHEMA = vol.Schema({vol.Required(CONF_PATH): TextSelector()})


class ZigbeeMeterSubentryFlow(MeterSubentryFlow):
    """Add a Zigbee clamp meter or smart plug of ZHA's network."""

    def __init__(self) -> None:
        self._candidates: dict[str, MeterCandidate] = {}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        application = zha_application(self.hass)
        if application is None:
            return await self.async_step_stick()
        self._candidates = {c.ieee: c for c in meter_candidates(application)}
        if not self._candidates:
            return self.async_abort(reason="no_zigbee_meters")
        errors: dict[str, str] = {}
        if user_input is not None:
            candidate = self._candidates.get(user_input[CONF_IEEE])
            if candidate is None:  # left ZHA's network while the form was open
                errors[CONF_IEEE] = "zigbee_device_gone"
            elif self._configured(candidate.ieee):
                return self.async_abort(reason="already_configured")
            elif self._grid_meter_taken(user_input[CONF_ROLE]):
                errors[CONF_ROLE] = "grid_meter_taken"
            else:
                return self._async_create(candidate, user_input[CONF_ROLE])
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(self._device_schema(), user_input),
            errors=errors,
            description_placeholders={"found": str(len(self._candidates))},
        )

    async def async_step_stick(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """No ZHA: is there a free EZSP stick? Then ZHA is the way to its meters."""
        errors: dict[str, str] = {}
        placeholders = {"owner": "", "detail": ""}
        if user_input is not None:
            path = user_input[CONF_PATH].strip()
            owner = await self.hass.async_add_executor_job(
                port_in_use, path, zha_stick_paths(self.hass)
            )
            if owner is not None:
                errors[CONF_PATH] = "stick_in_use"
                placeholders["owner"] = f"ZHA ({owner})"
            else:
                try:
                    stick = await probe_ezsp(path)
                except StickError as error:
                    errors[CONF_PATH] = "stick_no_answer"
                    placeholders["detail"] = str(error)
                else:
                    return self.async_abort(
                        reason="stick_needs_zha",
                        description_placeholders={
                            "path": path,
                            "version": str(stick.ezsp_version),
                        },
                    )
        return self.async_show_form(
            step_id="stick",
            data_schema=self.add_suggested_values_to_schema(STICK_SCHEMA, user_input),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _async_create(self, candidate: MeterCandidate, role: str) -> SubentryFlowResult:
        return self.async_create_entry(
            title=candidate.title,
            data={
                CONF_IEEE: candidate.ieee,
                CONF_ROLE: role,
                CONF_MANUFACTURER: candidate.manufacturer,
                CONF_MODEL: candidate.model,
                CONF_CLUSTERS: list(candidate.clusters),
            },
            unique_id=zigbee_unique_id(candidate.ieee),
        )

    def _device_schema(self) -> vol.Schema:
        options = [
            SelectOptionDict(value=ieee, label=candidate.title)
            for ieee, candidate in sorted(self._candidates.items())
        ]
        device = SelectSelector(
            SelectSelectorConfig(options=options, mode=SelectSelectorMode.DROPDOWN)
        )
        return vol.Schema({vol.Required(CONF_IEEE, default=options[0]["value"]): device}).extend(
            ROLE_SCHEMA.schema
        )

    def _configured(self, ieee: str) -> bool:
        unique_id = zigbee_unique_id(ieee)
        return any(sub.unique_id == unique_id for sub in self._get_entry().subentries.values())
