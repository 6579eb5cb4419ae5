"""No list issues more queries as it grows: every list of the API (each viewset's list and each of its GET actions)
and every admin change list is requested on the demo data, then again after the demo organisation's rows have been
copied twice over, and must send exactly as many queries both times.

The copies are made generically (`grow`): every model with an organisation gets its rows copied with fresh values
in the columns its unique constraints name; a model whose rows cannot be copied that way (a one-to-one link) is
left as it is and named in the test's output."""

import copy
import io
import sys
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import IntegrityError, connection, models, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from maintenance_site.api.routers import router
from maintenance_site.tenancy.models import Organization

pytestmark = [pytest.mark.timeout(900)]

COPIES = 2
# GET actions that are not lists (a file, a form, a report over fixed periods).
NOT_LISTS = {
    "attachment-download",
    "preventive-calendar-feed-token-ics",
    "diagnostics-run-detail",  # one run
    "diagnostics-history",  # a device's runs: its query count is pinned in tests/workorders/test_health.py
    "work-order-upload",  # one upload's state (tests/workorders/test_resumable_uploads.py)
}


def _unique_field_names(model) -> set[str]:
    names = {field.name for field in model._meta.concrete_fields if field.unique and not field.primary_key}
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            names.update(constraint.fields)
    for together in model._meta.unique_together:
        names.update(together)
    return names


def _fresh(field, value, copy_number: int, row_number: int):
    """A value for `field` that no other row has: text gets a suffix, moments move by microseconds."""
    if value is None:
        return None
    if isinstance(field, models.CharField | models.SlugField | models.TextField):
        suffix = f"~{copy_number}.{row_number}"
        limit = field.max_length or 255
        return f"{str(value)[: limit - len(suffix)]}{suffix}"
    if isinstance(field, models.DateTimeField):
        return value + timedelta(microseconds=copy_number * 100_000 + row_number + 1)
    if isinstance(field, models.IntegerField | models.BigIntegerField) and not field.is_relation:
        return None if field.null else value + (copy_number + 1) * 1_000_000 + row_number
    return value


def grow(organization, copies: int = COPIES) -> list[str]:
    """Copy every row `organization` owns `copies` times; the names of the models left alone."""
    left_alone = []
    for model in sorted(_models_with_organization(), key=lambda m: m._meta.label):
        if any(field.one_to_one for field in model._meta.concrete_fields):
            left_alone.append(model._meta.label)
            continue
        rows = list(model._base_manager.filter(organization=organization))
        unique = _unique_field_names(model) - {"organization"}
        fields = [f for f in model._meta.concrete_fields if f.name in unique and not f.is_relation]
        copied = []
        for copy_number in range(copies):
            for row_number, row in enumerate(rows):
                clone = copy.copy(row)
                clone.pk = None
                clone._state = copy.copy(row._state)
                clone._state.adding = True
                for field in fields:
                    setattr(clone, field.attname, _fresh(field, getattr(row, field.attname), copy_number, row_number))
                copied.append(clone)
        if not copied:
            continue
        try:
            with transaction.atomic():
                model._base_manager.bulk_create(copied)
        except IntegrityError:
            left_alone.append(model._meta.label)
    return left_alone


def _models_with_organization():
    from django.apps import apps

    for model in apps.get_models():
        owned = any(f.name == "organization" for f in model._meta.concrete_fields)
        if owned and model is not Organization and not model.__name__.startswith("Historical"):
            yield model


def _sample_pk(model, organization):
    rows = model._base_manager.all()
    if any(f.name == "organization" for f in model._meta.concrete_fields):
        rows = rows.filter(organization=organization)
    return rows.order_by("pk").values_list("pk", flat=True).first()


def api_lists(organization) -> list[str]:
    """The URL of every list the API has: each viewset's list, and each GET action (on the organisation's first
    object for a detail action)."""
    from assets.models import Asset

    reverse("api-status")  # the API's URL conf imports every app's viewsets onto the router
    urls = []
    nested = {"asset_pk": _sample_pk(Asset, organization)}
    for _prefix, viewset, basename in router.registry:
        model = getattr(getattr(viewset, "queryset", None), "model", None)
        names = [("list", False)] if hasattr(viewset, "list") else []
        names += [(a.url_name, a.detail) for a in viewset.get_extra_actions() if "get" in a.mapping]
        for name, detail in names:
            if f"{basename}-{name}" in NOT_LISTS:
                continue
            kwargs = {}
            if detail:
                pk = _sample_pk(model, organization) if model is not None else None
                if pk is None:
                    continue
                field = viewset.lookup_field
                value = model._base_manager.filter(pk=pk).values_list(field, flat=True).get()
                kwargs[viewset.lookup_url_kwarg or field] = value
            try:
                urls.append(reverse(f"{basename}-{name}", kwargs=kwargs))
            except NoReverseMatch:
                urls.append(reverse(f"{basename}-{name}", kwargs={**kwargs, **nested}))
    return urls


def admin_lists() -> list[str]:
    return [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist") for model in admin.site._registry
    ]


def query_counts(client, urls) -> dict[str, int]:
    counts = {}
    for url in urls:
        client.get(url)  # first: whatever a process loads once
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        if response.status_code == 200:
            counts[url] = len(queries.captured_queries)
    return counts


@pytest.fixture
def demo(db):
    call_command("seed_demo", stdout=io.StringIO(), verbosity=0)
    return Organization.objects.get(slug="acme")


def test_no_list_of_the_api_or_the_admin_sends_more_queries_as_it_grows(demo, settings):
    settings.EXACT_COUNT_LIMIT = 10_000
    user = get_user_model().objects.get(username="acme-manager")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}", HTTP_X_ORGANIZATION="acme")
    back_office = Client()
    back_office.force_login(get_user_model().objects.get(username="admin"))
    api_urls, admin_urls = api_lists(demo), admin_lists()

    small_api, small_admin = query_counts(api, api_urls), query_counts(back_office, admin_urls)
    left_alone = grow(demo)
    large_api, large_admin = query_counts(api, api_urls), query_counts(back_office, admin_urls)

    print(f"\nrows copied {COPIES}x; models left as they are: {', '.join(left_alone)}", file=sys.stderr)
    # the lists were reached, not refused (the platform-wide scenario lists are for superusers: 403 here)
    assert len(small_api) > 40 and len(small_admin) >= len(admin.site._registry) - 2
    grew = {url: (small_api[url], large_api.get(url)) for url in small_api if large_api.get(url) != small_api[url]}
    grew |= {
        url: (small_admin[url], large_admin.get(url)) for url in small_admin if large_admin.get(url) != small_admin[url]
    }
    assert not grew, grew
