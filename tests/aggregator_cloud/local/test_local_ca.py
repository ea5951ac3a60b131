"""The local certificate authority: created once, key private, node id = certificate CN."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aggregator_cloud.local.ca import SERVICE_IDENTITY, CertificateAuthority, InvalidNodeId


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def common_name(certificate: x509.Certificate) -> str:
    return str(certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_the_ca_is_created_once_with_a_private_key(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    created = CertificateAuthority.open(directory)
    reopened = CertificateAuthority.open(directory)
    assert reopened.certificate == created.certificate
    assert mode(directory) == 0o700
    assert mode(directory / "ca.key") == 0o600


def test_node_certificates_carry_the_node_id_and_are_signed_by_the_ca(tmp_path: Path) -> None:
    authority = CertificateAuthority.open(tmp_path / "ca")
    issued = authority.issue_node_certificate("home-1")
    certificate = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    certificate.verify_directly_issued_by(authority.certificate)
    assert common_name(certificate) == "home-1"
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_the_broker_certificate_is_valid_for_loopback(tmp_path: Path) -> None:
    authority = CertificateAuthority.open(tmp_path / "ca")
    issued = authority.issue_server_certificate(["127.0.0.1", "localhost"])
    certificate = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]


@pytest.mark.parametrize(
    "node_id", ["", "a/b", "home+1", "home#", "with space", SERVICE_IDENTITY, "x" * 129]
)
def test_ids_that_are_not_thing_names_are_refused(tmp_path: Path, node_id: str) -> None:
    authority = CertificateAuthority.open(tmp_path / "ca")
    with pytest.raises(InvalidNodeId, match="invalid node id"):
        authority.issue_node_certificate(node_id)
