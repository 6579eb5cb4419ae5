"""`manage.py windows`: maintenance windows and maintenance mode on the command line, for scripts.

    windows list --org SLUG [--status scheduled|active|completed|cancelled|failed] [--json]
    windows schedule --org SLUG --title TEXT --start 2027-01-31T22:00 (--duration 2h | --end ISO)
                     [--type system_update] [--description TEXT] [--no-notify]
                     [--emergency --reason TEXT] [--json]
    windows cancel --org SLUG ID --reason TEXT [--json]
    windows end --org SLUG ID [--reason TEXT] [--json]
    windows mode status --org SLUG [--json]
    windows mode on (--org SLUG | --platform) --reason TEXT [--until ISO] [--json]
    windows mode off (--org SLUG | --platform) [--reason TEXT] [--json]

Everything goes through `scheduling.windows.services` and `scheduling.windows.mode`, so the refusals (overlaps,
an emergency without a reason, a window already finished) are the API's. `--json` prints what the API answers
(a window as GET /api/v1/maintenance/windows/{id}/, the mode as GET /api/v1/maintenance/mode). A time without an
offset is read in the organisation's time zone. History names the system user and the reason names the login.

Exit codes: 0 done; 2 bad input (a message names what to fix); 1 refused (a conflict such as an overlap, an
unknown window or organisation, a window in the wrong state).
"""

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from maintenance_site.api.renderers import JSONRenderer
from maintenance_site.commands import AuditedCommand
from maintenance_site.errors import InvalidInput, NotFound
from maintenance_site.tenancy import SYSTEM
from maintenance_site.tenancy.models import Organization
from maintenance_site.validation import parse_duration
from scheduling.windows import mode, services
from scheduling.windows.api import MaintenanceWindowSerializer
from scheduling.windows.models import MaintenanceWindow
from scheduling.windows.notifications import format_utc

STATUSES = MaintenanceWindow.Status.values


