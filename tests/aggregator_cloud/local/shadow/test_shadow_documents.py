"""Properties of the shadow merge, delta and metadata operations, and of the store (hypothesis)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from aggregator_cloud.local.shadow.documents import (
    canonical,
    delta,
    merge,
    merge_metadata,
    metadata_for,
    nesting_depth,
    without_nulls,
)
from aggregator_cloud.local.shadow.store import MAX_NESTING, ShadowStore, UpdateResult

keys = st.sampled_from(["a", "b", "c", "soc", "plan"])
scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=8,
)
objects = st.dictionaries(keys, values, max_size=4)
stored_objects = objects.map(without_nulls)


def has_null_member(value: Any) -> bool:
    if isinstance(value, dict):
        return any(child is None or has_null_member(child) for child in value.values())
    return False


@given(stored_objects, objects)
def test_merge_never_stores_null_members(current: dict[str, Any], patch: dict[str, Any]) -> None:
    assert not has_null_member(merge(current, patch))


@given(stored_objects, objects)
def test_merge_applies_each_patched_key(current: dict[str, Any], patch: dict[str, Any]) -> None:
    merged = merge(current, patch)
    for key, value in patch.items():
        if value is None:
            assert key not in merged
        elif not (isinstance(value, dict) and isinstance(current.get(key), dict)):
            assert canonical(merged[key]) == canonical(without_nulls(value))


@given(stored_objects, objects)
def test_merge_keeps_keys_the_patch_does_not_mention(
    current: dict[str, Any], patch: dict[str, Any]
) -> None:
    merged = merge(current, patch)
    for key in current.keys() - patch.keys():
        assert merged[key] == current[key]


@given(stored_objects, objects)
def test_merging_the_same_patch_twice_changes_nothing(
    current: dict[str, Any], patch: dict[str, Any]
) -> None:
    once = merge(current, patch)
    assert canonical(merge(once, patch)) == canonical(once)


@given(stored_objects)
def test_no_delta_when_reported_matches_desired(desired: dict[str, Any]) -> None:
    assert delta(desired, desired) == {}


@given(stored_objects, stored_objects)
def test_reporting_the_delta_clears_it(desired: dict[str, Any], reported: dict[str, Any]) -> None:
    difference = delta(desired, reported)
    assert delta(desired, merge(reported, difference)) == {}


@given(stored_objects, stored_objects)
def test_delta_only_holds_desired_values(desired: dict[str, Any], reported: dict[str, Any]) -> None:
    difference = delta(desired, reported)
    assert canonical(merge(desired, difference)) == canonical(desired)


@given(stored_objects, objects)
def test_metadata_mirrors_the_state(current: dict[str, Any], patch: dict[str, Any]) -> None:
    metadata = merge_metadata(metadata_for(current, 1), current, patch, 2)
    assert shape(metadata) == shape(metadata_for(merge(current, patch), 0))


def shape(metadata: Any) -> Any:
    """Metadata with the timestamps blanked, to compare structure only."""
    if isinstance(metadata, dict) and set(metadata) != {"timestamp"}:
        return {key: shape(child) for key, child in metadata.items()}
    if isinstance(metadata, list):
        return [shape(child) for child in metadata]
    return "leaf"


def test_arrays_are_replaced_whole_not_merged() -> None:
    assert merge({"slots": [1, 2, 3]}, {"slots": [9]}) == {"slots": [9]}


def test_a_scalar_replaced_by_an_object_gets_fresh_metadata() -> None:
    metadata = merge_metadata({"a": {"timestamp": 1}}, {"a": 5}, {"a": {"x": 1}}, 2)
    assert metadata == {"a": {"x": {"timestamp": 2}}}


def test_delta_distinguishes_true_from_one() -> None:
    assert delta({"on": True}, {"on": 1}) == {"on": True}


def test_delta_recurses_into_objects_but_not_arrays() -> None:
    desired = {"battery": {"mode": "charge", "w": 2000}, "slots": [1, 2]}
    reported = {"battery": {"mode": "charge", "w": 1500}, "slots": [1]}
    assert delta(desired, reported) == {"battery": {"w": 2000}, "slots": [1, 2]}


def test_nesting_depth_counts_objects_and_arrays() -> None:
    assert nesting_depth(1) == 0
    assert nesting_depth({"a": 1}) == 1
    assert nesting_depth({"a": [{"b": 1}]}) == 3


sections = st.sampled_from(["desired", "reported"])
acceptable = objects.filter(lambda patch: nesting_depth(patch) <= MAX_NESTING)
updates = st.lists(st.tuples(sections, acceptable), min_size=1, max_size=6)


@given(updates)
def test_the_store_agrees_with_folding_the_merges(sequence: list[tuple[str, Any]]) -> None:
    """After any accepted updates: state = the merges folded, version = their count, and the
    delta a get returns = delta(desired, reported)."""
    store = ShadowStore(":memory:")
    expected: dict[str, dict[str, Any]] = {"desired": {}, "reported": {}}
    try:
        for section, patch in sequence:
            result = store.update("home-1", "", json.dumps({"state": {section: patch}}).encode())
            assert isinstance(result, UpdateResult)
            expected[section] = merge(expected[section], patch)
        current = store.get("home-1")
    finally:
        store.close()
    assert isinstance(current, dict)
    assert current["version"] == len(sequence)
    for section in ("desired", "reported"):
        assert canonical(current["state"].get(section, {})) == canonical(expected[section])
    assert canonical(current["state"].get("delta", {})) == canonical(
        delta(expected["desired"], expected["reported"])
    )
