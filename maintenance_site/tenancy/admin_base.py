"""The admin's base classes: staff who are not superusers see and pick only their active organisation's
rows, what they may change follows the role table, and nothing is written but through a service.

- `TenantAdmin`: scoping, 404s for another organisation's rows, permissions from the role table. It writes
  nothing itself: an admin page that writes is a `ServiceAdmin`, one that does not is a `ReadOnlyTenantAdmin`.
- `ServiceAdmin` (and `ServiceAdminMixin` for the platform's own pages): `save_model`, `save_related` and
  `delete_model` call the app's service by name; a refusal (a DomainError) rolls the whole save back and shows
  the form again with the person's input and the refusal (`ServiceForm`), or, for a delete, a message on the
  object's page. History is viewed, never reverted (a revert would write around the service).
- `ReadOnlyAdminMixin` / `ReadOnlyTenantAdmin` / `ReadOnlyTenantInline`: rows the services write, shown only.

Every base stands on the back office's theme (django-unfold): `ThemeModelAdmin` and `ThemeTabularInline` are its
ModelAdmin and inline, so every page gets its widgets, list layout and history/import-export templates.
"""

from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from import_export.admin import ImportExportMixin
from import_export.formats import base_formats
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper
from unfold.admin import ModelAdmin as ThemeModelAdmin
from unfold.admin import TabularInline as ThemeTabularInline
from unfold.contrib.import_export.forms import ImportForm, SelectableFieldsExportForm

from maintenance_site import admin_lists, formats
from maintenance_site.errors import DomainError, InvalidInput
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


def _has_history(model) -> bool:
    return getattr(model._meta, "simple_history_manager_attribute", None) is not None


def active_organization(request):
    """The organisation the request works in (the switcher's choice), or None."""
    return getattr(request, "organization", None) or None


def back_office_role(request) -> str | None:
    """The role through which the request's user works in the back office (manager, planner or storekeeper of
    the active organisation), or None."""
    membership = getattr(request, "membership", None)
    if not membership or membership.role not in BACK_OFFICE_ROLES:
        return None
    return membership.role


def request_may(request, action: Action) -> bool:
    """Whether the request's user may do `action` in the back office: a superuser, or a back-office role of the
    active organisation that the role table allows it."""
    if request.user.is_superuser:
        return True
    role = back_office_role(request)
    return bool(role) and role_allows(role, action)


EMPTY_VALUE = "(none)"


class HistoryContextHelper(HistoricalRecordContextHelper):
    """The history list's "changes" column: an empty value (a foreign key set to nothing, a blank text, None) is
    "(none)", never simple-history's "Deleted user (pk=None)" for an assignee that was simply not set; dates are in
    the one format (maintenance_site.formats)."""

    def prepare_delta_change_value(self, change, value):
        if isinstance(value, DeletedObject) and value.pk is None:
            return EMPTY_VALUE
        if value is None or value == "" or value == []:
            return EMPTY_VALUE
        if isinstance(value, datetime):
            return formats.date_time(value)
        return super().prepare_delta_change_value(change, value)


class HistoryAdmin(SimpleHistoryAdmin, ThemeModelAdmin):
    """simple-history's admin (history list, one version's page) on the theme's ModelAdmin, for the platform's own
    pages that are not an organisation's (scenarios, presets); empty values read "(none)" (HistoryContextHelper)."""

    def get_historical_record_context_helper(self, request, historical_record):
        return HistoryContextHelper(self.model, historical_record)


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


