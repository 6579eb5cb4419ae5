from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from rest_framework_api_key.models import APIKey as _LibraryAPIKey

from maintenance_site.errors import DomainError
from maintenance_site.tenancy import services
from maintenance_site.tenancy.admin_base import TenantAdmin
from maintenance_site.tenancy.models import ApiKeyScope, Membership, Organization, OrganizationAPIKey
from maintenance_site.tenancy.roles import Action


@admin.register(Organization)
class OrganizationAdmin(TenantAdmin):
    write_action = Action.MANAGE_SETTINGS
    list_display = ["name", "slug", "time_zone", "currency", "technicians_can_claim", "require_verification"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def has_add_permission(self, request, *args):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(TenantAdmin):
    write_action = Action.MANAGE_USERS
    list_display = ["user", "organization", "role", "hourly_rate", "is_active"]
    list_filter = ["role", "is_active", "organization"]
    list_select_related = ["user", "organization"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "user__email"]
    autocomplete_fields = ["user"]


class ApiKeyCreateForm(forms.ModelForm):
    class Meta:
        model = OrganizationAPIKey
        fields = ["name", "scope", "expiry_date"]


@admin.register(OrganizationAPIKey)
class OrganizationAPIKeyAdmin(TenantAdmin):
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
            super().save_model(request, obj, form, change)
            return
        organization = request.organization if not request.user.is_superuser else None
        organization = organization or request.organization
        api_key, key = services.create_api_key(
            organization,
            name=form.cleaned_data["name"],
            scope=form.cleaned_data.get("scope") or ApiKeyScope.READ,
            created_by=request.user,
            expiry_date=form.cleaned_data.get("expiry_date"),
        )
        form.instance = api_key
        obj.pk = api_key.pk
        messages.warning(request, f"The new key is {key} — copy it now: it is shown only once.")

    def response_add(self, request, obj, post_url_continue=None):
        return HttpResponseRedirect(reverse("admin:tenancy_organizationapikey_changelist"))

    @admin.action(description="Revoke the selected keys")
    def revoke_selected(self, request, queryset):
        count = 0
        for api_key in queryset:
            try:
                services.revoke_api_key(api_key)
                count += 1
            except DomainError as exc:
                messages.error(request, exc.message)
        messages.success(request, f"Revoked {count} key(s).")


# The library's own key model is unused: keys here belong to an organisation (OrganizationAPIKey).
if admin.site.is_registered(_LibraryAPIKey):
    admin.site.unregister(_LibraryAPIKey)
