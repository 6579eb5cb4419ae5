"""Capacity in the API: `/api/v1/capacity/` (available against planned hours per person and local day),
`/api/v1/capacity/patterns/` (working patterns) and `/api/v1/capacity/time-off/`. Reads for every member; writes for
those who assign work (`assign_work`), through `workorders.capacity.services`."""

from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.response import Response

from maintenance_site.api.routers import router
from maintenance_site.api.serializers import TenantModelSerializer, TenantPrimaryKeyRelatedField
from maintenance_site.api.viewsets import TenantAPIMixin, TenantModelViewSet
from maintenance_site.errors import InvalidInput
from maintenance_site.tenancy.roles import Action
from workorders.capacity import services
from workorders.capacity.hours import MAX_DAYS, capacity, people
from workorders.capacity.models import WEEKDAYS, TimeOff, WorkingPattern

User = get_user_model()
EARLIEST, LATEST = date(1970, 1, 1), date(2999, 12, 31)


def query_day(params, name: str) -> date | None:
    """A local date from the query string (400 naming the parameter when it is not one)."""
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        day = parse_date(raw)
    except ValueError:
        day = None
    if day is None:
        raise InvalidInput(
            _("“%(raw)s” is not a date: give %(name)s as YYYY-MM-DD.") % {"raw": raw[:40], "name": name},
            fields={name: ["YYYY-MM-DD."]},
        )
    if not EARLIEST <= day <= LATEST:  # beyond these the arithmetic on the range leaves the calendar
        raise InvalidInput(
            _("Give %(name)s from %(earliest)s to %(latest)s.")
            % {"name": name, "earliest": EARLIEST, "latest": LATEST},
            fields={name: [_("From %(earliest)s to %(latest)s.") % {"earliest": EARLIEST, "latest": LATEST}]},
        )
    return day


def query_id(params, name: str) -> int | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidInput(_("%(name)s is an id (a whole number).") % {"name": name}, fields={name: [_("An id.")]})
    return int(raw)


def query_range(organization, params, *, default_days: int = 7) -> tuple[date, date]:
    """`from` and `to` (local days, both included; default: this week from today), at most MAX_DAYS long."""
    first = query_day(params, "from") or timezone.localtime(timezone.now(), organization.zone).date()
    last = query_day(params, "to") or first + timedelta(days=default_days - 1)
    if last < first:
        raise InvalidInput(_("`to` is before `from`."), fields={"to": [_("On or after `from`.")]})
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(
            _("Ask for at most %(days)s days at once.") % {"days": MAX_DAYS},
            fields={"to": [_("At most %(days)s days.") % {"days": MAX_DAYS}]},
        )
    return first, last


PARAMETERS = [
    OpenApiParameter("from", date, description="First local day (default: today in the organisation's zone)."),
    OpenApiParameter("to", date, description=f"Last local day, included (default: six days on; at most {MAX_DAYS})."),
    OpenApiParameter("user", int, description="One member."),
    OpenApiParameter("team", int, description="A team's members (default: every technician)."),
]


class CapacityViewSet(TenantAPIMixin, viewsets.ViewSet):
    """Available hours (the working pattern less time off) against planned hours (the estimates of the open orders
    planned to start that day) per person and local day."""

    action_permissions = {"list": Action.VIEW}

    @extend_schema(
        parameters=PARAMETERS,
        responses=dict,
        description="Rows `{user, name, day, available_hours, planned_hours, planned_orders, over_capacity}` for "
        "each person and day, in the organisation's time zone (a daylight-saving day counts the hours the clock "
        "gives). Four queries whatever the people, days and orders.",
    )
    def list(self, request):
        organization = self.organization
        first, last = query_range(organization, request.query_params)
        members = people(
            organization, user=query_id(request.query_params, "user"), team=query_id(request.query_params, "team")
        )
        names = {member.pk: member.get_full_name() or member.get_username() for member in members}
        table = capacity(organization, names, first, last)
        rows = [
            {**entry.as_dict(), "name": names[entry.user_id]}
            for entry in sorted(table.values(), key=lambda e: (list(names).index(e.user_id), e.day))
        ]
        return Response(
            {"from": first, "to": last, "time_zone": organization.time_zone, "count": len(rows), "results": rows}
        )


class WorkingPatternSerializer(TenantModelSerializer):
    user = TenantPrimaryKeyRelatedField(
        queryset=User.objects.all(),
        required=False,
        allow_null=True,
        help_text="The member whose week this is; null: the organisation's default. Set on creation only.",
    )

    class Meta:
        model = WorkingPattern
        fields = ["id", "user", *WEEKDAYS, "created_at", "updated_at"]


class WorkingPatternViewSet(TenantModelViewSet):
    """Weekly working hours: the organisation's default (no user) and members' own. Each weekday is text such as
    "08:00-12:00, 13:00-17:00" (empty: a day off). Creating one for a member who has one edits theirs."""

    queryset = WorkingPattern.objects.select_related("user")
    serializer_class = WorkingPatternSerializer
    write_action = Action.ASSIGN_WORK
    filterset_fields = ["user"]
    ordering_fields = ["updated_at"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        pattern = services.save_working_pattern(self.organization, actor=self.request.user, **data)
        self.written(serializer, pattern)

    def perform_update(self, serializer):
        data = {day: value for day, value in serializer.validated_data.items() if day in WEEKDAYS}
        stored = WorkingPattern.objects.get(pk=serializer.instance.pk)
        if "user" in serializer.validated_data and serializer.validated_data["user"] != stored.user:
            raise InvalidInput(
                _("A pattern's member is set when it is created."), fields={"user": [_("Not editable.")]}
            )
        pattern = services.save_working_pattern(self.organization, actor=self.request.user, user=stored.user, **data)
        self.written(serializer, pattern)

    def perform_destroy(self, instance):
        services.delete_working_pattern(instance, actor=self.request.user)


class TimeOffSerializer(TenantModelSerializer):
    user = TenantPrimaryKeyRelatedField(queryset=User.objects.all())

    class Meta:
        model = TimeOff
        fields = ["id", "user", "kind", "starts_at", "ends_at", "note", "created_at", "updated_at"]


class TimeOffViewSet(TenantModelViewSet):
    """Periods members do not work (leave, sickness, training): they come off their available hours."""

    queryset = TimeOff.objects.select_related("user")
    serializer_class = TimeOffSerializer
    write_action = Action.ASSIGN_WORK
    filterset_fields = ["user", "kind"]
    ordering_fields = ["starts_at", "updated_at"]

    def perform_create(self, serializer):
        entry = services.create_time_off(self.organization, actor=self.request.user, **serializer.validated_data)
        self.written(serializer, entry)

    def perform_update(self, serializer):
        stored = TimeOff.objects.get(pk=serializer.instance.pk)
        changes = dict(serializer.validated_data)
        self.written(serializer, services.update_time_off(stored, actor=self.request.user, **changes))

    def perform_destroy(self, instance):
        services.delete_time_off(instance, actor=self.request.user)


router.register("capacity/patterns", WorkingPatternViewSet, basename="working-pattern")
router.register("capacity/time-off", TimeOffViewSet, basename="time-off")
router.register("capacity", CapacityViewSet, basename="capacity")
