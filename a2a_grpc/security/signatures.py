"""Signed webhook deliveries: the ``A2A-Grpc-Signature`` header, made and checked.

The header is ``t=<unix seconds>,v1=<hex>`` where the hex is the HMAC-SHA256, keyed with the
shared secret, of the ASCII timestamp, a ``.`` and the request body bytes (the scheme Stripe and
Standard Webhooks use). Signing the timestamp with the body lets a receiver refuse replays of an
old delivery; the receiver must verify the raw body, before parsing it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from collections.abc import Sequence
from typing import Final

__all__ = ["SIGNATURE_HEADER", "sign", "verify_signature"]

SIGNATURE_HEADER: Final = "A2A-Grpc-Signature"


def _key(secret: bytes | str) -> bytes:
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    if not key:
        raise ValueError("the signing secret is empty")
    return key


def _digest(key: bytes, timestamp: int, body: bytes | Sequence[bytes]) -> str:
    mac = hmac.new(key, f"{timestamp}.".encode(), hashlib.sha256)
    for chunk in (body,) if isinstance(body, bytes) else body:  # fed in pieces: no copy of the body
        mac.update(chunk)
    return mac.hexdigest()


def sign(secret: bytes | str, body: bytes | Sequence[bytes], timestamp: int | None = None) -> str:
    """The :data:`SIGNATURE_HEADER` value for ``body``: ``t=<unix seconds>,v1=<hex HMAC-SHA256>``,
    the HMAC keyed with ``secret`` over ``"<t>."`` followed by the body bytes (``body`` may be given
    as a sequence of chunks, signed as their concatenation)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_digest(_key(secret), t, body)}"


_V1: Final = re.compile(r"[0-9a-f]{64}")


def verify_signature(
    secret: bytes | str, header_value: str, body: bytes, tolerance: float = 300, *, now: float | None = None
) -> bool:
    """Whether ``header_value`` (the :data:`SIGNATURE_HEADER` of a delivery) signs ``body`` with
    ``secret`` and its timestamp is within ``tolerance`` seconds of ``now`` (default: the clock).

    ``body`` must be the raw request body, byte for byte. Several ``v1=`` entries may be present
    (a sender rotating secrets); one match is enough. The comparison is constant-time.
    """
    if not math.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number of seconds >= 0, got {tolerance!r}")
    key = _key(secret)
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header_value.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == "v1" and _V1.fullmatch(value):
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = _digest(key, timestamp, body).encode()
    # Every candidate is compared, so the time taken does not say which one matched.
    return sum(hmac.compare_digest(expected, c.encode()) for c in candidates) > 0
