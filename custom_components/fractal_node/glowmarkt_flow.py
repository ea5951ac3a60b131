"""The "Add smart meter (Glowmarkt cloud)" flow: a config subentry per Bright account.

user (username, password: checked by logging in and listing the account's meters) ->
resources (which electricity import/export and gas streams to import) -> subentry.
Reconfigure runs the same two steps: it is where a changed password is entered (Home
Assistant 2025.4 has no reauthentication for subentries; the parent's would ask for the
node's certificate), and a repair issue sends the user there when the API refuses it.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import SOURCE_RECONFIGURE, ConfigSubentryFlow, SubentryFlowResult
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .const import CONF_ROLE
from .fractal.glowmarkt import (
    GlowmarktAuthError,
    GlowmarktError,
    GlowmarktRateLimited,
    Resource,
)
from .glowmarkt import CONF_RESOURCES, new_client
from .meter_entities import METER_ROLE_MONITOR

CREDENTIALS_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_USERNAME): TextSelector(
            TextSelectorConfig(type=TextSelectorType.EMAIL, autocomplete="username")
        ),
        vol.Required(CONF_PASSWORD): TextSelector(
            TextSelectorConfig(type=TextSelectorType.PASSWORD, autocomplete="current-password")
        ),
    }
)
TITLE = "Smart meter (Glowmarkt)"


class GlowmarktSubentryFlow(ConfigSubentryFlow):
    """Add the smart meters of a Bright (Glowmarkt) account to the node."""

    def __init__(self) -> None:
        self._credentials: dict[str, str] = {}
        self._offered: list[Resource] = []

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        return await self._async_step_credentials("user", user_input)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """A new password (or another account); the streams are offered again."""
        return await self._async_step_credentials("reconfigure", user_input)

    async def async_step_resources(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            chosen = [r for r in self._offered if r.resource_id in user_input[CONF_RESOURCES]]
            if chosen:
                return self._async_finish(chosen)
            errors[CONF_RESOURCES] = "no_resources_chosen"
        options = [
            SelectOptionDict(value=r.resource_id, label=f"{r.entity_name}: {r.name}")
            for r in self._offered
        ]
        schema = vol.Schema(
            {
                vol.Required(CONF_RESOURCES, default=self._default_choice()): SelectSelector(
                    SelectSelectorConfig(
                        options=options, multiple=True, mode=SelectSelectorMode.LIST
                    )
                )
            }
        )
        return self.async_show_form(step_id="resources", data_schema=schema, errors=errors)

    async def _async_step_credentials(
        self, step_id: str, user_input: dict[str, Any] | None
    ) -> SubentryFlowResult:
        errors: dict[str, str] = {}
        placeholders = {"detail": ""}
        if user_input is not None:
            username = user_input[CONF_USERNAME].strip()
            if self._taken(username):
                return self.async_abort(reason="already_configured")
            try:
                found = await new_client(self.hass, username, user_input[CONF_PASSWORD]).resources()
            except GlowmarktAuthError:
                errors["base"] = "invalid_auth"
            except GlowmarktRateLimited as err:
                errors["base"], placeholders["detail"] = "rate_limited", str(err)
            except GlowmarktError as err:
                errors["base"], placeholders["detail"] = "cannot_connect", str(err)
            else:
                self._offered = [resource for resource in found if resource.supported]
                if not self._offered:
                    return self.async_abort(reason="no_glowmarkt_meters")
                # The password is kept exactly as typed: spaces can be part of it.
                self._credentials = {
                    CONF_USERNAME: username,
                    CONF_PASSWORD: user_input[CONF_PASSWORD],
                }
                return await self.async_step_resources()
        suggested = user_input or self._current_username()
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(CREDENTIALS_SCHEMA, suggested),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _taken(self, username: str) -> bool:
        """Another meter subentry of this node reads the same account already."""
        own = self._get_reconfigure_subentry() if self.source == SOURCE_RECONFIGURE else None
        return any(
            sub.unique_id == _unique_id(username) and sub is not own
            for sub in self._get_entry().subentries.values()
        )

    def _current_username(self) -> dict[str, Any]:
        if self.source != SOURCE_RECONFIGURE:
            return {}
        return {CONF_USERNAME: self._get_reconfigure_subentry().data[CONF_USERNAME]}

    def _default_choice(self) -> list[str]:
        """Everything offered, or when reconfiguring, what was chosen before (if offered)."""
        offered = [r.resource_id for r in self._offered]
        if self.source != SOURCE_RECONFIGURE:
            return offered
        before = {item["id"] for item in self._get_reconfigure_subentry().data[CONF_RESOURCES]}
        return [resource_id for resource_id in offered if resource_id in before] or offered

    def _async_finish(self, chosen: list[Resource]) -> SubentryFlowResult:
        data = {
            **self._credentials,
            CONF_RESOURCES: [
                {"id": r.resource_id, "classifier": r.classifier, "name": r.name} for r in chosen
            ],
            # Half-hourly and often a day late: shown, never the node's grid meter.
            CONF_ROLE: METER_ROLE_MONITOR,
        }
        unique_id = _unique_id(self._credentials[CONF_USERNAME])
        if self.source == SOURCE_RECONFIGURE:
            return self.async_update_and_abort(
                self._get_entry(), self._get_reconfigure_subentry(), data=data, unique_id=unique_id
            )
        return self.async_create_entry(title=TITLE, data=data, unique_id=unique_id)


def _unique_id(username: str) -> str:
    return f"glowmarkt_{username.lower()}"
