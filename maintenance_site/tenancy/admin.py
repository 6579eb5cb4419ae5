"""The back office of organisations, memberships and API keys (each written through `tenancy.services`), and the
site-wide user admin, whose autocompletes list members of the active organisation."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework_api_key.models import APIKey as _LibraryAPIKey

from maintenance_site.errors import DomainError
from maintenance_site.tenancy import services
from maintenance_site.tenancy.admin_base import (
    HistoryAdmin,
    ServiceAdmin,
    ServiceAdminMixin,
    ServiceForm,
    ThemeModelAdmin,
    active_organization,
    adopt,
    request_may,
    submitted,
)
from maintenance_site.tenancy.admin_library import USER_FORMS, theme_library_pages
from maintenance_site.tenancy.models import ApiKeyScope, Membership, Organization, OrganizationAPIKey, Profile
from maintenance_site.tenancy.roles import Action, Role, roles_allowed

User = get_user_model()


@admin.register(Organization)
class OrganizationAdmin(ServiceAdmin):
    write_action = Action.MANAGE_SETTINGS
    list_display = ["name", "slug", "time_zone", "currency", "technicians_can_claim", "require_verification"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def has_add_permission(self, request, *args):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        if change:
            changes = submitted(form, services.ORGANIZATION_FIELDS, changed=True)
            adopt(obj, services.update_organization(obj, actor=request.user, **changes))
        else:
            adopt(obj, services.create_organization(**submitted(form, services.ORGANIZATION_FIELDS)))

    def delete_model(self, request, obj):
        services.delete_organization(obj, actor=request.user)


@admin.register(Membership)
class MembershipAdmin(ServiceAdmin):
    write_action = Action.MANAGE_USERS
    list_display = ["user", "organization", "role", "hourly_rate", "is_active"]
    list_filter = ["role", "is_active", "organization"]
    list_select_related = ["user", "organization"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "user__email"]
    autocomplete_fields = ["user"]

    def get_readonly_fields(self, request, obj=None):
        return ["organization", "user"] if obj is not None else []  # a membership is one person in one place

    def save_model(self, request, obj, form, change):
        fields = submitted(form, services.MEMBERSHIP_FIELDS, changed=change)
        if change:
            saved = services.update_membership(obj, actor=request.user, **fields)
        else:
            organization = self.new_organization(request, form)
            user = form.cleaned_data["user"]
            saved = services.create_membership(organization, actor=request.user, user=user, **fields)
        adopt(obj, saved)

    def delete_model(self, request, obj):
        services.remove_membership(obj, actor=request.user)


@admin.register(Profile)
class ProfileAdmin(ServiceAdminMixin, HistoryAdmin):
    """The language each person reads the platform in (pages, e-mails, notifications), written through
    `tenancy.services.set_language`: a manager (`manage_users`) for the members of their active organisation, a
    platform administrator for anyone. Empty: the person's browser's language, else the organisation's."""

    list_display = ["user", "language", "updated_at"]
    list_filter = ["language"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "user__email"]
    autocomplete_fields = ["user"]
    fields = ["user", "language"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("user")
        if request.user.is_superuser:
            return queryset
        organization = active_organization(request)
        if organization is None:
            return queryset.none()
        return queryset.filter(
            user__memberships__organization=organization, user__memberships__is_active=True
        ).distinct()

    def _may(self, request) -> bool:
        return request.user.is_superuser or request_may(request, Action.MANAGE_USERS)

    def has_module_permission(self, request):
        return self._may(request)

    def has_view_permission(self, request, obj=None):
        return self._may(request)

    def has_add_permission(self, request):
        return self._may(request)

    def has_change_permission(self, request, obj=None):
        return self._may(request)

    def has_delete_permission(self, request, obj=None):
        return False  # empty the language instead

    def get_readonly_fields(self, request, obj=None):
        return ["user"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        user = obj.user if change else form.cleaned_data["user"]
        adopt(obj, services.set_language(user, actor=request.user, language=form.cleaned_data.get("language", "")))


class ApiKeyCreateForm(ServiceForm):
    class Meta:
        model = OrganizationAPIKey
        fields = ["name", "scope", "expiry_date"]


@admin.register(OrganizationAPIKey)
class OrganizationAPIKeyAdmin(ServiceAdmin):
    """Keys are created (the key shown once), edited and revoked through the services; a revoked key stays as a
    record of what acted (its service user is named in the history), so there is no delete."""

    write_action = Action.MANAGE_KEYS
    list_display = [
        "name",
        "prefix",
        "organization",
        "scope",
        "created",
        "last_used_at",
        "revoked",
        "expiry_date",
    ]
    list_filter = ["scope", "revoked", "organization"]
    list_select_related = ["organization"]
    search_fields = ["name", "prefix"]
    readonly_fields = [
        "prefix",
        "service_user",
        "created_by",
        "created",
        "last_used_at",
        "revoked",
        "revoked_at",
    ]
    actions = ["revoke_selected"]

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
            kwargs["fields"] = ["name", "scope", "expiry_date"]
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "scope", "expiry_date"]
        return [
            "name",
            "prefix",
            "scope",
            "service_user",
            "created_by",
            "created",
            "last_used_at",
            "expiry_date",
            "revoked",
            "revoked_at",
        ]

    def save_model(self, request, obj, form, change):
        if change:
            changes = submitted(form, services.API_KEY_FIELDS, changed=True)
            adopt(obj, services.update_api_key(obj, actor=request.user, **changes))
            return
        api_key, key = services.create_api_key(
            self.new_organization(request, form),
            name=form.cleaned_data["name"],
            scope=form.cleaned_data.get("scope") or ApiKeyScope.READ,
            created_by=request.user,
            expiry_date=form.cleaned_data.get("expiry_date"),
        )
        adopt(obj, api_key)
        messages.warning(request, _("The new key is %(key)s — copy it now: it is shown only once.") % {"key": key})

    def response_add(self, request, obj, post_url_continue=None):
        return HttpResponseRedirect(reverse("admin:tenancy_organizationapikey_changelist"))

    @admin.action(description=_("Revoke the selected keys"))
    def revoke_selected(self, request, queryset):
        count = 0
        for api_key in queryset:
            try:
                services.revoke_api_key(api_key)
                count += 1
            except DomainError as exc:
                messages.error(request, exc.message)
        messages.success(
            request, ngettext("Revoked %(count)s key.", "Revoked %(count)s keys.", count) % {"count": count}
        )


# The library's own key model is unused: keys here belong to an organisation (OrganizationAPIKey).
if admin.site.is_registered(_LibraryAPIKey):
    admin.site.unregister(_LibraryAPIKey)


# --- the site-wide user admin: autocompletes list members of the active organisation ----------------------------

# Autocomplete fields whose choices must be able to carry out work (app label, model, field).
WORKER_FIELDS = {("workorders", "workorder", "assignee"), ("workorders", "timeentry", "technician")}

_BaseUserAdmin = type(admin.site.get_model_admin(User)) if admin.site.is_registered(User) else UserAdmin


class MemberScopedUserAdmin(_BaseUserAdmin, ThemeModelAdmin):
    """The stock user admin, plus: staff who are not superusers may use the user autocomplete (work-order
    assignee, membership user...) of the back office, and it lists only active members of their active
    organisation (only those who may carry out work, for an assignee). Nothing else changes: the user
    pages themselves still need Django's own permissions. On the theme, with its user forms."""

    form = USER_FORMS["form"]
    add_form = USER_FORMS["add_form"]
    change_password_form = USER_FORMS["change_password_form"]

    def _autocomplete_source(self, request):
        match = getattr(request, "resolver_match", None)
        if match is None or match.view_name != f"{self.admin_site.name}:autocomplete":
            return None
        return request.GET.get("app_label"), request.GET.get("model_name"), request.GET.get("field_name")

    def has_view_permission(self, request, obj=None):
        if super().has_view_permission(request, obj):
            return True
        return obj is None and self._autocomplete_source(request) is not None and request_may(request, Action.VIEW)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        source = self._autocomplete_source(request)
        if source is None or request.user.is_superuser:
            return queryset
        organization = active_organization(request)
        if organization is None:
            return queryset.none()
        roles = roles_allowed(Action.EXECUTE_WORK) if source in WORKER_FIELDS else list(Role)
        return queryset.filter(
            is_active=True,
            memberships__organization=organization,
            memberships__is_active=True,
            memberships__role__in=[role.value for role in roles],
        )


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, MemberScopedUserAdmin)

# The libraries' pages (groups, periodic tasks, task results, login attempts) on the back office's theme.
theme_library_pages()
