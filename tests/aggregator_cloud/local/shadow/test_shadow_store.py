"""The shadow engine: AWS IoT Device Shadow semantics and error codes, without any transport."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aggregator_cloud.local.shadow.store import Rejection, ShadowStore, UpdateResult

T0 = 1_800_000_000


class Clock:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> ShadowStore:
    shadows = ShadowStore(tmp_path / "shadows.sqlite3", clock)
    yield shadows
    shadows.close()


def body(document: Any) -> bytes:
    return json.dumps(document).encode()


def update(
    store: ShadowStore, document: Any, thing: str = "home-1", name: str = ""
) -> UpdateResult:
    result = store.update(thing, name, body(document))
    assert isinstance(result, UpdateResult), result
    return result


def rejected(result: object) -> Rejection:
    assert isinstance(result, Rejection), result
    return result


def document(store: ShadowStore, thing: str = "home-1", name: str = "") -> dict[str, Any]:
    result = store.get(thing, name)
    assert isinstance(result, dict), result
    return result


# -- get, update, delete ----------------------------------------------------------------------


def test_get_of_a_missing_shadow_is_404_naming_it(store: ShadowStore) -> None:
    assert store.get("home-1") == Rejection(404, "No shadow exists with name: 'home-1'")
    assert store.get("home-1", "plan") == Rejection(404, "No shadow exists with name: 'plan'")


def test_update_creates_the_shadow_at_version_1(store: ShadowStore) -> None:
    result = update(store, {"state": {"reported": {"soc": 50}}})
    assert result.accepted == {
        "state": {"reported": {"soc": 50}},
        "metadata": {"reported": {"soc": {"timestamp": T0}}},
        "version": 1,
        "timestamp": T0,
    }
    assert document(store) == {
        "state": {"reported": {"soc": 50}},
        "metadata": {"reported": {"soc": {"timestamp": T0}}},
        "version": 1,
        "timestamp": T0,
    }


def test_each_update_increments_the_version(store: ShadowStore) -> None:
    versions = [
        update(store, {"state": {"reported": {"n": n}}}).accepted["version"] for n in range(3)
    ]
    assert versions == [1, 2, 3]


def test_update_merges_partially_and_null_deletes(store: ShadowStore, clock: Clock) -> None:
    update(store, {"state": {"desired": {"mode": "balance", "limit": {"w": 3000, "hard": True}}}})
    clock.now += 10
    update(store, {"state": {"desired": {"limit": {"w": None}, "export": 0}}})
    current = document(store)
    assert current["state"]["desired"] == {
        "mode": "balance",
        "limit": {"hard": True},
        "export": 0,
    }
    assert current["metadata"]["desired"] == {
        "mode": {"timestamp": T0},
        "limit": {"hard": {"timestamp": T0}},
        "export": {"timestamp": T0 + 10},
    }


def test_a_null_section_removes_it_and_emptied_sections_disappear(store: ShadowStore) -> None:
    update(store, {"state": {"desired": {"a": 1}, "reported": {"b": 2}}})
    update(store, {"state": {"desired": None}})
    assert document(store)["state"] == {"reported": {"b": 2}}
    update(store, {"state": {"reported": {"b": None}}})
    assert document(store)["state"] == {}


def test_arrays_are_replaced_whole(store: ShadowStore) -> None:
    update(store, {"state": {"desired": {"slots": [1, 2, 3]}}})
    update(store, {"state": {"desired": {"slots": [7]}}})
    assert document(store)["state"]["desired"] == {"slots": [7]}
    assert document(store)["metadata"]["desired"] == {"slots": [{"timestamp": T0}]}


def test_get_includes_the_delta_between_desired_and_reported(store: ShadowStore) -> None:
    update(store, {"state": {"desired": {"mode": "charge", "w": 2000}}})
    update(store, {"state": {"reported": {"mode": "charge", "w": 1500}}})
    assert document(store)["state"]["delta"] == {"w": 2000}
    update(store, {"state": {"reported": {"w": 2000}}})
    assert "delta" not in document(store)["state"]


def test_delta_message_only_for_desired_updates_and_only_their_differences(
    store: ShadowStore,
) -> None:
    update(store, {"state": {"reported": {"mode": "hold", "w": 0}}})
    first = update(store, {"state": {"desired": {"mode": "charge", "w": 0}}})
    assert first.delta is not None
    assert first.delta["state"] == {"mode": "charge"}
    assert first.delta["metadata"] == {"mode": {"timestamp": T0}}
    assert first.delta["version"] == 2
    assert update(store, {"state": {"reported": {"soc": 40}}}).delta is None
    assert update(store, {"state": {"desired": {"w": 0}}}).delta is None


def test_documents_carry_previous_and_current(store: ShadowStore) -> None:
    created = update(store, {"state": {"reported": {"soc": 40}}})
    assert "previous" not in created.documents
    assert created.documents["current"]["version"] == 1
    changed = update(store, {"state": {"reported": {"soc": 41}}, "clientToken": "t-1"})
    assert changed.documents["previous"]["state"] == {"reported": {"soc": 40}}
    assert changed.documents["previous"]["version"] == 1
    assert changed.documents["current"]["state"] == {"reported": {"soc": 41}}
    assert changed.documents["current"]["version"] == 2
    assert changed.documents["clientToken"] == "t-1"


def test_update_with_the_current_version_is_accepted(store: ShadowStore) -> None:
    update(store, {"state": {"reported": {"a": 1}}})
    assert update(store, {"state": {"reported": {"a": 2}}, "version": 1}).accepted["version"] == 2


def test_stale_version_is_409_and_changes_nothing(store: ShadowStore) -> None:
    update(store, {"state": {"reported": {"a": 1}}})
    update(store, {"state": {"reported": {"a": 2}}})
    result = store.update(
        "home-1", "", body({"state": {"reported": {"a": 3}}, "version": 1, "clientToken": "c"})
    )
    assert result == Rejection(409, "Version conflict", "c")
    assert document(store)["state"]["reported"] == {"a": 2}
    assert document(store)["version"] == 2


def test_delete_then_get_is_404_and_the_version_continues(store: ShadowStore) -> None:
    update(store, {"state": {"reported": {"a": 1}}})
    update(store, {"state": {"reported": {"a": 2}}})
    assert store.delete("home-1", "", body({"clientToken": "d"})) == {
        "version": 2,
        "timestamp": T0,
        "clientToken": "d",
    }
    assert rejected(store.get("home-1")).code == 404
    assert rejected(store.delete("home-1")).code == 404
    recreated = update(store, {"state": {"reported": {"b": 1}}})
    assert recreated.accepted["version"] == 3
    assert "previous" not in recreated.documents
    assert document(store)["state"] == {"reported": {"b": 1}}


def test_a_shadow_deleted_over_48_hours_ago_restarts_at_version_1(
    store: ShadowStore, clock: Clock
) -> None:
    for n in range(3):
        update(store, {"state": {"reported": {"n": n}}})
    store.delete("home-1")
    clock.now += 48 * 3600 + 1
    assert update(store, {"state": {"reported": {"n": 0}}}).accepted["version"] == 1


def test_client_token_is_echoed_everywhere(store: ShadowStore) -> None:
    token = "x" * 64
    result = update(store, {"state": {"desired": {"a": 1}}, "clientToken": token})
    assert result.accepted["clientToken"] == token
    assert result.delta is not None
    assert result.delta["clientToken"] == token
    got = store.get("home-1", "", body({"clientToken": "g"}))
    assert isinstance(got, dict)
    assert got["clientToken"] == "g"
    assert store.get("nobody", "", body({"clientToken": "g"})) == Rejection(
        404, "No shadow exists with name: 'nobody'", "g"
    )


def test_get_and_delete_accept_an_empty_payload(store: ShadowStore) -> None:
    update(store, {"state": {"reported": {"a": 1}}})
    assert document(store)["version"] == 1
    assert isinstance(store.delete("home-1", "", b""), dict)


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "Payload contains invalid json"),
        (b"[1, 2]", "Payload contains invalid json"),
        (b"", "Payload contains invalid json"),
        (body({"desired": {"a": 1}}), "Missing required node: state"),
        (body({"state": [1]}), "State node must be an object"),
        (body({"state": None}), "State node must be an object"),
        (body({"state": {"delta": {"a": 1}}}), "State contains an invalid node"),
        (body({"state": {"desired": 5}}), "Desired node must be an object"),
        (body({"state": {"reported": "on"}}), "Reported node must be an object"),
        (body({"state": {"reported": {}}, "version": "3"}), "Invalid version"),
        (body({"state": {"reported": {}}, "version": -1}), "Invalid version"),
        (body({"state": {"reported": {}}, "version": True}), "Invalid version"),
        (body({"state": {"reported": {}}, "clientToken": "x" * 65}), "Invalid clientToken"),
        (body({"state": {"reported": {}}, "clientToken": 7}), "Invalid clientToken"),
    ],
)
def test_malformed_updates_are_400_and_lose_nothing(
    store: ShadowStore, payload: bytes, message: str
) -> None:
    update(store, {"state": {"reported": {"kept": True}}})
    assert store.update("home-1", "", payload) == Rejection(400, message)
    assert document(store)["state"] == {"reported": {"kept": True}}
    assert document(store)["version"] == 1


def test_errors_after_the_token_is_read_echo_it(store: ShadowStore) -> None:
    result = store.update("home-1", "", body({"clientToken": "c1"}))
    assert result == Rejection(400, "Missing required node: state", "c1")


def test_non_utf8_payload_is_415(store: ShadowStore) -> None:
    assert rejected(store.update("home-1", "", b'{"state": "\xff"}')).code == 415


def nested(levels: int) -> dict[str, Any]:
    value: Any = 1
    for level in range(levels):
        value = {f"l{level}": value}
    return value


def test_six_levels_of_nesting_are_accepted_seven_are_400(store: ShadowStore) -> None:
    update(store, {"state": {"desired": nested(6)}})
    assert store.update("home-1", "", body({"state": {"desired": nested(7)}})) == Rejection(
        400, "JSON contains too many levels of nesting; maximum is 6"
    )


def reported_state_of(size: int) -> dict[str, Any]:
    """A reported section making the stored state exactly ``size`` bytes of compact JSON."""
    overhead = len(json.dumps({"reported": {"p": ""}}, separators=(",", ":")))
    return {"p": "x" * (size - overhead)}


def test_a_state_of_8_kb_is_accepted_and_one_byte_more_is_413(store: ShadowStore) -> None:
    update(store, {"state": {"reported": reported_state_of(8192)}})
    result = store.update("home-1", "", body({"state": {"reported": reported_state_of(8193)}}))
    assert result == Rejection(413, "The payload exceeds the maximum size allowed")
    assert document(store)["version"] == 1


def test_desired_and_reported_share_the_8_kb(store: ShadowStore) -> None:
    update(store, {"state": {"desired": {"a": "x" * 4000}}})
    update(store, {"state": {"reported": {"b": "y" * 4000}}})
    result = store.update("home-1", "", body({"state": {"reported": {"c": "z" * 500}}}))
    assert rejected(result).code == 413
    assert document(store)["version"] == 2


def test_invalid_thing_or_shadow_names_are_400(store: ShadowStore) -> None:
    assert rejected(store.get("bad/name")).code == 400
    assert rejected(store.update("home-1", "no spaces", body({"state": {}}))).code == 400


# -- named shadows, listing, persistence ------------------------------------------------------


def test_named_shadows_are_isolated_from_the_classic_one(store: ShadowStore) -> None:
    update(store, {"state": {"desired": {"plan": "p1"}}}, name="plan")
    assert rejected(store.get("home-1")).code == 404
    update(store, {"state": {"reported": {"soc": 1}}})
    assert document(store, name="plan")["state"]["desired"] == {"plan": "p1"}
    assert "reported" not in document(store, name="plan")["state"]
    assert document(store, name="plan")["version"] == 1
    assert document(store)["state"] == {"reported": {"soc": 1}}
    assert rejected(store.get("home-2", "plan")).code == 404


def test_list_named_shadows_pages_through_existing_ones(store: ShadowStore) -> None:
    for name in ["plan", "alpha", "zeta", "beta"]:
        update(store, {"state": {"reported": {"a": 1}}}, name=name)
    update(store, {"state": {"reported": {"a": 1}}})  # classic: not listed
    update(store, {"state": {"reported": {"a": 1}}}, thing="home-2", name="other")
    store.delete("home-1", "zeta")
    first = store.list_named("home-1", page_size=2)
    assert isinstance(first, dict)
    assert first["results"] == ["alpha", "beta"]
    second = store.list_named("home-1", page_size=2, next_token=first["nextToken"])
    assert isinstance(second, dict)
    assert second["results"] == ["plan"]
    assert "nextToken" not in second
    assert store.list_named("home-3") == {"results": [], "timestamp": T0}


def test_shadows_survive_reopening_the_file(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "shadows.sqlite3"
    first = ShadowStore(path, clock)
    update(first, {"state": {"desired": {"a": [1, 2]}}}, name="plan")
    update(first, {"state": {"desired": {"a": [3]}}}, name="plan")
    first.close()
    reopened = ShadowStore(path, clock)
    try:
        assert document(reopened, name="plan")["state"]["desired"] == {"a": [3]}
        assert update(reopened, {"state": {}}, name="plan").accepted["version"] == 3
    finally:
        reopened.close()


def test_rejection_payload_has_aws_shape() -> None:
    assert Rejection(409, "Version conflict", "c").payload(T0) == {
        "code": 409,
        "message": "Version conflict",
        "timestamp": T0,
        "clientToken": "c",
    }
