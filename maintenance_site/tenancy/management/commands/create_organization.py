from maintenance_site.commands import AuditedCommand
from maintenance_site.tenancy import services


class Command(AuditedCommand):
    help = "Create an organisation."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--slug", default="")
        parser.add_argument("--time-zone", default="UTC")
        parser.add_argument("--currency", default="EUR")

    def handle(self, name, slug, time_zone, currency, **options):
        organization = services.create_organization(name=name, slug=slug, time_zone=time_zone, currency=currency)
        self.stdout.write(self.style.SUCCESS(f"Created organisation “{organization.name}” ({organization.slug})."))
