"""Shared links: the key is made once and kept, a link is for one view and one node, it stops
working the second it expires, and a short key file is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator_cloud.reports import links

NOW = datetime(2026, 5, 1, 9, tzinfo=UTC)


def test_a_link_grants_one_view_of_one_node_until_it_expires(tmp_path: Path) -> None:
    key = links.load_key(tmp_path)
    assert links.load_key(tmp_path) == key  # made once, then read
    assert (tmp_path / links.KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert [path.name for path in tmp_path.iterdir()] == [links.KEY_FILE]
    expires = NOW + timedelta(hours=1)
    token = links.sign(key, "osney-lock", "hydro", expires)
    granted = links.verify(key, token, "hydro", NOW)
    assert (granted.node, granted.expires) == ("osney-lock", expires)
    with pytest.raises(links.LinkForged, match="not for the settlement view"):
        links.verify(key, token, "settlement", NOW)
    with pytest.raises(links.LinkExpired, match="expired at 2026-05-01 10:00 UTC"):
        links.verify(key, token, "hydro", expires)
    with pytest.raises(links.LinkForged):
        links.verify(b"k" * 32, token, "hydro", NOW)


def test_a_short_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / links.KEY_FILE).write_bytes(b"short")
    with pytest.raises(ValueError, match="holds 5 bytes: a signing key needs 32"):
        links.load_key(tmp_path)
