"""Base for management commands: history names the system user, and a refused operation prints its
message and exits non-zero instead of a traceback."""

from django.core.management.base import BaseCommand, CommandError

from maintenance_site import audit
from maintenance_site.errors import DomainError


class AuditedCommand(BaseCommand):
    def execute(self, *args, **options):
        try:
            with audit.acting_as(audit.system_user()):
                return super().execute(*args, **options)
        except DomainError as exc:
            raise CommandError(exc.message, returncode=2 if exc.status_code in (400, 422) else 1) from None
