"""The shadow engine: get, update, delete and list with AWS IoT semantics, persisted in SQLite.

Synchronous and transport-free: the MQTT and REST fronts hand it the thing name, the shadow name
(``""`` for the classic shadow) and the raw request payload, and get back either the response
documents or a :class:`Rejection` carrying AWS's error code and message. Nothing here raises on
bad input.

Decisions where AWS's documentation is silent (also in docs/local-aggregator.md):

* ``update/delta`` is published only for updates that write ``desired``, and carries the desired
  values of that update that reported does not match (AWS's documented example behaviour).
* The 8 KB limit applies to the merged state, desired and reported together (metadata
  excluded), measured as compact UTF-8 JSON ``{"desired":...,"reported":...}``; the nesting
  limit (6) counts the section itself and the objects and arrays inside it.
* A deleted shadow keeps its version for 48 hours: an update within that time continues the
  numbering, later it starts again from 0 (as AWS documents).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .documents import (
    JsonObject,
    delta,
    json_size,
    merge,
    merge_metadata,
    metadata_for,
    nesting_depth,
    select,
    without_nulls,
)

STATE_LIMIT_BYTES = 8 * 1024
REQUEST_LIMIT_BYTES = 128 * 1024
MAX_NESTING = 6
CLIENT_TOKEN_LIMIT_BYTES = 64
VERSION_MEMORY_SECONDS = 48 * 3600
THING_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
SHADOW_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,64}")
SECTIONS = ("desired", "reported")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shadows (
    thing TEXT NOT NULL,
    name TEXT NOT NULL,          -- '' for the classic shadow
    state TEXT,                  -- {"desired": ..., "reported": ...}; NULL once deleted
    metadata TEXT,
    version INTEGER NOT NULL,
    changed_at INTEGER NOT NULL, -- epoch seconds of the last update or of the deletion
    PRIMARY KEY (thing, name)
)
"""


@dataclass(frozen=True)
class Rejection:
    """A request the service refused, as AWS reports it on ``.../rejected`` or over HTTP."""

    code: int
    message: str
    client_token: str | None = None

    def payload(self, timestamp: int) -> JsonObject:
        document: JsonObject = {"code": self.code, "message": self.message}
        document["timestamp"] = timestamp
        if self.client_token is not None:
            document["clientToken"] = self.client_token
        return document


@dataclass(frozen=True)
class UpdateResult:
    """What an accepted update publishes: ``accepted``, ``documents`` and maybe ``delta``."""

    accepted: JsonObject
    documents: JsonObject
    delta: JsonObject | None


@dataclass(frozen=True)
class _Shadow:
    state: JsonObject
    metadata: JsonObject
    version: int