class TenantAdmin(TenantScopingMixin, HistoryAdmin):
    """Base for every domain model's admin. A model without history (an append-only table is its own audit) gets
    Django's own history page. Change lists cost the same at any size (maintenance_site.admin_lists): counts
    estimated above EXACT_COUNT_LIMIT, only `list_columns` read when given, foreign-key filters as search boxes."""

    paginator = EstimatingPaginator
    show_full_result_count = False  # the unfiltered total would be a second count of the whole list
    list_columns = None  # the columns the change list reads (`only()`), e.g. ["number", "asset__code"]

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        if not _has_history(model):
            self.object_history_template = None

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

    # --- no writes of its own: a page that writes is a ServiceAdmin --------------------------------------------
    def save_model(self, request, obj, form, change):
        raise ImproperlyConfigured(
            f"{type(self).__name__} writes only through its app's service: make it a ServiceAdmin."
        )

    def delete_model(self, request, obj):
        raise ImproperlyConfigured(
            f"{type(self).__name__} deletes only through its app's service: make it a ServiceAdmin."
        )

    def delete_queryset(self, request, queryset):
        raise ImproperlyConfigured(f"{type(self).__name__} deletes only through its app's service.")

    def save_related(self, request, form, formsets, change):
        raise ImproperlyConfigured(f"{type(self).__name__} writes related rows only through its app's service.")

    def save_formset(self, request, form, formset, change):
        raise ImproperlyConfigured(f"{type(self).__name__} writes related rows only through its app's service.")

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
        raise Http404(_("No %(model)s with id %(id)s.") % {"model": opts.verbose_name, "id": object_id})

    def history_view(self, request, object_id, extra_context=None):
        if not self.get_queryset(request).filter(pk=object_id).exists():
            raise Http404(_("No %(model)s with id %(id)s.") % {"model": self.model._meta.verbose_name, "id": object_id})
        if not _has_history(self.model):
            return ThemeModelAdmin.history_view(self, request, object_id, extra_context)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if not _has_history(self.model) or not self.get_queryset(request).filter(pk=object_id).exists():
            raise Http404(_("No %(model)s with id %(id)s.") % {"model": self.model._meta.verbose_name, "id": object_id})
        return super().history_form_view(request, object_id, version_id, extra_context)


class TenantInline(TenantScopingMixin, ThemeTabularInline):
    """Base for inlines of domain models: choices scoped like the parent page. Its rows are written by the
    parent page's service (ServiceAdmin.save_related / save_formset)."""

    extra = 0


# --- pages that write: through the app's service ---------------------------------------------------------------

REFUSAL = "_service_refusal"  # where ServiceAdminMixin keeps a refusal on the request for the form to show
REVERT_REFUSED = gettext_lazy(
    "History is for reading here: changes go through the form and the actions, which use the services."
)


def adopt(target, saved):
    """Give the admin's instance the state of the row the service wrote (pk, number, status…), so that the log
    entry, the redirect and the inlines see it."""
    for field in type(saved)._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db
    return target


def submitted(form, names, *, changed: bool = False) -> dict:
    """The form's cleaned values of those of `names` it has; with `changed`, only those the person changed."""
    chosen = form.changed_data if changed else list(form.cleaned_data)
    return {name: form.cleaned_data[name] for name in chosen if name in names and name in form.cleaned_data}


def kept_rows(formset, fields) -> list[dict]:
    """The rows an inline will hold once saved: kept and new forms, not the deleted nor the empty extra ones."""
    rows = []
    for form in formset.forms:
        if getattr(form, "cleaned_data", None) and not formset._should_delete_form(form):
            rows.append({name: form.cleaned_data.get(name) for name in fields})
    return rows


def inline_rows(formset, fields) -> list[dict]:
    """`kept_rows`, for the service that writes them with their parent. Writes nothing (what changed is noted for
    the change message)."""
    formset.save(commit=False)
    return kept_rows(formset, fields)


def show_refusal(form, refusal: DomainError) -> None:
    """A service's refusal on the form: its per-field errors next to the fields the form has, its sentence on top."""
    for name, errors in (refusal.fields or {}).items():
        if name in form.fields and name not in form.errors:
            form.add_error(name, errors if isinstance(errors, list) else [str(errors)])
    form.add_error(None, refusal.message)


class ServiceFormMixin:
    """What a ServiceAdmin page's form adds to a ModelForm. It knows its request; a new row of an organisation's
    model belongs to the active organisation *before* it is validated, so the model's checks that compare
    organisations and the per-organisation unique constraints run on the form (a duplicate code is a form error,
    not an IntegrityError); and a refusal of the service is shown as errors (see ServiceAdminMixin)."""

    request = None  # set by ServiceAdminMixin.get_form

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        organization = active_organization(self.request) if self.request is not None else None
        instance = self.instance
        if organization and _has_organization(type(instance)) and instance.pk is None and not instance.organization_id:
            instance.organization = organization

    def _get_validation_exclusions(self):
        exclusions = super()._get_validation_exclusions()
        if getattr(self.instance, "organization_id", None):
            exclusions.discard("organization")
        return exclusions

    def clean(self):
        cleaned_data = super().clean()
        refusal = getattr(self.request, REFUSAL, None)
        if refusal is not None:
            show_refusal(self, refusal)
        return cleaned_data


class ServiceForm(ServiceFormMixin, forms.ModelForm):
    """The default form of a ServiceAdmin page."""


