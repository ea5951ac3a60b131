"""The flexibility events the aggregator was asked to deliver, kept in the fleet store so the
delivery report can pick one and the baseline can leave event days out.

Table `report_flex_events` (created on first use, in the store's own file): the validated
`fractal.flex_event.v1` document as JSON, keyed by its id."""

from __future__ import annotations

import json
from collections.abc import Mapping

from fractal.protocol import FlexibilityEvent, parse, to_jsonable

from aggregator_cloud.store import SqliteStore
from aggregator_cloud.store.sqlite import iso

_SCHEMA = """
CREATE TABLE IF NOT EXISTS report_flex_events (
    id TEXT PRIMARY KEY,
    start TEXT NOT NULL,
    "end" TEXT NOT NULL,
    document TEXT NOT NULL
) WITHOUT ROWID
"""


class EventConflict(ValueError):
    """An event with this id is stored already, with different content."""


class InvalidEvent(ValueError):
    """Not a valid flexibility event; `problems` says every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("not a valid flexibility event: " + "; ".join(problems))
        self.problems = problems


def parse_event(raw: bytes | str | Mapping[str, object]) -> FlexibilityEvent:
    parsed = parse(FlexibilityEvent, raw)
    if parsed.document is None:
        raise InvalidEvent([str(problem) for problem in parsed.problems])
    return parsed.document


def record_event(store: SqliteStore, event: FlexibilityEvent) -> bool:
    """Keep `event`; True if it is new. The same event again is a no-op; a different event
    under a stored id raises EventConflict (the stored one is kept)."""
    document = json.dumps(to_jsonable(event), sort_keys=True)
    with store.atomic() as db:
        db.execute(_SCHEMA)
        row = db.execute(
            "SELECT document FROM report_flex_events WHERE id = ?", (event.id,)
        ).fetchone()
        if row is not None:
            if row[0] != document:
                raise EventConflict(f"flexibility event {event.id!r} exists already")
            return False
        db.execute(
            'INSERT INTO report_flex_events (id, start, "end", document) VALUES (?, ?, ?, ?)',
            (event.id, iso(event.start), iso(event.end), document),
        )
    return True


def stored_events(store: SqliteStore) -> list[FlexibilityEvent]:
    """Every stored event, newest start first."""
    with store.atomic() as db:
        db.execute(_SCHEMA)
        rows = db.execute(
            "SELECT document FROM report_flex_events ORDER BY start DESC, id"
        ).fetchall()
    return [parse_event(row[0]) for row in rows]


def stored_event(store: SqliteStore, event_id: str) -> FlexibilityEvent | None:
    return next((event for event in stored_events(store) if event.id == event_id), None)
