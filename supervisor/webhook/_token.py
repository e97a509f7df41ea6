"""LiveKit's webhook signature: an HS256 JWT whose ``sha256`` claim is the body's hash.

This is the check livekit-api's ``WebhookReceiver`` makes (through PyJWT), written for the hot
path: PyJWT's general machinery (key-type sniffing on every call, per-character alphabet scans,
option merging) was most of the endpoint's CPU time, and a webhook flood is exactly when that
matters. It accepts no token that PyJWT with livekit's options would refuse, and is stricter
where that costs nothing (numeric claims must be JSON numbers, JSON must be UTF-8, no ``crit``
or ``b64`` headers, the body hash must be canonical base64); the webhook tests check it
against livekit-api's verifier on generated tokens.

Order of the checks: shape, then the HMAC over the signing input (a forged token costs one
HMAC and no JSON parsing), then the header (authentic headers already checked are
remembered: the server uses one), then the claims, then the body hash. Everything but the
body hash needs only the token (``claims``), so the endpoint checks it before it reads a byte
of the body (``body_matches`` then checks the body it read). It never raises: a token is
authentic or it is not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from typing import Any

__all__ = ("WebhookVerifier",)

_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
_LIVEKIT_LEEWAY_S = 60.0
"""livekit-api's ``TokenVerifier`` default clock-skew allowance."""
_GOOD_HEADERS_KEPT = 8


class WebhookVerifier:
    """Checks the ``Authorization`` token of a LiveKit webhook against its body.

    Args:
        api_key: the key the server signs webhooks with (the token's ``iss``).
        api_secret: the matching secret (the HMAC key).
        leeway_s: clock skew allowed on ``exp``, ``nbf`` and ``iat``.
        now: wall clock (seconds since the epoch).

    Raises:
        ValueError: the key or the secret is empty.
    """

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        *,
        leeway_s: float = _LIVEKIT_LEEWAY_S,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not api_key or not api_secret:
            raise ValueError("a webhook verifier needs the API key and secret; check [livekit]")
        self._issuer = api_key
        self._secret = api_secret.encode("utf-8")
        self._leeway = leeway_s
        self._now = now
        self._good_headers: set[str] = set()

    def verify(self, token: str, body: bytes) -> bool:
        """True when ``token`` is a valid, unexpired token of ours vouching for ``body``."""
        claims = self.claims(token)
        return claims is not None and self.body_matches(claims, body)

    def body_matches(self, claims: dict[str, Any], body: bytes) -> bool:
        """True when ``claims`` (from ``claims()``) carry the SHA-256 of exactly ``body``."""
        claimed = claims.get("sha256")
        if not isinstance(claimed, str) or not claimed:
            return False
        try:
            digest = base64.b64decode(claimed, validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(digest, hashlib.sha256(body).digest())

    def claims(self, token: str) -> dict[str, Any] | None:
        """The token's claims when its signature, header, issuer and time claims are valid and
        it carries a body hash (everything but comparing that hash with a body), else None."""
        if not token.isascii():
            return None
        signing_input, _, signature_segment = token.rpartition(".")
        header_segment, dot, payload_segment = signing_input.partition(".")
        if not dot or "." in payload_segment:
            return None
        signature = _b64url(signature_segment)
        if signature is None:
            return None
        expected = hmac.new(self._secret, signing_input.encode("ascii"), hashlib.sha256).digest()
        if not hmac.compare_digest(signature, expected):
            return None
        if header_segment not in self._good_headers and not self._good_header(header_segment):
            return None
        claims = _json_object(_b64url(payload_segment))
        if claims is None or not self._valid_claims(claims):
            return None
        if not isinstance(claims.get("sha256"), str) or not claims["sha256"]:
            return None  # a webhook token always vouches for a body: no need to read one
        return claims

    def _good_header(self, segment: str) -> bool:
        header = _json_object(_b64url(segment))
        if (
            header is None
            or header.get("alg") != "HS256"
            or "crit" in header
            or "b64" in header
            or not isinstance(header.get("kid", ""), str)
        ):
            return False
        # The server signs every webhook with the same header: remember it (a few, bounded).
        if len(self._good_headers) < _GOOD_HEADERS_KEPT:
            self._good_headers.add(segment)
        return True

    def _valid_claims(self, claims: dict[str, Any]) -> bool:
        now = self._now()
        expires = _seconds(claims.get("exp"))
        if expires is None or expires <= now - self._leeway:
            return False
        for name in ("nbf", "iat"):
            if name in claims:
                at = _seconds(claims[name])
                if at is None or at > now + self._leeway:
                    return False
        if claims.get("iss") != self._issuer:
            return False
        if claims.get("aud"):
            return False  # no audience is configured, as with livekit-api
        return all(
            not (name in claims and not isinstance(claims[name], str)) for name in ("sub", "jti")
        )


def _b64url(segment: str) -> bytes | None:
    """Decode one base64url segment as PyJWT does (optional padding, canonical), or None."""
    stripped = segment.rstrip("=")
    padding = len(segment) - len(stripped)
    if padding > 2 or (padding and len(segment) % 4) or len(stripped) % 4 == 1:
        return None
    if not _SEGMENT.fullmatch(stripped):
        return None
    try:
        data = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(data).rstrip(b"=") != stripped.encode("ascii"):
        return None  # non-zero trailing bits: another encoding of the same bytes
    return data


def _json_object(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _seconds(value: object) -> int | None:
    """A NumericDate as PyJWT reads it (truncated to an int); only JSON numbers qualify."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return int(value)
    except (ValueError, OverflowError):
        return None