class ServiceAdminMixin:
    """An admin page whose model is written only by its app's services. Subclasses name them: `save_model`
    (create or update), `delete_model`, and `save_related` when the rows of an inline go to the service with their
    parent in one call. A refusal (any DomainError) raised while saving rolls the admin's transaction back and the
    form is shown again with the person's input and the refusal; a refused delete is a message on the object's page.
    Deletes go one by one (no bulk delete), and history is never reverted (it would write around the service)."""

    form = ServiceForm

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        bases = (form,) if issubclass(form, ServiceFormMixin) else (ServiceFormMixin, form)
        return type(form.__name__, bases, {"request": request})

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as refusal:  # raised inside the admin's transaction: nothing of the save is left
            if request.method != "POST" or getattr(request, REFUSAL, None) is not None:
                raise
            setattr(request, REFUSAL, refusal)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as refusal:
            self.message_user(request, refusal.message, messages.ERROR)
            return HttpResponseRedirect(
                reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[object_id])
            )

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deletes go one by one through the service
        return actions

    def new_organization(self, request, form):
        """The organisation a new row goes to: the one a superuser chose on the form, else the active one."""
        organization = form.cleaned_data.get("organization") or active_organization(request)
        if organization is None:
            raise InvalidInput(
                _("Choose the organisation first (the switcher at the top)."),
                fields={"organization": [_("Required.")]},
            )
        return organization

    def save_model(self, request, obj, form, change):
        raise ImproperlyConfigured(f"{type(self).__name__}.save_model must call its app's service.")

    def delete_model(self, request, obj):
        raise ImproperlyConfigured(f"{type(self).__name__}.delete_model must call its app's service.")

    def delete_queryset(self, request, queryset):
        raise ImproperlyConfigured(f"{type(self).__name__} deletes one by one through delete_model.")

    def save_related(self, request, form, formsets, change):
        """Many-to-many values go to the service in `save_model`; inline rows in `save_formset` (or override this
        to hand them over with their parent in one call)."""
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request, form, formset, change):
        """An inline shown only (nothing submitted) has nothing to save; rows that changed need a service."""
        if formset.has_changed():
            raise ImproperlyConfigured(
                f"{type(self).__name__} has no service for the rows of {formset.model.__name__}."
            )
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def revert_disabled(self, request, obj=None):
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            if self.get_object(request, unquote(object_id)) is None:
                raise Http404(_("No %(model)s with id %(id)s.") % {"model": self.opts.verbose_name, "id": object_id})
            raise PermissionDenied(REVERT_REFUSED)
        return super().history_form_view(request, object_id, version_id, extra_context)


class ServiceAdmin(ServiceAdminMixin, TenantAdmin):
    """Base of the admin pages that write an organisation's rows (see ServiceAdminMixin)."""


class CsvImportExportMixin(ImportExportMixin):
    """CSV import and export (django-import-export) on a ServiceAdmin page, within the active organisation. Importing
    writes: the page's write action, into the active organisation, all rows or none, through the page's resource
    (which calls the services). Exporting reads: a superuser exports what their list shows (every organisation),
    others their organisation's rows. Set `resource_classes` and the changelist template with the links."""

    import_formats = [base_formats.CSV]
    export_formats = [base_formats.CSV]
    import_form_class = ImportForm  # the theme's styling of django-import-export's forms
    export_form_class = SelectableFieldsExportForm  # import-export 4.x default: pick the columns
    import_error_display = ("message", "row")

    def has_import_permission(self, request):
        return self._may_write(request) and active_organization(request) is not None

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def get_import_resource_kwargs(self, request, **kwargs):
        return {"organization": active_organization(request)}

    def get_export_resource_kwargs(self, request, **kwargs):
        return {"organization": None if request.user.is_superuser else active_organization(request)}

    def get_import_data_kwargs(self, **kwargs):
        kwargs = super().get_import_data_kwargs(**kwargs)
        kwargs.setdefault("rollback_on_validation_errors", True)  # all rows or none
        return kwargs


# --- pages that only show ------------------------------------------------------------------------------------


class ReadOnlyAdminMixin:
    """Rows written only by the services (or the platform): shown, never added, changed or deleted here, superusers
    included."""

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyTenantAdmin(ReadOnlyAdminMixin, TenantAdmin):
    """An organisation's rows, shown only (their actions, if any, call services)."""


class ReadOnlyTenantInline(ReadOnlyAdminMixin, TenantInline):
    """Rows of the parent shown only; set `fields` (all read-only)."""

    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return list(self.fields)
