"""Capacity in the back office: working patterns (the organisation's default and members' own) and time off, each
written through `workorders.capacity.services`; planners and managers (those who assign work) change them."""

from django.contrib import admin

from maintenance_site.tenancy.admin_base import ServiceAdmin, adopt
from maintenance_site.tenancy.roles import Action
from workorders.capacity import services
from workorders.capacity.models import WEEKDAYS, TimeOff, WorkingPattern


@admin.register(WorkingPattern)
class WorkingPatternAdmin(ServiceAdmin):
    """Each weekday's periods as text ("08:00-12:00, 13:00-17:00"; empty: a day off), in the organisation's time."""

    write_action = Action.ASSIGN_WORK
    list_display = ["__str__", *WEEKDAYS]
    list_select_related = ["user"]

    def get_readonly_fields(self, request, obj=None):
        return ["user"] if obj is not None else []  # a member's week is theirs: delete it to give it to another

    def save_model(self, request, obj, form, change):
        days = {day: form.cleaned_data[day] for day in WEEKDAYS}
        organization = obj.organization if change else self.new_organization(request, form)
        user = obj.user if change else form.cleaned_data.get("user")
        adopt(obj, services.save_working_pattern(organization, actor=request.user, user=user, **days))

    def delete_model(self, request, obj):
        services.delete_working_pattern(obj, actor=request.user)


@admin.register(TimeOff)
class TimeOffAdmin(ServiceAdmin):
    """Periods members do not work: they come off their available hours on the dispatch board."""

    write_action = Action.ASSIGN_WORK
    list_display = ["user", "kind", "starts_at", "ends_at", "note"]
    list_select_related = ["user"]
    list_filter = ["kind"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "note"]
    ordering = ["-starts_at", "-id"]

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in ("user", "kind", "starts_at", "ends_at", "note")}
        if change:
            saved = services.update_time_off(obj, actor=request.user, **data)
        else:
            saved = services.create_time_off(self.new_organization(request, form), actor=request.user, **data)
        adopt(obj, saved)

    def delete_model(self, request, obj):
        services.delete_time_off(obj, actor=request.user)
