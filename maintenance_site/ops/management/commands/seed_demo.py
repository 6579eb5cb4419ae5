"""Demo data so a newcomer sees a working system: two organisations, a user for each role in each,
a consultant in both, and each app's sample data. Safe to run again: it only adds what is missing."""

from importlib import import_module

from django.contrib.auth import get_user_model
from django.db import transaction

from maintenance_site import progress
from maintenance_site.commands import AuditedCommand
from maintenance_site.tenancy import services
from maintenance_site.tenancy.models import Organization
from maintenance_site.tenancy.roles import BACK_OFFICE_ROLES, Role

DEMO_PASSWORD = "demo"
ORGANIZATIONS = [
    {"name": "Acme Plant", "slug": "acme", "time_zone": "Europe/Berlin", "currency": "EUR"},
    {
        "name": "Globex Facilities",
        "slug": "globex",
        "time_zone": "America/New_York",
        "currency": "USD",
        "require_verification": True,
    },
]
HOURLY_RATES = {Role.TECHNICIAN: 48, Role.PLANNER: 55, Role.MANAGER: 70}
# Each app that has demo data exposes `seed(organization, users)` in its `demo` module.
DEMO_MODULES = [
    "assets.demo",
    "assets.telemetry.demo",
    "workorders.demo",
    "inventory.demo",
    "sla.demo",
    "scheduling.preventive.demo",
    "scheduling.windows.demo",
]


class Command(AuditedCommand):
    help = "Create the demo organisations, users and sample data (idempotent)."

    def handle(self, **options):
        User = get_user_model()
        logins = []
        bars = progress.bars(stream=self.stderr, quiet=options["verbosity"] == 0)
        steps = len(ORGANIZATIONS) * len(DEMO_MODULES)
        with bars as display, display.step("demo data", total=steps) as step, transaction.atomic():
            if not User.objects.filter(username="admin").exists():
                User.objects.create_superuser("admin", "admin@example.com", DEMO_PASSWORD)
            logins.append(("admin", "superuser, every organisation"))
            for spec in ORGANIZATIONS:
                organization = Organization.objects.filter(slug=spec["slug"]).first()
                if organization is None:
                    organization = services.create_organization(**spec)
                users = {}
                for role in Role:
                    username = f"{organization.slug}-{role.value}"
                    user = User.objects.filter(username=username).first()
                    if user is None:
                        user = User.objects.create_user(
                            username,
                            f"{username}@example.com",
                            DEMO_PASSWORD,
                            first_name=f"{organization.name.split()[0]} {role.label}",
                            is_staff=role in BACK_OFFICE_ROLES,
                        )
                    services.add_member(organization, user, role, hourly_rate=HOURLY_RATES.get(role))
                    users[role] = user
                    logins.append((username, f"{role.label} in {organization.slug}"))
                for module in DEMO_MODULES:
                    import_module(module).seed(organization, users)
                    step.advance()
            consultant = User.objects.filter(username="consultant").first()
            if consultant is None:
                consultant = User.objects.create_user(
                    "consultant", "consultant@example.com", DEMO_PASSWORD, is_staff=True
                )
            services.add_member(Organization.objects.get(slug="acme"), consultant, Role.PLANNER)
            services.add_member(Organization.objects.get(slug="globex"), consultant, Role.MANAGER)
            logins.append(("consultant", "planner in acme and manager in globex"))
        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Every demo password is “{DEMO_PASSWORD}”:"))
        for username, what in logins:
            self.stdout.write(f"  {username:<22} {what}")
