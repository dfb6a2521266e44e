"""Webhook secrets at rest: sealed with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) under
the deployment's key, `FMCSA_WEBHOOK_SECRET_KEY`.

The gateway seals a secret as it arrives; `AlertRuleChanged` carries only the sealed token; the
notifier opens it in memory to sign. A response, a log line or an event never holds the plaintext.
The key may list several comma-separated Fernet keys: the first seals, any of them opens (rotation).
Losing the key makes every sealed secret unreadable: set the destinations' secrets again.
"""

from __future__ import annotations

import base64
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SealingUnavailable(RuntimeError):
    """No key, or a key that is not a Fernet key."""


class SealedSecretUnreadable(ValueError):
    """A sealed secret was sealed under another key, or was altered."""


def generate_key() -> str:
    """A new Fernet key: 32 random bytes, URL-safe base64 (what `up` writes to the data folder)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


class SecretBox:
    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise SealingUnavailable("FMCSA_WEBHOOK_SECRET_KEY is not set")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in parts])
        except (ValueError, TypeError):
            raise SealingUnavailable(
                "FMCSA_WEBHOOK_SECRET_KEY is not a Fernet key (32 bytes, URL-safe base64)"
            ) from None

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SealedSecretUnreadable("the sealed secret does not open with this key") from None
