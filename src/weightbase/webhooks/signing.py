"""Signing webhook deliveries, and checking a signature on the receiving end.

Each delivery carries ``X-Weightbase-Timestamp`` (Unix seconds) and
``X-Weightbase-Signature: sha256=<hex>``, the HMAC-SHA256 of
``"<timestamp>.<body>"`` under the subscription's secret. Signing the
timestamp with the body lets a receiver refuse an old delivery replayed later:

    if not verify_signature(secret, body, headers["X-Weightbase-Timestamp"],
                            headers["X-Weightbase-Signature"]):
        return 401
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "new_secret", "sign", "verify_signature"]

SIGNATURE_HEADER = "X-Weightbase-Signature"
TIMESTAMP_HEADER = "X-Weightbase-Timestamp"

#: How old a signed timestamp :func:`verify_signature` accepts by default, in seconds.
DEFAULT_TOLERANCE_S = 300.0


def new_secret() -> str:
    """A fresh signing secret: 32 random bytes, URL-safe text."""
    return secrets.token_urlsafe(32)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str | int,
    signature: str,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True if ``signature`` signs ``body`` at ``timestamp`` and that is recent enough."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, sent), signature)
