"""The HA-free Fractal Node library: protocol, devices, executor and link.

Imported by the Home Assistant integration relatively and by everything else as the
top-level package ``fractal``. It must never import Home Assistant.
"""

__version__ = "0.1.0"
