"""Secrets the platform must read back (webhook signing secrets, chat webhook URLs), encrypted at rest.

They cannot be hashed like API keys: the platform needs them in clear to sign or to post. They are encrypted with
Fernet (cryptography's AES-128-CBC + HMAC-SHA256 recipe) under WEBHOOK_ENCRYPTION_KEYS: the first key encrypts,
every key decrypts (MultiFernet), so a key is rotated by putting a new one first and, once the rows are
re-encrypted (`reencrypt`), dropping the old one. Without the setting the key is derived from SECRET_KEY.
"""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


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
            "A stored secret cannot be decrypted with WEBHOOK_ENCRYPTION_KEYS: restore the key it was encrypted "
            "with (keep old keys after the new one until the rows are re-encrypted)."
        ) from None


def reencrypt(token: str) -> str:
    """The same secret under the first key (MultiFernet.rotate)."""
    return _box().rotate(token.encode()).decode()
