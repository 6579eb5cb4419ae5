"""Organisations, memberships, roles and API keys; `SYSTEM`, the actor automation passes to services
(`maintenance_site.tenancy.actors`)."""

from maintenance_site.tenancy.actors import SYSTEM

__all__ = ["SYSTEM"]
