"""Tag text as installers type it, and the problems they get back."""

from __future__ import annotations

import pytest
from fractal.protocol import NodeDescriptor, parse
from fractal.tags import format_tags, parse_tags, validate_tags
from hypothesis import given, settings
from hypothesis import strategies as st


def test_one_tag_per_line() -> None:
    result = parse_tags("street=Elm Road\nfeeder=F12")
    assert result.ok
    assert result.tags == {"street": "Elm Road", "feeder": "F12"}


def test_comma_separated_with_spaces_and_blank_entries() -> None:
    result = parse_tags(" street = Elm Road , feeder=F12,,\n\n substation=Bay 3 ,")
    assert result.tags == {"street": "Elm Road", "feeder": "F12", "substation": "Bay 3"}
    assert result.problems == []


def test_empty_text_means_no_tags() -> None:
    assert parse_tags("") == parse_tags("  \n , ")
    assert parse_tags("").tags == {}
    assert parse_tags("").ok


def test_a_value_may_contain_an_equals_sign() -> None:
    assert parse_tags("formula=a=b").tags == {"formula": "a=b"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("street", "'street' is not key=value"),
        ("Street=Elm", "key 'Street' must start with a lower-case letter"),
        ("1st=Elm", "key '1st' must start"),
        ("my-street=Elm", "key 'my-street' must start"),
        ("=Elm", "key '' must start"),
        ("k" * 33 + "=v", "at most 32 characters"),
        ("street=", "tag 'street' has no value"),
        ("street=" + "x" * 65, "longer than 64 characters"),
        ("street=Elm\nstreet=Oak", "tag 'street' is given twice"),
    ],
)
def test_problems_say_what_is_wrong(text: str, problem: str) -> None:
    result = parse_tags(text)
    assert not result.ok
    assert len(result.problems) == 1
    assert problem in result.problems[0]


def test_at_most_sixteen_tags() -> None:
    sixteen = "\n".join(f"k{index}=v" for index in range(16))
    assert parse_tags(sixteen).ok
    result = parse_tags(sixteen + "\nk16=v")
    assert result.problems == ["17 tags given, at most 16 are allowed"]
    assert validate_tags(result.tags) == ["17 tags given, at most 16 are allowed"]


def test_limits_are_inclusive() -> None:
    text = f"{'k' * 32}={'v' * 64}"
    assert parse_tags(text).tags == {"k" * 32: "v" * 64}


def test_every_problem_is_reported_and_good_tags_are_kept() -> None:
    result = parse_tags("street=Elm\nBad=1\nfeeder\nfeeder=F12")
    assert result.tags == {"street": "Elm", "feeder": "F12"}
    assert len(result.problems) == 2


def test_validate_tags_applies_the_same_rules() -> None:
    assert validate_tags({"street": "Elm"}) == []
    assert len(validate_tags({"Street": "Elm", "feeder": ""})) == 2


def test_format_sorts_keys_one_per_line() -> None:
    assert format_tags({"street": "Elm Road", "feeder": "F12"}) == "feeder=F12\nstreet=Elm Road"
    assert format_tags({}) == ""


keys = st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True)
values = (
    st.text(
        alphabet=st.characters(blacklist_characters=",\n\r", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=64,
    )
    .map(str.strip)
    .filter(bool)
)


@settings(deadline=None)  # the machine is shared: no timing in tests
@given(st.dictionaries(keys, values, max_size=8))
def test_format_then_parse_round_trips(tags: dict[str, str]) -> None:
    result = parse_tags(format_tags(tags))
    assert result.ok
    assert result.tags == tags


def descriptor_accepts(tags: dict[str, str]) -> bool:
    document = {
        "schema": "fractal.node.v1",
        "node": "home-1",
        "name": "Home 1",
        "software": "0.1.0",
        "link": "standalone",
        "tags": tags,
    }
    return parse(NodeDescriptor, document).ok


@settings(deadline=None)
@given(
    st.dictionaries(
        st.one_of(keys, st.text(max_size=34)),
        st.one_of(values, st.text(max_size=66)),
        max_size=18,
    )
)
def test_tag_rules_agree_with_the_protocol(tags: dict[str, str]) -> None:
    assert (validate_tags(tags) == []) is descriptor_accepts(tags)
