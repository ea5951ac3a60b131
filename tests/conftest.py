"""Shared test set-up.

pytest-homeassistant-custom-component is a global plugin: it disables sockets in every test
and allows only 127.0.0.1. Tests that talk to real local servers use
``@pytest.mark.enable_socket`` (or the ``socket_enabled`` fixture) and connect to 127.0.0.1,
never ``localhost`` (which may resolve to ::1 and be refused).
"""
