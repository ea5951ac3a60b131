"""JSON Schemas generated from the models: `python -m fractal.protocol.schemas docs/schemas`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .parsing import DOCUMENT_TYPES

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schemas() -> dict[str, str]:
    """File name -> content of every document's schema (validation side)."""
    files: dict[str, str] = {}
    for model in DOCUMENT_TYPES:
        schema: dict[str, Any] = {
            "$schema": SCHEMA_DIALECT,
            "$id": f"urn:fractal:schema:{model.SCHEMA}",
            **model.model_json_schema(by_alias=True, mode="validation"),
        }
        files[f"{model.KIND}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in json_schemas().items():
        path = directory / name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m fractal.protocol.schemas OUTPUT_DIRECTORY", file=sys.stderr)
        return 2
    for path in write_schemas(Path(argv[0])):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
