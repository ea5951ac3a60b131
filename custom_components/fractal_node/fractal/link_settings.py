"""Checks of the settings that link a node to its aggregator, before anything connects.

The policy per link mode lives here so the config flow and the set-up apply the same rules:

* local aggregator: its CA issued the node's certificate and the broker's, and it enrols each
  node with CN = node id (the broker's ACL relies on it);
* AWS IoT Core: the CA is Amazon Root CA 1, the trust anchor of the endpoint's server
  certificate; AWS's own CA issues device certificates, which carry no thing name (the thing
  name is the node id), so neither the issuer nor the CN is checked.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime

from .protocol import LinkMode
from .tls import CredentialCheck, check_credentials

_HOST_LABEL = re.compile(r"^(?!-)[a-zA-Z0-9-]{1,63}(?<!-)$")
_MAX_HOST_LENGTH = 253


def valid_host(host: str) -> bool:
    """An IP address or a DNS host name (no scheme, port or path)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _valid_host_name(host)
    return True


def valid_endpoint(endpoint: str) -> bool:
    """A fully qualified host name, e.g. ``abc123-ats.iot.eu-west-2.amazonaws.com``.

    Not restricted to ``amazonaws.com``: AWS IoT also serves configurable custom domains.
    """
    return "." in endpoint and _valid_host_name(endpoint)


def _valid_host_name(host: str) -> bool:
    name = host.removesuffix(".")
    if not name or len(name) > _MAX_HOST_LENGTH:
        return False
    return all(_HOST_LABEL.fullmatch(label) for label in name.split("."))


def check_link_credentials(
    link: LinkMode,
    *,
    node_id: str,
    certificate_pem: str,
    private_key_pem: str,
    ca_pem: str,
    now: datetime,
) -> CredentialCheck:
    """Check a linked node's credentials with the rules of its link mode."""
    local = link is LinkMode.LOCAL
    return check_credentials(
        certificate_pem=certificate_pem,
        private_key_pem=private_key_pem,
        ca_pem=ca_pem,
        now=now,
        expected_common_name=node_id if local else None,
        require_issued_by_ca=local,
    )