class Command(AuditedCommand):
    help = "Maintenance windows and maintenance mode: list, schedule, cancel, end; mode on, off, status."

    def add_arguments(self, parser):
        verbs = parser.add_subparsers(dest="verb", required=True, metavar="verb")

        listing = verbs.add_parser("list", help="windows of an organisation (default: scheduled and running)")
        listing.add_argument("--org", required=True, help="the organisation's slug")
        listing.add_argument("--status", choices=STATUSES, action="append", help="repeat for several")
        listing.add_argument("--json", action="store_true")

        schedule = verbs.add_parser("schedule", help="schedule a window (refused when it overlaps another)")
        schedule.add_argument("--org", required=True)
        schedule.add_argument("--title", required=True)
        schedule.add_argument("--start", required=True, help="ISO 8601; without an offset: the organisation's time")
        length = schedule.add_mutually_exclusive_group(required=True)
        length.add_argument("--duration", help="minutes, or 2h, 90m, 1h30m")
        length.add_argument("--end", help="ISO 8601")
        schedule.add_argument("--type", default=MaintenanceWindow.Type.OTHER, choices=MaintenanceWindow.Type.values)
        schedule.add_argument("--description", default="")
        schedule.add_argument("--no-notify", action="store_true", help="tell only the managers, not everyone")
        schedule.add_argument("--emergency", action="store_true", help="override overlaps; needs --reason")
        schedule.add_argument("--reason", default="", help="with --emergency: why (audited)")
        schedule.add_argument("--json", action="store_true")

        for verb, text in (("cancel", "cancel a window not yet finished"), ("end", "end a running window now")):
            parser_ = verbs.add_parser(verb, help=text)
            parser_.add_argument("id", type=int)
            parser_.add_argument("--org", required=True)
            parser_.add_argument("--reason", required=verb == "cancel", default="")
            parser_.add_argument("--json", action="store_true")

        maintenance_mode = verbs.add_parser("mode", help="maintenance mode: status, on, off")
        switches = maintenance_mode.add_subparsers(dest="switch", required=True, metavar="status|on|off")
        status = switches.add_parser("status")
        status.add_argument("--org", required=True)
        status.add_argument("--json", action="store_true")
        for switch in ("on", "off"):
            parser_ = switches.add_parser(switch)
            target = parser_.add_mutually_exclusive_group(required=True)
            target.add_argument("--org")
            target.add_argument("--platform", action="store_true", help="the whole platform, every organisation")
            parser_.add_argument("--reason", required=switch == "on", default="")
            parser_.add_argument("--json", action="store_true")
            if switch == "on":
                parser_.add_argument("--until", help="the expected end (ISO 8601), announced as Retry-After")

    def handle(self, *args, verb, **options):
        self.json = options.get("json", False)
        handler = getattr(self, "do_" + (verb if verb != "mode" else "mode_" + options["switch"]))
        handler(**options)

    # --- helpers ----------------------------------------------------------------------------------------

    @staticmethod
    def organization(slug: str | None) -> Organization | None:
        if slug is None:
            return None
        found = Organization.objects.filter(slug=slug).first()
        if found is None:
            raise CommandError(f"No organisation with the slug “{slug}”.", returncode=2)
        return found

    @staticmethod
    def moment(raw: str, organization, field: str):
        value = parse_datetime(raw.strip().replace(" ", "T").replace("Z", "+00:00"))
        if value is None:
            raise InvalidInput(f"“{raw}” is not a date and time: write e.g. 2027-01-31T22:00.", fields={field: []})
        if timezone.is_naive(value):
            value = value.replace(tzinfo=organization.zone if organization else timezone.get_default_timezone())
        return value

    def window(self, organization, pk: int) -> MaintenanceWindow:
        window = MaintenanceWindow.objects.for_tenant(organization).filter(pk=pk).first()
        if window is None:
            raise NotFound(f"No maintenance window {pk} in {organization.slug}.")
        return window

    def print_json(self, data) -> None:
        self.stdout.write(JSONRenderer().render(data).decode())

    def print_windows(self, organization, windows) -> None:
        windows = (
            MaintenanceWindow.objects.for_tenant(organization)
            .filter(pk__in=[window.pk for window in windows])
            .select_related("location", "created_by")
            .prefetch_related("assets")
            .order_by("starts_at", "pk")
        )
        if self.json:
            self.print_json(MaintenanceWindowSerializer(windows, many=True).data)
            return
        if not windows:
            self.stdout.write("No windows.")
        for window in windows:
            flag = " (emergency)" if window.emergency else ""
            self.stdout.write(
                f"{window.pk:>6}  {window.status:<9}  {format_utc(window.starts_at)} → {format_utc(window.ends_at)}"
                f"  {window.maintenance_type:<13}  {window.title}{flag}"
            )

    def print_window(self, organization, window: MaintenanceWindow, done: str) -> None:
        if self.json:
            window = (
                MaintenanceWindow.objects.select_related("location", "created_by")
                .prefetch_related("assets")
                .get(pk=window.pk)
            )
            self.print_json(MaintenanceWindowSerializer(window).data)
        else:
            self.stdout.write(self.style.SUCCESS(f"{done}: window {window.pk}, {window.title} ({window.status})."))

    def print_mode(self, organization) -> None:
        body = mode.mode_body(organization)
        if self.json:
            self.print_json(body)
            return
        if not body["active"]:
            self.stdout.write("Maintenance mode is off.")
            return
        until = f" until about {format_utc(body['expected_end'])}" if body["expected_end"] else ""
        why = f": {body['reason']}" if body["reason"] else ""
        who = "the platform" if body["platform"] else "this organisation"
        self.stdout.write(f"Maintenance mode is ON for {who}{until}{why}.")

    # --- verbs ------------------------------------------------------------------------------------------

    def do_list(self, org, status=None, **options):
        organization = self.organization(org)
        statuses = status or list(MaintenanceWindow.PLANNED_STATUSES)
        windows = MaintenanceWindow.objects.for_tenant(organization).occurrences().filter(status__in=statuses)
        self.print_windows(organization, list(windows.only("pk")))

    def do_schedule(self, org, title, start, duration, end, type, description, no_notify, emergency, reason, **_):
        organization = self.organization(org)
        starts_at = self.moment(start, organization, "start")
        window = services.create_window(
            organization,
            title=title,
            maintenance_type=type,
            description=description,
            starts_at=starts_at,
            duration_minutes=parse_duration(duration) if duration else None,
            ends_at=self.moment(end, organization, "end") if end else None,
            notify_users=not no_notify,
            emergency=emergency,
            emergency_reason=reason if emergency else "",
            actor=SYSTEM,
        )
        self.print_window(organization, window, "Scheduled")

    def do_cancel(self, org, id, reason, **options):
        organization = self.organization(org)
        window = services.cancel_window(self.window(organization, id), reason=reason, actor=SYSTEM)
        self.print_window(organization, window, "Cancelled")

    def do_end(self, org, id, reason, **options):
        organization = self.organization(org)
        window = services.end_window(self.window(organization, id), reason=reason, actor=SYSTEM)
        self.print_window(organization, window, "Ended")

    def do_mode_status(self, org, **options):
        self.print_mode(self.organization(org))

    def do_mode_on(self, org=None, platform=False, reason="", until=None, **options):
        organization = self.organization(org)
        expected_end = self.moment(until, organization, "until") if until else None
        mode.enter_maintenance_mode(organization, reason=reason, until=expected_end, actor=SYSTEM)
        self.print_mode(organization)

    def do_mode_off(self, org=None, platform=False, reason="", **options):
        organization = self.organization(org)
        mode.exit_maintenance_mode(organization, reason=reason, actor=SYSTEM)
        self.print_mode(organization)
