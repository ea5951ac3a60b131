"""The broker's generated files, its privileges, and its clear errors.

These run as root, as the embedded aggregator and CI do: mosquitto then drops to the
``mosquitto`` user, which must read its own files and never the CA key.
"""

from __future__ import annotations

import grp
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator_cloud.local.broker import (
    BROKER_USER,
    BrokerError,
    BrokerSettings,
    find_mosquitto,
    write_broker_files,
)
from aggregator_cloud.local.ca import CertificateAuthority


@pytest.fixture
def traversable_dir() -> Iterator[Path]:
    """A directory the broker user can reach (pytest's tmp_path is inside a 0700 directory)."""
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        root.chmod(0o711)
        yield root


def settings(data: Path) -> BrokerSettings:
    return BrokerSettings(data / "mosquitto", "127.0.0.1", 8883, 8884)


def test_broker_files_are_readable_by_the_broker_user_and_hold_no_ca_key(
    traversable_dir: Path,
) -> None:
    authority = CertificateAuthority.open(traversable_dir / "ca")
    config = write_broker_files(settings(traversable_dir), authority, BROKER_USER)
    directory = config.parent
    group = grp.getgrnam(BROKER_USER).gr_gid
    assert sorted(path.name for path in directory.iterdir()) == [
        "acl",
        "ca.pem",
        "mosquitto.conf",
        "server.key",
        "server.pem",
    ]
    for path in [directory, *directory.iterdir()]:
        assert path.stat().st_gid == group
        assert stat.S_IMODE(path.stat().st_mode) & 0o007 == 0  # nothing for others
    assert f"user {BROKER_USER}" in config.read_text()
    ca_key = traversable_dir / "ca" / "ca.key"
    assert (ca_key.stat().st_uid, stat.S_IMODE(ca_key.stat().st_mode)) == (0, 0o600)
    assert stat.S_IMODE((traversable_dir / "ca").stat().st_mode) == 0o700


def test_a_data_dir_the_broker_user_cannot_reach_is_a_clear_error(tmp_path: Path) -> None:
    authority = CertificateAuthority.open(tmp_path / "ca")
    with pytest.raises(
        BrokerError, match="mosquitto runs as the user 'mosquitto' and cannot reach"
    ):
        write_broker_files(settings(tmp_path), authority, BROKER_USER)


def test_missing_mosquitto_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match=r"mosquitto is not installed.*apt-get install mosquitto"):
        find_mosquitto(search_path=str(tmp_path))
