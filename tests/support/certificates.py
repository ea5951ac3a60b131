"""Test certificates generated at test time with ``cryptography`` (never committed).

A small certificate authority that issues node (client) and server certificates with a chosen
common name and validity window, plus the bad material the config flow must refuse: a key that
matches no certificate and a foreign CA.

    ca = make_ca()
    node = ca.issue("home-1")                       # valid now for a year
    old = ca.issue("home-1", not_after=NOW - timedelta(days=1))
    server = ca.issue_server(["127.0.0.1"])         # for a local mosquitto listener
    node.certificate_pem, node.private_key_pem, ca.certificate_pem  # PEM text
    node.write(tmp_path, "node")                    # node.crt / node.key files, returns paths

EC P-256 keys by default (fast); ``key_type="rsa"`` gives RSA-2048 like AWS IoT certificates.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyType = Literal["ec", "rsa"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def now_utc() -> datetime:
    """The current time, truncated to seconds as X.509 stores it."""
    return datetime.now(UTC).replace(microsecond=0)


def new_private_key(key_type: KeyType = "ec") -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def certificate_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def mismatched_key_pem(key_type: KeyType = "ec") -> str:
    """A well-formed private key that belongs to no certificate."""
    return private_key_pem(new_private_key(key_type))


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key, as objects and as PEM text."""

    certificate: x509.Certificate
    key: PrivateKey

    @property
    def certificate_pem(self) -> str:
        return certificate_pem(self.certificate)

    @property
    def private_key_pem(self) -> str:
        return private_key_pem(self.key)

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write ``{stem}.crt`` and ``{stem}.key`` (mode 0600) and return their paths."""
        certificate_path = directory / f"{stem}.crt"
        key_path = directory / f"{stem}.key"
        certificate_path.write_text(self.certificate_pem)
        key_path.write_text(self.private_key_pem)
        key_path.chmod(0o600)
        return certificate_path, key_path


@dataclass(frozen=True)
class CertificateAuthority(Issued):
    """A self-signed CA that issues leaf certificates."""

    def write_ca(self, directory: Path, name: str = "ca.crt") -> Path:
        path = directory / name
        path.write_text(self.certificate_pem)
        return path

    def issue(
        self,
        common_name: str,
        *,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        key_type: KeyType = "ec",
    ) -> Issued:
        """A client (node) certificate; by default valid from an hour ago for 365 days."""
        start = not_before or now_utc() - timedelta(hours=1)
        end = not_after or start + timedelta(days=365)
        key = new_private_key(key_type)
        builder = _leaf_builder(common_name, key, self, start, end).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        return Issued(builder.sign(self.key, hashes.SHA256()), key)

    def issue_server(
        self, hosts: list[str], *, common_name: str | None = None, key_type: KeyType = "ec"
    ) -> Issued:
        """A server certificate for the given IP addresses / DNS names (e.g. 127.0.0.1)."""
        start = now_utc() - timedelta(hours=1)
        key = new_private_key(key_type)
        names: list[x509.GeneralName] = [_general_name(host) for host in hosts]
        builder = (
            _leaf_builder(common_name or hosts[0], key, self, start, start + timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        return Issued(builder.sign(self.key, hashes.SHA256()), key)


def make_ca(
    common_name: str = "Fractal Test CA",
    *,
    key_type: KeyType = "ec",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> CertificateAuthority:
    """A fresh self-signed CA, valid for ten years unless told otherwise."""
    start = not_before or now_utc() - timedelta(days=1)
    end = not_after or start + timedelta(days=3650)
    key = new_private_key(key_type)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(certificate, key)


def foreign_ca() -> CertificateAuthority:
    """Another CA with the same name as the default one: only the signature tells them apart."""
    return make_ca()


def _leaf_builder(
    common_name: str,
    key: PrivateKey,
    ca: CertificateAuthority,
    start: datetime,
    end: datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
