"""Link settings: addresses, and which credential rules apply to which link mode."""

from __future__ import annotations

import pytest
from fractal.link_settings import check_link_credentials, valid_endpoint, valid_host
from fractal.protocol import LinkMode

from tests.support.certificates import foreign_ca, make_ca, now_utc


@pytest.mark.parametrize(
    "host",
    [
        "192.168.1.20",
        "::1",
        "fe80::1",
        "aggregator",
        "mqtt.example.org",
        "mqtt.example.org.",
        "a-b",
    ],
)
def test_valid_hosts(host: str) -> None:
    assert valid_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "",
        "mqtt://host",
        "host:8883",
        "host/path",
        "-host",
        "host-",
        "a..b",
        "a b",
        "x" * 64,
        "é.org",
    ],
)
def test_invalid_hosts(host: str) -> None:
    assert not valid_host(host)


def test_a_host_name_may_be_253_characters_long() -> None:
    label = "a" * 63
    name = ".".join([label, label, label, "a" * 61])
    assert len(name) == 253
    assert valid_host(name)
    assert not valid_host(name + "a")


@pytest.mark.parametrize(
    ("endpoint", "valid"),
    [
        ("abc123-ats.iot.eu-west-2.amazonaws.com", True),
        ("iot.energy.example.org", True),  # AWS IoT configurable custom domain
        ("localhost", False),
        ("https://abc123-ats.iot.eu-west-2.amazonaws.com", False),
        ("abc123-ats.iot.eu-west-2.amazonaws.com:8883", False),
        ("10.0.0.1", True),  # a dotted name of digit labels is still a host name
    ],
)
def test_endpoints(endpoint: str, valid: bool) -> None:
    assert valid_endpoint(endpoint) is valid


def test_local_links_require_the_ca_as_issuer_and_the_node_id_as_cn() -> None:
    ca = make_ca()
    other = ca.issue("home-2")
    stranger = foreign_ca().issue("home-1")

    def problems(certificate_pem: str, key_pem: str, link: LinkMode) -> dict[str, str]:
        check = check_link_credentials(
            link,
            node_id="home-1",
            certificate_pem=certificate_pem,
            private_key_pem=key_pem,
            ca_pem=ca.certificate_pem,
            now=now_utc(),
        )
        return dict(check.problems)

    assert problems(other.certificate_pem, other.private_key_pem, LinkMode.LOCAL) == {
        "certificate_pem": "node_id_mismatch"
    }
    assert problems(stranger.certificate_pem, stranger.private_key_pem, LinkMode.LOCAL) == {
        "certificate_pem": "certificate_not_issued_by_ca"
    }
    assert problems(other.certificate_pem, other.private_key_pem, LinkMode.AWS) == {}
    assert problems(stranger.certificate_pem, stranger.private_key_pem, LinkMode.AWS) == {}
