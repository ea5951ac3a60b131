"""A real mosquitto on a loopback port, plain MQTT, anonymous (or with a password file): for
tests of our own clients.

    with PlainMosquitto.started(tmp_path) as broker:   # free port on 127.0.0.1
        broker.port
        broker.restart()                                # same port; sessions are lost

Tests need loopback sockets (the `socket_enabled` fixture)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

START_TIMEOUT_SECONDS = 15.0  # a safety net for a broken install, never a test assertion


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PlainMosquitto:
    def __init__(self, directory: Path, port: int, password_file: Path | None = None) -> None:
        self.directory = directory
        self.port = port
        # A `mosquitto_passwd` file: clients must log in (anonymous ones are refused).
        self.password_file = password_file
        self.config = directory / "mosquitto.conf"
        self.log = directory / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._starts = 0

    @classmethod
    @contextlib.contextmanager
    def started(
        cls, directory: Path, password_file: Path | None = None
    ) -> Iterator[PlainMosquitto]:
        broker = cls(directory, free_port(), password_file)
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()

    def start(self) -> None:
        executable = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        lines = [
            f"listener {self.port} 127.0.0.1",
            *(
                ["allow_anonymous false", f"password_file {self.password_file}"]
                if self.password_file
                else ["allow_anonymous true"]
            ),
            "persistence false",
            "log_dest stderr",
            "log_type all",
            *(["user root"] if os.geteuid() == 0 else []),
        ]
        self.config.write_text("\n".join(lines) + "\n")
        self._starts += 1
        log = self.directory / f"mosquitto.{self._starts}.log"
        with log.open("wb") as output:
            self._process = subprocess.Popen(
                [executable, "-c", str(self.config)], stdout=output, stderr=subprocess.STDOUT
            )
        self._wait_for(log)

    def _wait_for(self, log: Path) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while " running" not in log.read_text(errors="replace"):
            assert self._process is not None
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not start:\n{log.read_text()}")
            time.sleep(0.02)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()
