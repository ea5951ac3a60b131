"""The local certificate authority that enrols nodes (the embedded stand-in for AWS IoT's CA).

Created once in ``DATA/ca/``: ``ca.key`` (mode 0600, in a 0700 directory, never given to the
broker) and ``ca.pem``. Node certificates carry the node id as their common name: mosquitto
uses it as the user name that the ACL substitutes for ``%u``, as AWS IoT substitutes
``${iot:Connection.Thing.ThingName}``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# AWS IoT thing names; node ids must be usable verbatim in topics and ACL patterns.
NODE_ID = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
# The aggregator's own services connect with this identity: the dot makes it impossible as a
# node id, so no enrolled node can ever impersonate them.
SERVICE_IDENTITY = "fractal.aggregator"
CA_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY = timedelta(days=825)


class InvalidNodeId(ValueError):
    """A node id that is not a valid AWS IoT thing name."""


@dataclass(frozen=True)
class IssuedCertificate:
    certificate_pem: str
    private_key_pem: str


def write_private(path: Path, text: str) -> None:
    """Write a secret readable only by its owner (created 0600, never briefly wider)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def validate_node_id(node_id: str) -> str:
    if not NODE_ID.fullmatch(node_id):
        raise InvalidNodeId(
            f"invalid node id {node_id!r}: use 1 to 128 letters, digits, ':', '_' or '-'"
            " (an AWS IoT thing name)"
        )
    return node_id


class CertificateAuthority:
    """A self-signed EC P-256 CA stored in a directory."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
        self._key = key
        self.certificate = certificate

    @classmethod
    def open(cls, directory: Path) -> CertificateAuthority:
        """Load the CA from ``directory``, creating it on first use."""
        key_path, certificate_path = directory / "ca.key", directory / "ca.pem"
        if key_path.exists() and certificate_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{key_path} is not an EC private key")
            certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
            return cls(key, certificate)
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        authority = cls._create()
        write_private(key_path, _key_pem(authority._key))
        certificate_path.write_text(authority.certificate_pem)
        return authority

    @classmethod
    def _create(cls) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fractal Node local CA")])
        start = _now() - timedelta(minutes=5)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def issue_node_certificate(self, node_id: str) -> IssuedCertificate:
        """A client certificate whose common name is the node id."""
        return self._issue(validate_node_id(node_id), ExtendedKeyUsageOID.CLIENT_AUTH, [])

    def issue_service_certificate(self) -> IssuedCertificate:
        """The client certificate of the aggregator's own services (loopback listener)."""
        return self._issue(SERVICE_IDENTITY, ExtendedKeyUsageOID.CLIENT_AUTH, [])

    def issue_server_certificate(self, hosts: list[str]) -> IssuedCertificate:
        """The broker's certificate, valid for each of ``hosts`` (IP addresses or DNS names)."""
        names = [_general_name(host) for host in hosts]
        return self._issue(hosts[0], ExtendedKeyUsageOID.SERVER_AUTH, names)

    def _issue(
        self,
        common_name: str,
        usage: x509.ObjectIdentifier,
        alternative_names: list[x509.GeneralName],
    ) -> IssuedCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        start = _now() - timedelta(minutes=5)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + LEAF_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if alternative_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(alternative_names), critical=False
            )
        certificate = builder.sign(self._key, hashes.SHA256())
        return IssuedCertificate(
            certificate.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key)
        )


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
