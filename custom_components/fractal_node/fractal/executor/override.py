"""The householder's override: one device in one mode until a time, as a protocol Plan.

It outranks every other plan (but never the envelope) and ends by itself at its expiry. Input
comes from people: anything wrong is returned as problems, never raised.
"""

from __future__ import annotations

import math
from datetime import datetime

from ..protocol import MAX_HORIZON, Plan, Problem, Step, parse
from .envelope import Envelope

STEP_S: Step = 300


def override_plan(
    envelope: Envelope,
    device_id: str,
    mode: object,
    value: object,
    *,
    now: datetime,
    until: datetime,
) -> tuple[Plan | None, list[Problem]]:
    """The override plan, or None and why it cannot be made."""
    device = envelope.device(device_id)
    if device is None:
        return None, [Problem("device", f"this node has no device {device_id!r}")]
    if until.tzinfo is None:
        return None, [Problem("until", "needs a time zone")]
    if not now < until <= now + MAX_HORIZON:
        return None, [Problem("until", "must be after now and at most 48 hours ahead")]
    slots = math.ceil((until - now).total_seconds() / STEP_S)
    window: dict[str, object] = {"start": 0, "end": slots, "mode": mode}
    if value is not None:
        window["value"] = value
    raw = {
        "schema": "fractal.plan.v1",
        "id": f"override-{device.id}-{now:%Y%m%dT%H%M%S}",
        "node": envelope.descriptor.node,
        "issued": now.isoformat(),
        "start": now.isoformat(),
        "step": STEP_S,
        "slots": slots,
        "expiry": until.isoformat(),
        "source": "override",
        "devices": {device.id: {"kind": device.kind.value, "windows": [window]}},
    }
    parsed = parse(Plan, raw)
    if parsed.document is None:
        return None, list(parsed.problems)
    refused = envelope.envelope_check(parsed.document)
    return (None, refused) if refused else (parsed.document, [])
