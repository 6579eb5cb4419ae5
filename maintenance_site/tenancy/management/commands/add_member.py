from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from maintenance_site.commands import AuditedCommand
from maintenance_site.tenancy import services
from maintenance_site.tenancy.models import Organization
from maintenance_site.tenancy.roles import BACK_OFFICE_ROLES, Role


class Command(AuditedCommand):
    help = "Add a user to an organisation with a role (creating the user if needed)."

    def add_arguments(self, parser):
        parser.add_argument("organization", help="the organisation's slug")
        parser.add_argument("username")
        parser.add_argument("role", help=f"one of: {', '.join(Role.values)}")
        parser.add_argument("--email", default="")
        parser.add_argument("--password", help="set (or reset) the user's password")
        parser.add_argument("--hourly-rate", help="technicians: cost of an hour of their time")

    def handle(self, organization, username, role, email, password, hourly_rate, **options):
        if role not in Role.values:
            raise CommandError(f"“{role}” is not a role; choose one of: {', '.join(Role.values)}.")
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f"No organisation with the slug “{organization}”.")
        rate = None
        if hourly_rate is not None:
            try:
                rate = Decimal(hourly_rate)
            except InvalidOperation:
                raise CommandError(f"--hourly-rate “{hourly_rate}” is not a number.") from None

        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            user = services.create_user(username, email=email, password=password)
            self.stdout.write(f"Created user {username}.")
        elif password:
            user.set_password(password)
            user.save(update_fields=["password"])
        if role in BACK_OFFICE_ROLES and not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        services.add_member(org, user, role, hourly_rate=rate)
        self.stdout.write(self.style.SUCCESS(f"{username} is now {role} in {org.slug}."))
