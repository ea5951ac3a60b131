"""A node's tags as installers type them: ``key=value`` pairs, one per line or comma-separated.

Tags group nodes into streets, feeders, substations and communities. The rules match the
protocol's tags: keys ``^[a-z][a-z0-9_]{0,31}$``, values 1-64 characters, at most 16 tags.
Parsing returns the problems found instead of raising, so a form can say what is wrong. In the
text form a value cannot contain a comma or a line break (they separate tags).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_VALUE_LENGTH = 64
MAX_TAGS = 16
_SEPARATORS = re.compile(r"[\n,]")


@dataclass(frozen=True)
class TagParse:
    """Parsed tags and the problems found; tags are only meaningful when there are none."""

    tags: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def key_problem(key: str) -> str | None:
    if KEY_PATTERN.fullmatch(key):
        return None
    return (
        f"key '{key}' must start with a lower-case letter and use only a-z, 0-9 and _ "
        "(at most 32 characters)"
    )


def value_problem(key: str, value: str) -> str | None:
    if not value:
        return f"tag '{key}' has no value"
    if len(value) > MAX_VALUE_LENGTH:
        return f"the value of '{key}' is longer than {MAX_VALUE_LENGTH} characters"
    return None


def parse_tags(text: str) -> TagParse:
    """Parse ``street=Elm Road\\nfeeder=F12`` (or ``street=Elm Road, feeder=F12``)."""
    tags: dict[str, str] = {}
    problems: list[str] = []
    for entry in (part.strip() for part in _SEPARATORS.split(text)):
        if not entry:
            continue
        if "=" not in entry:
            problems.append(f"'{entry}' is not key=value")
            continue
        key, value = (part.strip() for part in entry.split("=", 1))
        if problem := key_problem(key) or value_problem(key, value):
            problems.append(problem)
        elif key in tags:
            problems.append(f"tag '{key}' is given twice")
        else:
            tags[key] = value
    if len(tags) > MAX_TAGS:
        problems.append(f"{len(tags)} tags given, at most {MAX_TAGS} are allowed")
    return TagParse(tags, problems)


def validate_tags(tags: Mapping[str, str]) -> list[str]:
    """Problems with tags that did not come from text (stored options, documents)."""
    problems = [
        problem
        for key, value in tags.items()
        if (problem := key_problem(key) or value_problem(key, value))
    ]
    if len(tags) > MAX_TAGS:
        problems.append(f"{len(tags)} tags given, at most {MAX_TAGS} are allowed")
    return problems


def format_tags(tags: Mapping[str, str]) -> str:
    """The text form ``parse_tags`` reads back: one ``key=value`` per line, keys sorted."""
    return "\n".join(f"{key}={tags[key]}" for key in sorted(tags))
