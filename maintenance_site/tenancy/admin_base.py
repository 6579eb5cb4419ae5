"""The admin's base classes: staff who are not superusers see and pick only their active organisation's
rows, and what they may change follows the role table."""

from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import Http404
from simple_history.admin import SimpleHistoryAdmin

from maintenance_site import admin_lists
from maintenance_site.pagination import EstimatingPaginator
from maintenance_site.tenancy.models import Organization
from maintenance_site.tenancy.roles import BACK_OFFICE_ROLES, Action, role_allows

# Date parts a list's query string may give (`?starts_at__year=2027&starts_at__month=3`, the date drill-down or a
# hand-written filter): beyond these Django's changelist overflows into a 500 (year 0, or the day after 9999-12-31).
DATE_PART_BOUNDS = {"year": (1, 9998), "month": (1, 12), "day": (1, 31)}
LARGEST_ID = 2**63 - 1


def _date_part_within(value: str, bounds: tuple[int, int]) -> bool:
    try:
        return bounds[0] <= int(value) <= bounds[1]
    except ValueError:
        return False


def _has_organization(model) -> bool:
    return any(field.name == "organization" for field in model._meta.get_fields())


def back_office_role(request) -> str | None:
    """The role through which the request's user works in the back office (manager, planner or storekeeper of
    the active organisation), or None."""
    membership = getattr(request, "membership", None)
    if not membership or membership.role not in BACK_OFFICE_ROLES:
        return None
    return membership.role


class TenantScopingMixin:
    """Querysets, foreign-key choices and list filters limited to the active organisation."""

    # The role-table action needed to add, change or delete through this admin page.
    write_action: Action = Action.MANAGE_SETTINGS

    def scoped(self, request, queryset):
        if request.user.is_superuser:
            return queryset
        organization = getattr(request, "organization", None)
        if not organization:
            return queryset.none()
        model = queryset.model
        if model is Organization:
            return queryset.filter(pk=organization.pk)
        if model is get_user_model():
            return queryset.filter(memberships__organization=organization, memberships__is_active=True)
        if _has_organization(model):
            return queryset.filter(organization=organization)
        return queryset

    def get_queryset(self, request):
        return self.scoped(request, super().get_queryset(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs and not request.user.is_superuser:
            kwargs["queryset"] = self.scoped(request, db_field.related_model._default_manager.all())
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "queryset" not in kwargs and not request.user.is_superuser:
            kwargs["queryset"] = self.scoped(request, db_field.related_model._default_manager.all())
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser and _has_organization(self.model) and self.model is not Organization:
            exclude.append("organization")
        return exclude

    # --- permissions from the role table ---------------------------------------------------------
    def has_view_permission(self, request, obj=None):
        if request.user.is_superuser:
            return True
        role = back_office_role(request)
        return bool(role) and role_allows(role, Action.VIEW) and self._in_tenant(request, obj)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def _may_write(self, request, obj=None):
        if request.user.is_superuser:
            return True
        role = back_office_role(request)
        return bool(role) and role_allows(role, self.write_action) and self._in_tenant(request, obj)

    def has_add_permission(self, request, *args):
        return self._may_write(request)

    def has_change_permission(self, request, obj=None):
        return self._may_write(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may_write(request, obj)

    def _in_tenant(self, request, obj) -> bool:
        if obj is None or request.user.is_superuser:
            return True
        organization_id = getattr(obj, "organization_id", None)
        if organization_id is None:
            return True
        return organization_id == getattr(request.organization, "pk", None)


class TenantAdmin(TenantScopingMixin, SimpleHistoryAdmin):
    """Base for every domain model's admin. Change lists cost the same at any size (maintenance_site.admin_lists):
    counts estimated above EXACT_COUNT_LIMIT, only `list_columns` read when given, foreign-key filters as search
    boxes."""

    paginator = EstimatingPaginator
    show_full_result_count = False  # the unfiltered total would be a second count of the whole list
    list_columns = None  # the columns the change list reads (`only()`), e.g. ["number", "asset__code"]

    def get_changelist(self, request, **kwargs):
        return admin_lists.ChangeList

    def get_list_filter(self, request):
        """A foreign-key filter is a search box when the related model's admin can search (no scan for the values
        in use, no link per value), else a list of the values the organisation's rows use."""
        filters = []
        for item in super().get_list_filter(request):
            if isinstance(item, str) and "__" not in item:
                field = self.model._meta.get_field(item)
                if field.is_relation and field.many_to_one and self._searchable(field.related_model):
                    filters.append((item, admin_lists.AutocompleteFilter))
                    continue
                if field.is_relation and field.many_to_one or (field.is_relation and field.many_to_many):
                    filters.append((item, admin.RelatedOnlyFieldListFilter))
                    continue
            filters.append(item)
        return filters

    def _searchable(self, model) -> bool:
        related_admin = self.admin_site._registry.get(model)
        return bool(related_admin and related_admin.search_fields)

    @property
    def media(self):
        media = super().media
        for item in self.list_filter:
            field = self.model._meta.get_field(item) if isinstance(item, str) and "__" not in item else None
            if field is not None and field.many_to_one and self._searchable(field.related_model):
                return media + admin_lists.autocomplete_filter_media()
        return media

    def save_model(self, request, obj, form, change):
        if not change and not request.user.is_superuser and _has_organization(type(obj)):
            obj.organization = request.organization
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        """New inline rows belong to the parent's organisation."""
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            obj.delete()
        for instance in instances:
            if _has_organization(type(instance)) and not instance.organization_id:
                instance.organization = form.instance.organization
            instance.save()
        formset.save_m2m()

    def get_changelist_instance(self, request):
        """A date part outside the calendar (`?ends_at__year=0`, the drill-down to 9999-12-31) is a wrong lookup
        parameter: the list starts afresh (Django's `?e=1`) instead of overflowing into a 500."""
        for name, values in request.GET.lists():
            bounds = DATE_PART_BOUNDS.get(name.rsplit("__", 1)[-1]) if "__" in name else None
            if bounds and not all(_date_part_within(value, bounds) for value in values):
                raise IncorrectLookupParameters(f"{name}: not a date in the calendar")
        return super().get_changelist_instance(request)

    def response_action(self, request, queryset):
        """Selected ids that cannot be ids (a hand-made form) are left out instead of answering a 500."""
        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        valid = [value for value in selected if self._is_id(value)]
        if len(valid) != len(selected):
            post = request.POST.copy()
            post.setlist(ACTION_CHECKBOX_NAME, valid)
            request.POST = post
        return super().response_action(request, queryset)

    def _is_id(self, value) -> bool:
        try:
            key = self.model._meta.pk.to_python(value)
        except ValidationError:
            return False
        return not isinstance(key, int) or abs(key) <= LARGEST_ID

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Another organisation's object is a 404, never a hint that it exists.
        raise Http404(f"No {opts.verbose_name} with id {object_id}.")

    def history_view(self, request, object_id, extra_context=None):
        if not self.get_queryset(request).filter(pk=object_id).exists():
            raise Http404(f"No {self.model._meta.verbose_name} with id {object_id}.")
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if not self.get_queryset(request).filter(pk=object_id).exists():
            raise Http404(f"No {self.model._meta.verbose_name} with id {object_id}.")
        return super().history_form_view(request, object_id, version_id, extra_context)


class TenantInline(TenantScopingMixin, admin.TabularInline):
    """Base for inlines of domain models: choices scoped like the parent page."""

    extra = 0
