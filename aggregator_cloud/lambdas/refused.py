"""Events a handler refused, kept in the history bucket so that nothing is lost.

A refused event (bad JSON shape, a batch for another node, a document the protocol rejects)
would only be retried into the same refusal, so the Lambda does not fail for it: it logs the
reasons and stores the event with them under
`refused/date=YYYY-MM-DD/<kind>/<sha-256 of the event>.json`, where an operator can read it,
fix the sender and replay it. The key is the event's hash, so a retried event is kept once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

LOGGER = logging.getLogger(__name__)
PREFIX: Final = "refused/"


def refused_key(kind: str, event: object, when: datetime) -> str:
    digest = hashlib.sha256(_canonical(event).encode()).hexdigest()
    return f"{PREFIX}date={when.astimezone(UTC).date().isoformat()}/{kind}/{digest}.json"


def keep_refused(
    s3: Any, bucket: str, kind: str, event: object, *, problems: Sequence[str], now: datetime
) -> str:
    """Log why `event` was refused and store it with its problems; return its key."""
    key = refused_key(kind, event, now)
    LOGGER.warning("%s event refused (kept as s3://%s/%s): %s", kind, bucket, key, problems)
    record = {
        "kind": kind,
        "received": now.astimezone(UTC).isoformat(),
        "problems": list(problems),
        "event": event,
    }
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=_canonical(record).encode(),
        ContentType="application/json",
    )
    return key


def _canonical(value: object) -> str:
    """Stable JSON text of anything an event may hold (`repr` for what JSON cannot say)."""
    return json.dumps(value, sort_keys=True, default=repr, separators=(",", ":"))
