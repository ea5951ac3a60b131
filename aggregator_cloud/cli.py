"""`fractal-aggregator`: the aggregator's command line.

Each sub-command lives in its own module, which exposes ``register(subparsers)`` adding its
parser with ``set_defaults(run=...)``; ``run(args)`` returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import cast

COMMAND_MODULES: tuple[str, ...] = (
    "aggregator_cloud.local.commands",
    "aggregator_cloud.planning.command",
    "aggregator_cloud.simulation.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fractal-aggregator",
        description="Plan for a fleet of Fractal Nodes and talk to them through device shadows.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run = cast(Callable[[argparse.Namespace], int], args.run)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
