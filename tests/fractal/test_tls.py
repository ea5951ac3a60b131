"""Certificate checks against certificates generated at test time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from fractal.tls import (
    CredentialError,
    check_credentials,
    common_name,
    load_certificates,
    load_private_key,
)

from tests.support.certificates import (
    CertificateAuthority,
    foreign_ca,
    make_ca,
    mismatched_key_pem,
    new_private_key,
    now_utc,
)

NOW = now_utc()


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return make_ca()


def check(ca: CertificateAuthority, **overrides: object) -> dict[str, CredentialError]:
    node = ca.issue("home-1")
    arguments: dict[str, object] = {
        "certificate_pem": node.certificate_pem,
        "private_key_pem": node.private_key_pem,
        "ca_pem": ca.certificate_pem,
        "now": NOW,
        "expected_common_name": "home-1",
    }
    arguments.update(overrides)
    return dict(check_credentials(**arguments).problems)  # type: ignore[arg-type]


def test_valid_credentials_pass_and_describe_the_certificate(ca: CertificateAuthority) -> None:
    node = ca.issue("home-1", not_after=NOW + timedelta(days=90))
    result = check_credentials(
        certificate_pem=node.certificate_pem,
        private_key_pem=node.private_key_pem,
        ca_pem=ca.certificate_pem,
        now=NOW,
        expected_common_name="home-1",
    )
    assert result.ok
    assert result.certificate is not None
    assert result.certificate.common_name == "home-1"
    assert result.certificate.not_after == NOW + timedelta(days=90)
    assert "Fractal Test CA" in result.certificate.issuer
    assert result.certificate.expires_within(NOW, timedelta(days=90))
    assert not result.certificate.expires_within(NOW, timedelta(days=89))


def test_rsa_credentials_pass() -> None:
    ca = make_ca(key_type="rsa")
    node = ca.issue("home-1", key_type="rsa")
    assert (
        check(ca, certificate_pem=node.certificate_pem, private_key_pem=node.private_key_pem) == {}
    )


def test_surrounding_whitespace_is_tolerated(ca: CertificateAuthority) -> None:
    node = ca.issue("home-1")
    problems = check(
        ca,
        certificate_pem=f"\n  {node.certificate_pem}\n\n",
        private_key_pem=f"  {node.private_key_pem}  ",
        ca_pem=f"\n{ca.certificate_pem}",
    )
    assert problems == {}


def test_a_pasted_chain_uses_its_first_certificate_as_the_leaf(ca: CertificateAuthority) -> None:
    node = ca.issue("home-1")
    problems = check(
        ca,
        certificate_pem=node.certificate_pem + ca.certificate_pem,
        private_key_pem=node.private_key_pem,
    )
    assert problems == {}


def test_a_ca_bundle_is_accepted_when_any_member_issued_the_certificate(
    ca: CertificateAuthority,
) -> None:
    bundle = foreign_ca().certificate_pem + ca.certificate_pem
    assert check(ca, ca_pem=bundle) == {}


@pytest.mark.parametrize("text", ["", "not a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n"])
def test_unreadable_certificate(ca: CertificateAuthority, text: str) -> None:
    assert check(ca, certificate_pem=text) == {"certificate_pem": "invalid_certificate"}


def test_a_key_pasted_as_certificate_is_invalid(ca: CertificateAuthority) -> None:
    node = ca.issue("home-1")
    problems = check(ca, certificate_pem=node.private_key_pem, private_key_pem=node.private_key_pem)
    assert problems == {"certificate_pem": "invalid_certificate"}


@pytest.mark.parametrize("text", ["", "garbage", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END"])
def test_unreadable_private_key(ca: CertificateAuthority, text: str) -> None:
    assert check(ca, private_key_pem=text) == {"private_key_pem": "invalid_private_key"}


def test_a_certificate_pasted_as_key_is_invalid(ca: CertificateAuthority) -> None:
    assert check(ca, private_key_pem=ca.certificate_pem) == {
        "private_key_pem": "invalid_private_key"
    }


def test_encrypted_private_key_is_refused(ca: CertificateAuthority) -> None:
    node = ca.issue("home-1")
    encrypted = node.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    ).decode()
    assert load_private_key(encrypted) is None
    problems = check(ca, certificate_pem=node.certificate_pem, private_key_pem=encrypted)
    assert problems == {"private_key_pem": "invalid_private_key"}


@pytest.mark.parametrize("key_type", ["ec", "rsa"])
def test_key_mismatch(ca: CertificateAuthority, key_type: str) -> None:
    problems = check(ca, private_key_pem=mismatched_key_pem(key_type))  # type: ignore[arg-type]
    assert problems == {"private_key_pem": "key_mismatch"}


@pytest.mark.parametrize("text", ["", "nonsense"])
def test_unreadable_ca(ca: CertificateAuthority, text: str) -> None:
    assert check(ca, ca_pem=text) == {"ca_pem": "invalid_ca"}


def test_a_leaf_certificate_is_not_a_ca(ca: CertificateAuthority) -> None:
    other = ca.issue("someone-else")
    assert check(ca, ca_pem=other.certificate_pem) == {"ca_pem": "invalid_ca"}


def test_expired_certificate(ca: CertificateAuthority) -> None:
    node = ca.issue(
        "home-1", not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(seconds=1)
    )
    problems = check(ca, certificate_pem=node.certificate_pem, private_key_pem=node.private_key_pem)
    assert problems == {"certificate_pem": "certificate_expired"}


def test_validity_is_judged_against_the_injected_clock(ca: CertificateAuthority) -> None:
    node = ca.issue("home-1", not_before=NOW, not_after=NOW + timedelta(days=10))
    pems = {"certificate_pem": node.certificate_pem, "private_key_pem": node.private_key_pem}
    assert check(ca, **pems, now=NOW + timedelta(days=10)) == {}
    assert check(ca, **pems, now=NOW + timedelta(days=10, seconds=1)) == {
        "certificate_pem": "certificate_expired"
    }
    assert check(ca, **pems, now=NOW - timedelta(seconds=1)) == {
        "certificate_pem": "certificate_not_yet_valid"
    }


def test_certificate_from_a_foreign_ca(ca: CertificateAuthority) -> None:
    stranger = foreign_ca().issue("home-1")
    problems = check(
        ca, certificate_pem=stranger.certificate_pem, private_key_pem=stranger.private_key_pem
    )
    assert problems == {"certificate_pem": "certificate_not_issued_by_ca"}


def test_foreign_ca_is_allowed_when_the_ca_is_only_the_server_trust_anchor(
    ca: CertificateAuthority,
) -> None:
    stranger = foreign_ca().issue("AWS IoT Certificate", key_type="rsa")
    problems = check(
        ca,
        certificate_pem=stranger.certificate_pem,
        private_key_pem=stranger.private_key_pem,
        expected_common_name=None,
        require_issued_by_ca=False,
    )
    assert problems == {}


def test_common_name_must_equal_the_node_id(ca: CertificateAuthority) -> None:
    assert check(ca, expected_common_name="home-2") == {"certificate_pem": "node_id_mismatch"}
    assert check(ca, expected_common_name=None) == {}


def test_certificate_without_common_name() -> None:
    ca = make_ca()
    node = ca.issue("home-1")
    nameless = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fractal")]))
        .issuer_name(ca.certificate.subject)
        .public_key(node.key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .sign(ca.key, hashes.SHA256())
    )
    assert common_name(nameless) is None
    pem = nameless.public_bytes(serialization.Encoding.PEM).decode()
    assert check(ca, certificate_pem=pem, private_key_pem=node.private_key_pem) == {
        "certificate_pem": "node_id_mismatch"
    }


def test_several_fields_report_one_problem_each(ca: CertificateAuthority) -> None:
    problems = check(ca, ca_pem="x", certificate_pem="y", private_key_pem="z")
    assert problems == {
        "ca_pem": "invalid_ca",
        "certificate_pem": "invalid_certificate",
        "private_key_pem": "invalid_private_key",
    }


def test_expired_and_mismatched_key_are_both_reported(ca: CertificateAuthority) -> None:
    node = ca.issue("home-1", not_before=NOW - timedelta(days=3), not_after=NOW - timedelta(days=1))
    problems = check(ca, certificate_pem=node.certificate_pem, private_key_pem=mismatched_key_pem())
    assert problems == {"certificate_pem": "certificate_expired", "private_key_pem": "key_mismatch"}


def test_loaders_never_raise_on_binary_junk() -> None:
    junk = "\udcff\x00-----BEGIN CERTIFICATE-----"
    assert load_certificates(junk) == []
    assert load_private_key(junk) is None


def test_an_old_root_without_basic_constraints_is_still_a_ca() -> None:
    key = new_private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Old Root")])
    root = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    old_root = CertificateAuthority(root, key)
    assert check(old_root) == {}
