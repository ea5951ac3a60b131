"""Read-only links that expire, for sharing a view with someone outside (the regulator).

A token is `payload.signature`, both base64url: the payload is JSON `{"node", "view", "exp"}`
(expiry, Unix seconds) and the signature its HMAC-SHA256 under a secret kept in the data
directory (`DATA/share.key`, 32 random bytes, 0600, made on first use). Changing the key revokes
every link given out."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

KEY_FILE: Final = "share.key"


class LinkRefused(Exception):
    """The link cannot be honoured; the message says why, for the page shown instead."""


class LinkExpired(LinkRefused):
    pass


class LinkForged(LinkRefused):
    pass


@dataclass(frozen=True)
class SharedView:
    node: str
    view: str
    expires: datetime


def load_key(data_dir: Path) -> bytes:
    """The data directory's signing key, made (0600) when missing."""
    path = data_dir / KEY_FILE
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        _create_key(path)
        key = path.read_bytes()
    if len(key) < 32:
        raise ValueError(f"{path} holds {len(key)} bytes: a signing key needs 32")
    return key


def _create_key(path: Path) -> None:
    """Write a new key whole, then link it into place: a concurrent reader sees no key or the
    whole key, and of two concurrent writers the first wins."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(secrets.token_bytes(32))
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, node: str, view: str, expires: datetime) -> str:
    payload = json.dumps(
        {"node": node, "view": view, "exp": int(expires.timestamp())}, separators=(",", ":")
    ).encode()
    signature = hmac.new(key, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def verify(key: bytes, token: str, view: str, now: datetime) -> SharedView:
    """The view a token grants; LinkForged if it was not made with `key` (or is for another
    view), LinkExpired once its time has passed."""
    try:
        payload_text, signature_text = token.split(".")
        payload, signature = _unb64(payload_text), _unb64(signature_text)
    except (ValueError, binascii.Error):
        raise LinkForged("this link is not one the aggregator made") from None
    expected = hmac.new(key, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise LinkForged("this link is not one the aggregator made (or it was changed)")
    fields = json.loads(payload)
    if fields.get("view") != view:
        raise LinkForged(f"this link is not for the {view} view")
    expires = datetime.fromtimestamp(fields["exp"], UTC)
    if now >= expires:
        raise LinkExpired(f"this link expired at {expires:%Y-%m-%d %H:%M} UTC")
    return SharedView(str(fields["node"]), view, expires)