class _Invalid(Exception):
    """Internal: a request that must be rejected (never escapes the store)."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.message)
        self.rejection = rejection


def _reject(code: int, message: str, client_token: str | None = None) -> _Invalid:
    return _Invalid(Rejection(code, message, client_token))


class ShadowStore:
    """Classic and named shadows of many things in one SQLite file."""

    def __init__(self, path: Path | str, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def now(self) -> int:
        return int(self._clock())

    # -- operations ---------------------------------------------------------------------------

    def get(self, thing: str, name: str = "", payload: bytes = b"") -> JsonObject | Rejection:
        """The full document (state with delta, metadata, version), or 404."""
        opened = self._open_existing(thing, name, payload)
        if isinstance(opened, Rejection):
            return opened
        shadow, token = opened
        state: JsonObject = {key: shadow.state[key] for key in SECTIONS if key in shadow.state}
        difference = delta(shadow.state.get("desired", {}), shadow.state.get("reported", {}))
        if difference:
            state["delta"] = difference
        return self._response(
            {"state": state, "metadata": shadow.metadata, "version": shadow.version}, token
        )

    def update(self, thing: str, name: str, payload: bytes) -> UpdateResult | Rejection:
        """Merge the request into the shadow, creating it if needed."""
        try:
            request = _parse_update(payload)
            token = _client_token(request)
            _check_names(thing, name, token)
            patch = _validated_state(request, token)
            expected_version = _requested_version(request, token)
            return self._apply_update(thing, name, patch, expected_version, token)
        except _Invalid as invalid:
            return invalid.rejection

    def delete(self, thing: str, name: str = "", payload: bytes = b"") -> JsonObject | Rejection:
        """Delete the shadow (its version is remembered for 48 hours), or 404."""
        opened = self._open_existing(thing, name, payload)
        if isinstance(opened, Rejection):
            return opened
        shadow, token = opened
        now = self.now()
        with self._db:
            self._db.execute(
                "UPDATE shadows SET state = NULL, metadata = NULL, changed_at = ?"
                " WHERE thing = ? AND name = ?",
                (now, thing, name),
            )
        return self._response({"version": shadow.version}, token)

    def _open_existing(
        self, thing: str, name: str, payload: bytes
    ) -> tuple[_Shadow, str | None] | Rejection:
        """A get or delete request's existing shadow and client token, or why not."""
        try:
            token = _client_token(_optional_request(payload))
            _check_names(thing, name, token)
            return self._load_existing(thing, name, token), token
        except _Invalid as invalid:
            return invalid.rejection

    def list_named(
        self, thing: str, page_size: int = 25, next_token: str | None = None
    ) -> JsonObject | Rejection:
        """Names of the thing's existing named shadows, in name order, paged."""
        if not THING_NAME.fullmatch(thing):
            return Rejection(400, "Invalid thing name")
        if not 1 <= page_size <= 100:
            return Rejection(400, "Invalid page size")
        rows = self._db.execute(
            "SELECT name FROM shadows WHERE thing = ? AND name > ? AND state IS NOT NULL"
            " ORDER BY name LIMIT ?",
            (thing, next_token or "", page_size + 1),
        ).fetchall()
        names = [row[0] for row in rows[:page_size]]
        result: JsonObject = {"results": names, "timestamp": self.now()}
        if len(rows) > page_size:
            result["nextToken"] = names[-1]
        return result

    # -- internals ----------------------------------------------------------------------------

    def _apply_update(
        self,
        thing: str,
        name: str,
        patch: JsonObject,
        expected_version: int | None,
        token: str | None,
    ) -> UpdateResult:
        previous = self._load(thing, name)
        current_version = self._current_version(thing, name)
        if expected_version is not None and expected_version != current_version:
            raise _reject(409, "Version conflict", token)
        now = self.now()
        base = previous or _Shadow({}, {}, current_version)
        state, metadata = _merged(base, patch, now)
        if json_size(state) > STATE_LIMIT_BYTES:
            raise _reject(413, "The payload exceeds the maximum size allowed", token)
        current = _Shadow(state, metadata, current_version + 1)
        self._save(thing, name, current, now)
        return UpdateResult(
            accepted=self._response(
                {
                    "state": patch,
                    "metadata": metadata_for(patch, now),
                    "version": current.version,
                },
                token,
            ),
            documents=self._response(_documents(previous, current), token),
            delta=self._delta_message(patch, current, token),
        )

    def _delta_message(
        self, patch: JsonObject, shadow: _Shadow, token: str | None
    ) -> JsonObject | None:
        written = patch.get("desired")
        if not isinstance(written, dict):
            return None
        difference = delta(without_nulls(written), shadow.state.get("reported", {}))
        if not difference:
            return None
        metadata = select(shadow.metadata.get("desired", {}), difference)
        return self._response(
            {"state": difference, "metadata": metadata, "version": shadow.version}, token
        )

    def _response(self, document: JsonObject, token: str | None) -> JsonObject:
        document["timestamp"] = self.now()
        if token is not None:
            document["clientToken"] = token
        return document

    def _load(self, thing: str, name: str) -> _Shadow | None:
        row = self._db.execute(
            "SELECT state, metadata, version FROM shadows"
            " WHERE thing = ? AND name = ? AND state IS NOT NULL",
            (thing, name),
        ).fetchone()
        if row is None:
            return None
        return _Shadow(json.loads(row[0]), json.loads(row[1]), row[2])

    def _load_existing(self, thing: str, name: str, token: str | None) -> _Shadow:
        shadow = self._load(thing, name)
        if shadow is None:
            raise _reject(404, f"No shadow exists with name: '{name or thing}'", token)
        return shadow

    def _current_version(self, thing: str, name: str) -> int:
        """The stored version; a deletion older than 48 hours is forgotten."""
        row = self._db.execute(
            "SELECT version, state IS NULL, changed_at FROM shadows WHERE thing = ? AND name = ?",
            (thing, name),
        ).fetchone()
        if row is None:
            return 0
        version, deleted, changed_at = row
        if deleted and self.now() - changed_at > VERSION_MEMORY_SECONDS:
            return 0
        return int(version)

    def _save(self, thing: str, name: str, shadow: _Shadow, now: int) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO shadows"
                " (thing, name, state, metadata, version, changed_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    thing,
                    name,
                    json.dumps(shadow.state),
                    json.dumps(shadow.metadata),
                    shadow.version,
                    now,
                ),
            )


