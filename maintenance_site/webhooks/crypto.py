"""Webhook secrets: `whsec_` + base64 of 24 random bytes (Standard Webhooks), kept encrypted at rest
(maintenance_site.security.encryption: Fernet under WEBHOOK_ENCRYPTION_KEYS)."""

import base64
import secrets

from maintenance_site.security.encryption import decrypt, encrypt, reencrypt

SECRET_PREFIX = "whsec_"

__all__ = ["SECRET_PREFIX", "decrypt", "encrypt", "new_secret", "reencrypt"]


def new_secret() -> str:
    """A fresh signing secret, as the receiver stores it (`whsec_…`)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()
