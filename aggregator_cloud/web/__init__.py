"""The fleet web page and its JSON endpoints: `add_routes(app, store)`."""

from .fleet import add_routes

__all__ = ["add_routes"]
