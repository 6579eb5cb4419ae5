"""Webhook secrets: `whsec_` + base64 of 24 random bytes (Standard Webhooks), kept encrypted at rest.

They cannot be hashed like API keys: the platform needs them in clear to sign. They are encrypted with Fernet
(cryptography's AES-128-CBC + HMAC-SHA256 recipe) under WEBHOOK_ENCRYPTION_KEYS: the first key encrypts, every key
decrypts (MultiFernet), so a key is rotated by putting a new one first and, once `rotate_webhook_encryption`
has re-encrypted the rows, dropping the old one. Without the setting the key is derived from SECRET_KEY.
"""

import base64
import hashlib
import secrets
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret, as the receiver stores it (`whsec_…`)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        derived = base64.urlsafe_b64encode(hashlib.sha256(b"webhook-secrets:" + secret_key.encode()).digest())
        keys = (derived.decode(),)
    return MultiFernet([Fernet(key) for key in keys])


def _box() -> MultiFernet:
    return _fernet(tuple(settings.WEBHOOK_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(secret: str) -> str:
    return _box().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    """The secret in clear; raises ValueError when no configured key opens it (the keys were changed)."""
    try:
        return _box().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError(
            "A webhook secret cannot be decrypted with WEBHOOK_ENCRYPTION_KEYS: restore the key it was encrypted "
            "with (keep old keys after the new one until rotate_webhook_encryption has run)."
        ) from None


def reencrypt(token: str) -> str:
    """The same secret under the first key (MultiFernet.rotate)."""
    return _box().rotate(token.encode()).decode()
