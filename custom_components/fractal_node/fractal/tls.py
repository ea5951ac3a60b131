"""Checks of a node's TLS credentials: CA, certificate and private key as PEM text.

Everything here returns problems as error codes (the config flow's error keys) and never
raises on bad input. The clock is passed in, so expiry is testable without waiting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

CredentialField = Literal["ca_pem", "certificate_pem", "private_key_pem"]


class CredentialError(StrEnum):
    """Why credentials were refused; the values are the config flow's error keys."""

    INVALID_CA = "invalid_ca"
    INVALID_CERTIFICATE = "invalid_certificate"
    INVALID_PRIVATE_KEY = "invalid_private_key"
    KEY_MISMATCH = "key_mismatch"
    CERTIFICATE_EXPIRED = "certificate_expired"
    CERTIFICATE_NOT_YET_VALID = "certificate_not_yet_valid"
    CERTIFICATE_NOT_ISSUED_BY_CA = "certificate_not_issued_by_ca"
    NODE_ID_MISMATCH = "node_id_mismatch"


@dataclass(frozen=True)
class CertificateInfo:
    """What is safe to show about a certificate (no key material)."""

    common_name: str | None
    issuer: str
    not_before: datetime
    not_after: datetime
    serial_number: str
    sha256_fingerprint: str

    def expires_within(self, now: datetime, period: timedelta) -> bool:
        return self.not_after - now <= period


@dataclass(frozen=True)
class CredentialCheck:
    """The outcome of checking a set of credentials: at most one problem per field."""

    problems: dict[CredentialField, CredentialError] = field(default_factory=dict)
    certificate: CertificateInfo | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def load_certificates(pem: str) -> list[x509.Certificate]:
    """All certificates in a PEM bundle; empty if there are none or the text is not PEM."""
    try:
        return x509.load_pem_x509_certificates(pem.strip().encode())
    except (ValueError, UnicodeError):
        return []


def load_private_key(pem: str) -> PrivateKeyTypes | None:
    """An unencrypted PEM private key, or None (encrypted keys cannot be used unattended)."""
    try:
        return serialization.load_pem_private_key(pem.strip().encode(), password=None)
    except (ValueError, TypeError, UnicodeError, UnsupportedAlgorithm):
        return None


def common_name(certificate: x509.Certificate) -> str | None:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        return None
    value = names[0].value
    return value if isinstance(value, str) else value.decode(errors="replace")


def describe(certificate: x509.Certificate) -> CertificateInfo:
    return CertificateInfo(
        common_name=common_name(certificate),
        issuer=certificate.issuer.rfc4514_string(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        serial_number=format(certificate.serial_number, "x"),
        sha256_fingerprint=certificate.fingerprint(hashes.SHA256()).hex(),
    )


def key_matches(certificate: x509.Certificate, key: PrivateKeyTypes) -> bool:
    """True when the private key is the one the certificate was issued for."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    try:
        return certificate.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False


def validity_problem(certificate: x509.Certificate, now: datetime) -> CredentialError | None:
    if now < certificate.not_valid_before_utc:
        return CredentialError.CERTIFICATE_NOT_YET_VALID
    if now > certificate.not_valid_after_utc:
        return CredentialError.CERTIFICATE_EXPIRED
    return None


def issued_by(certificate: x509.Certificate, authorities: list[x509.Certificate]) -> bool:
    """True when one of the authorities signed the certificate (checked by signature)."""
    for authority in authorities:
        try:
            certificate.verify_directly_issued_by(authority)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        return True
    return False


def is_ca(certificate: x509.Certificate) -> bool:
    """False only when the certificate says it is not a CA (old roots carry no extension)."""
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return True
    return constraints.value.ca


def check_credentials(
    *,
    certificate_pem: str,
    private_key_pem: str,
    ca_pem: str,
    now: datetime,
    expected_common_name: str | None = None,
    require_issued_by_ca: bool = True,
) -> CredentialCheck:
    """Check a node's credentials; at most one problem per field, the most basic first.

    ``expected_common_name``: the certificate's CN must equal it (the node id on a local
    aggregator, whose CA issues certificates with CN = node id).
    ``require_issued_by_ca``: the CA must have signed the certificate. True for a local
    aggregator (one CA for the broker and the nodes); False on AWS IoT, where the CA is the
    trust anchor of the endpoint (Amazon Root CA 1) and device certificates come from AWS's
    own issuing CA.
    """
    problems: dict[CredentialField, CredentialError] = {}
    authorities = [ca for ca in load_certificates(ca_pem) if is_ca(ca)]
    if not authorities:
        problems["ca_pem"] = CredentialError.INVALID_CA
    certificates = load_certificates(certificate_pem)
    key = load_private_key(private_key_pem)
    if key is None:
        problems["private_key_pem"] = CredentialError.INVALID_PRIVATE_KEY
    if not certificates:
        problems["certificate_pem"] = CredentialError.INVALID_CERTIFICATE
        return CredentialCheck(problems)
    certificate = certificates[0]  # the leaf; a pasted chain may follow it
    if key is not None and not key_matches(certificate, key):
        problems["private_key_pem"] = CredentialError.KEY_MISMATCH
    if certificate_problem := _certificate_problem(
        certificate, authorities, now, expected_common_name, require_issued_by_ca
    ):
        problems["certificate_pem"] = certificate_problem
    return CredentialCheck(problems, describe(certificate))


def _certificate_problem(
    certificate: x509.Certificate,
    authorities: list[x509.Certificate],
    now: datetime,
    expected_common_name: str | None,
    require_issued_by_ca: bool,
) -> CredentialError | None:
    if problem := validity_problem(certificate, now):
        return problem
    if require_issued_by_ca and authorities and not issued_by(certificate, authorities):
        return CredentialError.CERTIFICATE_NOT_ISSUED_BY_CA
    if expected_common_name is not None and common_name(certificate) != expected_common_name:
        return CredentialError.NODE_ID_MISMATCH
    return None
