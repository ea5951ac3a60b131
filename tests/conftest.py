"""Shared test set-up.

pytest-homeassistant-custom-component is a global plugin: it disables sockets in every test
(again during each test's set-up) and allows only 127.0.0.1. Tests that talk to real local
servers take the ``socket_enabled`` fixture (the ``enable_socket`` marker alone is not enough
under this plugin) and connect to 127.0.0.1, never ``localhost`` (which may resolve to ::1).
"""
