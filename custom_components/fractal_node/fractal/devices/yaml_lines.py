"""Load YAML keeping the line of every value, so errors can name file:line:field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml  # type: ignore[import-untyped]

Path = tuple[str | int, ...]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class LocatedYaml:
    """Plain Python data plus the 1-based line of each path into it."""

    data: Any
    lines: dict[Path, int]

    def line_of(self, path: Path) -> int:
        """Line of the deepest known prefix of `path` (the whole document if none)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1


class YamlSyntaxError(ValueError):
    """The text is not YAML, or has duplicate keys or non-scalar keys."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def load_located(text: str) -> LocatedYaml:
    """Parse one YAML document into data and a path -> line index."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        lines: dict[Path, int] = {}
        data = _build(loader, root, (), lines) if root is not None else None
    except yaml.MarkedYAMLError as err:
        raise YamlSyntaxError(*_describe(err)) from err
    finally:
        loader.dispose()
    return LocatedYaml(data, lines)


def _describe(err: Any) -> tuple[int, str]:
    """Line and message of a YAML error, with where the unfinished construct started."""
    mark = err.problem_mark or err.context_mark
    line = mark.line + 1 if mark is not None else 1
    message = str(err.problem or err)
    if err.context and err.context_mark is not None:
        message += f" ({err.context} started at line {err.context_mark.line + 1})"
    return line, message


def _build(loader: Any, node: Any, path: Path, lines: dict[Path, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                raise YamlSyntaxError(key_node.start_mark.line + 1, "keys must be scalars")
            if key in result:
                raise YamlSyntaxError(key_node.start_mark.line + 1, f"duplicate key {key!r}")
            result[key] = _build(loader, value_node, (*path, key), lines)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), lines) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
