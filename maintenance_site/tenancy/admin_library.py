"""The libraries' own admin pages (users and groups, django-celery-beat, django-celery-results, django-axes) on the
back office's theme: each registered class is registered again with the theme's ModelAdmin as a base, as the
theme documents for django-celery-beat (a page on Django's plain ModelAdmin renders unstyled inside the theme).
Imported by maintenance_site.tenancy.admin, whose app comes after those libraries in INSTALLED_APPS, so their
registrations exist by then. Behaviour is the library's own: only the look changes (and the forms' widgets)."""

from django.apps import apps
from django.contrib import admin
from django_celery_beat.admin import PeriodicTaskAdmin, PeriodicTaskForm, TaskSelectWidget
from django_celery_beat.models import PeriodicTask
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from maintenance_site.tenancy.admin_base import ThemeModelAdmin

# (app label, model name) of the library pages re-registered on the theme; a missing app is skipped.
LIBRARY_MODELS = [
    ("auth", "group"),
    ("django_celery_beat", "intervalschedule"),
    ("django_celery_beat", "crontabschedule"),
    ("django_celery_beat", "solarschedule"),
    ("django_celery_beat", "clockedschedule"),
    ("django_celery_results", "taskresult"),
    ("django_celery_results", "groupresult"),
    ("axes", "accessattempt"),
    ("axes", "accesslog"),
    ("axes", "accessfailurelog"),
]


def on_theme(model_admin_class: type) -> type:
    """`model_admin_class` with the theme's ModelAdmin among its bases (before Django's own)."""
    if issubclass(model_admin_class, ThemeModelAdmin):
        return model_admin_class
    return type(model_admin_class.__name__, (model_admin_class, ThemeModelAdmin), {"__module__": __name__})


def reregister(model, model_admin_class: type | None = None) -> None:
    registered = admin.site.get_model_admin(model) if admin.site.is_registered(model) else None
    base = model_admin_class or (type(registered) if registered else ThemeModelAdmin)
    if registered is not None:
        admin.site.unregister(model)
    admin.site.register(model, on_theme(base))


def theme_library_pages() -> None:
    """Every library page of LIBRARY_MODELS, and django-celery-beat's periodic tasks with the theme's widgets."""
    for app_label, model_name in LIBRARY_MODELS:
        try:
            model = apps.get_model(app_label, model_name)
        except LookupError:
            continue
        if admin.site.is_registered(model):
            reregister(model)
    if apps.is_installed("django_celery_beat"):
        _theme_periodic_tasks()


def _theme_periodic_tasks() -> None:
    class ThemeTaskSelectWidget(UnfoldAdminSelectWidget, TaskSelectWidget):
        pass

    class ThemePeriodicTaskForm(PeriodicTaskForm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.fields["task"].widget = UnfoldAdminTextInputWidget()
            self.fields["regtask"].widget = ThemeTaskSelectWidget()

    class ThemePeriodicTaskAdmin(PeriodicTaskAdmin, ThemeModelAdmin):
        form = ThemePeriodicTaskForm

    current = type(admin.site.get_model_admin(PeriodicTask)) if admin.site.is_registered(PeriodicTask) else None
    if current is not None and current is not PeriodicTaskAdmin:
        # someone already replaced the library's page: keep theirs, on the theme
        reregister(PeriodicTask, current)
        return
    reregister(PeriodicTask, ThemePeriodicTaskAdmin)


# The theme's user forms (password widgets, the creation form) for the user admin, which tenancy.admin extends.
USER_FORMS = {
    "form": UserChangeForm,
    "add_form": UserCreationForm,
    "change_password_form": AdminPasswordChangeForm,
}