# -- request validation (module functions: pure) ----------------------------------------------


def _parse_json(payload: bytes) -> Any:
    if len(payload) > REQUEST_LIMIT_BYTES:
        raise _reject(413, "The payload exceeds the maximum size allowed")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise _reject(415, "Unsupported documented encoding; supported encoding is UTF-8") from None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise _reject(400, "Payload contains invalid json") from None


def _parse_update(payload: bytes) -> JsonObject:
    request = _parse_json(payload)
    if not isinstance(request, dict):
        raise _reject(400, "Payload contains invalid json")
    return request


def _optional_request(payload: bytes) -> JsonObject:
    """Get and delete accept an empty payload or a JSON object (for the clientToken)."""
    if not payload.strip():
        return {}
    return _parse_update(payload)


def _client_token(request: JsonObject) -> str | None:
    token = request.get("clientToken")
    if token is None:
        return None
    if not isinstance(token, str) or len(token.encode()) > CLIENT_TOKEN_LIMIT_BYTES:
        raise _reject(400, "Invalid clientToken")
    return token


def _check_names(thing: str, name: str, token: str | None) -> None:
    if not THING_NAME.fullmatch(thing):
        raise _reject(400, "Invalid thing name", token)
    if name and not SHADOW_NAME.fullmatch(name):
        raise _reject(400, "Invalid shadow name", token)


def _validated_state(request: JsonObject, token: str | None) -> JsonObject:
    if "state" not in request:
        raise _reject(400, "Missing required node: state", token)
    state = request["state"]
    if not isinstance(state, dict):
        raise _reject(400, "State node must be an object", token)
    if any(key not in SECTIONS for key in state):
        raise _reject(400, "State contains an invalid node", token)
    for section in SECTIONS:
        value = state.get(section)
        if value is not None and not isinstance(value, dict):
            raise _reject(400, f"{section.capitalize()} node must be an object", token)
        if nesting_depth(value) > MAX_NESTING:
            message = f"JSON contains too many levels of nesting; maximum is {MAX_NESTING}"
            raise _reject(400, message, token)
    return state


def _requested_version(request: JsonObject, token: str | None) -> int | None:
    version = request.get("version")
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise _reject(400, "Invalid version", token)
    return version


def _merged(base: _Shadow, patch: JsonObject, now: int) -> tuple[JsonObject, JsonObject]:
    """State and metadata after the patch; a section set to ``null`` (or emptied) disappears."""
    state: JsonObject = {}
    metadata: JsonObject = {}
    for section in SECTIONS:
        old_state = base.state.get(section, {})
        old_metadata = base.metadata.get(section, {})
        if section not in patch:
            new_state, new_metadata = old_state, old_metadata
        elif patch[section] is None:
            new_state, new_metadata = {}, {}
        else:
            new_state = merge(old_state, patch[section])
            new_metadata = merge_metadata(old_metadata, old_state, patch[section], now)
        if new_state:
            state[section] = new_state
            metadata[section] = new_metadata
    return state, metadata


def _documents(previous: _Shadow | None, current: _Shadow) -> JsonObject:
    documents: JsonObject = {"current": _snapshot(current)}
    if previous is not None:
        documents["previous"] = _snapshot(previous)
    return documents


def _snapshot(shadow: _Shadow) -> JsonObject:
    return {"state": shadow.state, "metadata": shadow.metadata, "version": shadow.version}
