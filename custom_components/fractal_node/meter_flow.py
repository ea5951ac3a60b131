"""What every smart-meter subentry flow shares: the meter's role, and changing it later."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigSubentryFlow, SubentryFlowResult
from homeassistant.helpers.selector import SelectSelector, SelectSelectorConfig

from .const import CONF_ROLE, Role
from .meter_entities import METER_ROLES

ROLE = SelectSelector(SelectSelectorConfig(options=list(METER_ROLES), translation_key="meter_role"))
ROLE_SCHEMA = vol.Schema({vol.Required(CONF_ROLE, default=Role.GRID_METER.value): ROLE})


class MeterSubentryFlow(ConfigSubentryFlow):
    """A meter's subentry flow: its kind adds the steps that find the meter."""

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change what the meter is to the node."""
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
            if self._grid_meter_taken(user_input[CONF_ROLE], subentry.subentry_id):
                errors[CONF_ROLE] = "grid_meter_taken"
            else:
                return self.async_update_and_abort(
                    self._get_entry(),
                    subentry,
                    data={**subentry.data, CONF_ROLE: user_input[CONF_ROLE]},
                )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                ROLE_SCHEMA, user_input or subentry.data
            ),
            errors=errors,
            description_placeholders={"device": subentry.title},
        )

    def _grid_meter_taken(self, role: str, except_subentry: str | None = None) -> bool:
        """Two grid meters would count the grid twice in the node's power flows."""
        if role != Role.GRID_METER:
            return False
        return any(
            sub.data.get(CONF_ROLE) == Role.GRID_METER and subentry_id != except_subentry
            for subentry_id, sub in self._get_entry().subentries.items()
        )
