"""The JSON examples of docs/protocol.md, as tests read them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

DOCS = Path(__file__).parents[3] / "docs"
JSON_BLOCK = re.compile(r"```json\n(.*?)```", re.DOTALL)


def _documents_in(block: dict[str, Any]) -> list[tuple[str, Any]]:
    """A document, or the documents inside a shadow payload `{"state": {section: {key: doc}}}`."""
    if "state" not in block:
        return [("", block)]
    return [
        (f"state.{section}.{key}", document)
        for section, documents in block["state"].items()
        for key, document in documents.items()
    ]


def _examples() -> list[tuple[str, Any]]:
    text = (DOCS / "protocol.md").read_text("utf-8")
    found = []
    for number, block in enumerate(JSON_BLOCK.findall(text)):
        for where, document in _documents_in(json.loads(block)):
            found.append((f"example {number} {where}".strip(), document))
    return found


EXAMPLES = _examples()
"""(where, document) for every document shown in docs/protocol.md."""


def example(schema: str, **fields: object) -> dict[str, Any]:
    """A fresh copy of the first documented example with this schema and these field values."""
    for _, document in EXAMPLES:
        if document.get("schema") == schema and all(
            document.get(name) == value for name, value in fields.items()
        ):
            copied: dict[str, Any] = json.loads(json.dumps(document))
            return copied
    raise AssertionError(f"no {schema} example with {fields} in docs/protocol.md")
