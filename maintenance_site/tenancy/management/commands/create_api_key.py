from django.core.management.base import CommandError

from maintenance_site.commands import AuditedCommand
from maintenance_site.tenancy import services
from maintenance_site.tenancy.models import ApiKeyScope, Organization


class Command(AuditedCommand):
    help = "Create an API key for an organisation. The key is printed once and never stored."

    def add_arguments(self, parser):
        parser.add_argument("organization", help="the organisation's slug")
        parser.add_argument("name", help="who or what uses the key")
        parser.add_argument("--scope", default=ApiKeyScope.READ, choices=ApiKeyScope.values)

    def handle(self, organization, name, scope, **options):
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f"No organisation with the slug “{organization}”.")
        api_key, key = services.create_api_key(org, name=name, scope=scope)
        self.stderr.write(f"Created {scope} key “{api_key.name}” ({api_key.prefix}) for {org.slug}. Copy it now:")
        self.stdout.write(key)
