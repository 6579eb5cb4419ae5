"""The back office writes only through the services: every page that writes calls its app's service (with its
history row naming the signed-in user), a page that does not write is read-only, a refusal of a service comes back
on the form, and history is read, never reverted around a service."""

import pytest
from django.contrib import admin
from django.contrib.admin import ModelAdmin
from simple_history.admin import SimpleHistoryAdmin

from assets import services as asset_services
from assets.models import Asset, AssetType, Location, Meter
from maintenance_site.errors import PermissionDeniedError
from maintenance_site.tenancy import services as tenancy_services
from maintenance_site.tenancy.admin_base import ReadOnlyAdminMixin, ServiceAdminMixin
from maintenance_site.tenancy.models import Membership, Organization, OrganizationAPIKey
from maintenance_site.tenancy.roles import Role
from tests.admin_forms import form_data, page_text
from tests.conftest import make_user


@pytest.fixture
def pump(org_a):
    return asset_services.create_asset(org_a, code="P-1", name="Pump")


@pytest.fixture
def newcomer(db):
    return make_user("newcomer")


def _url(model, *parts) -> str:
    return "/".join(["", "admin", model._meta.app_label, model._meta.model_name, *map(str, parts), ""])


# What each page's add form and change form are given (on top of what the page shows).
PAGES = {
    "location": (Location, lambda ctx: {"name": "Plant 9", "kind": "site"}, {"name": "Plant 9 north"}),
    "asset type": (AssetType, lambda ctx: {"name": "Compressor"}, {"description": "Screw compressors"}),
    "asset": (
        Asset,
        lambda ctx: {"code": "C-7", "name": "Compressor", "criticality": "high", "status": "operational"},
        {"name": "Compressor 7"},
    ),
    "meter": (
        Meter,
        lambda ctx: {"asset": ctx["pump"].pk, "name": "Run hours", "unit": "h", "kind": "cumulative"},
        {"unit": "hours"},
    ),
    "membership": (
        Membership,
        lambda ctx: {
            "organization": ctx["org_a"].pk,
            "user": ctx["newcomer"].pk,
            "role": Role.TECHNICIAN,
            "hourly_rate": "41.50",
            "is_active": "on",
        },
        {"role": Role.PLANNER},
    ),
}
# A manager picks users among the organisation's members only: a new member is added by a platform administrator.
ADDED_BY_THE_PLATFORM = {"membership"}


def _newest(model):
    return model.objects.order_by("-pk").first()


@pytest.mark.parametrize("page", list(PAGES))
def test_add_and_change_forms_write_history_naming_the_signed_in_user(client, manager_a, org_a, pump, newcomer, page):
    model, added, changed = PAGES[page]
    adder = make_user("root", is_staff=True, is_superuser=True) if page in ADDED_BY_THE_PLATFORM else manager_a
    client.force_login(adder)
    before = _newest(model)

    add_page = client.get(_url(model, "add"))
    assert add_page.status_code == 200
    context = {"pump": pump, "newcomer": newcomer, "org_a": org_a}
    response = client.post(_url(model, "add"), form_data(add_page, **added(context)))
    assert response.status_code == 302, page_text(response)[-1500:]
    row = _newest(model)
    assert row != before and row.organization == org_a
    created = row.history.latest()
    assert (created.history_type, created.history_user) == ("+", adder)

    client.force_login(manager_a)
    change_url = _url(model, row.pk, "change")
    response = client.post(change_url, form_data(client.get(change_url), **changed))
    assert response.status_code == 302, page_text(response)[-1500:]
    row.refresh_from_db()
    assert all(str(getattr(row, name)) == value for name, value in changed.items())
    edited = row.history.latest()
    assert (edited.history_type, edited.history_user) == ("~", manager_a)
    assert row.history.count() == 2


def test_an_asset_marked_down_in_the_admin_opens_and_closes_downtime_like_the_api(client, api, manager_a, org_a):
    by_admin = asset_services.create_asset(org_a, code="ADM-1", name="Pump by the admin")
    by_api = asset_services.create_asset(org_a, code="API-1", name="Pump by the API")
    client.force_login(manager_a)
    integration = api(manager_a, org_a)

    def set_status(status):
        url = _url(Asset, by_admin.pk, "change")
        assert client.post(url, form_data(client.get(url), status=status)).status_code == 302
        response = integration.patch(f"/api/v1/assets/{by_api.pk}/", {"status": status}, format="json")
        assert response.status_code == 200, response.content

    def downtime(asset):
        return [(d.reason, d.ended_at is None) for d in asset.downtimes.order_by("started_at")]

    set_status(Asset.Status.DOWN)
    assert downtime(by_admin) == downtime(by_api) == [("Marked down", True)]
    set_status(Asset.Status.DOWN)  # already down: nothing more
    set_status(Asset.Status.OPERATIONAL)
    assert downtime(by_admin) == downtime(by_api) == [("Marked down", False)]
    for asset in (by_admin, by_api):
        assert [h.history_user for h in asset.history.filter(history_type="~")] == [manager_a] * 3


def test_a_location_in_use_is_not_deleted(client, manager_a, org_a):
    hall = asset_services.create_location(org_a, name="Hall")
    asset_services.create_asset(org_a, code="H-1", name="In the hall", location=hall)
    client.force_login(manager_a)
    response = client.post(_url(Location, hall.pk, "delete"), {"post": "yes"}, follow=True)
    assert "Cannot delete location" in page_text(response) and "In the hall" in page_text(response)
    assert Location.objects.filter(pk=hall.pk).exists()


def test_a_refusal_of_the_service_is_shown_on_the_form_with_the_input_kept(client, manager_a, org_a):
    api_key, _ = tenancy_services.create_api_key(org_a, name="ERP sync", created_by=manager_a)
    client.force_login(manager_a)
    url = _url(OrganizationAPIKey, api_key.pk, "change")
    past = {"expiry_date_0": "2001-01-01", "expiry_date_1": "00:00:00"}
    response = client.post(url, form_data(client.get(url), name="ERP (renamed)", **past))
    assert response.status_code == 200
    text = page_text(response)
    assert "The expiry date must be in the future." in text and 'value="ERP (renamed)"' in text
    api_key.refresh_from_db()
    assert api_key.name == "ERP sync" and api_key.history.count() == 1  # the whole save rolled back


def test_history_is_read_never_reverted(client, manager_a, org_a, pump, org_b):
    asset_services.update_asset(pump, name="Pump, renamed")
    first = pump.history.earliest()
    client.force_login(manager_a)
    version = _url(Asset, pump.pk, "history", first.history_id)
    assert client.get(version).status_code == 200
    response = client.post(version, form_data(client.get(version)))
    assert response.status_code == 403
    pump.refresh_from_db()
    assert pump.name == "Pump, renamed"
    other = asset_services.create_asset(org_b, code="B-1", name="Pump of B")
    other_version = _url(Asset, other.pk, "history", other.history.earliest().history_id)
    assert client.post(other_version, {}).status_code == 404  # another organisation's: no hint it exists


def test_organisation_settings_and_api_keys_go_through_the_services(client, manager_a, org_a):
    client.force_login(manager_a)
    url = _url(Organization, org_a.pk, "change")
    response = client.post(url, form_data(client.get(url), currency="CHF"))
    assert response.status_code == 302, page_text(response)[-1500:]
    org_a.refresh_from_db()
    assert org_a.currency == "CHF" and org_a.history.latest().history_user == manager_a

    response = client.post(_url(OrganizationAPIKey, "add"), {"name": "ERP sync", "scope": "read"})
    assert response.status_code == 302
    api_key = OrganizationAPIKey.objects.get(name="ERP sync")
    assert api_key.organization == org_a and api_key.created_by == manager_a
    url = _url(OrganizationAPIKey, api_key.pk, "change")
    response = client.post(url, form_data(client.get(url), name="ERP sync (nightly)", scope="read_write"))
    assert response.status_code == 302, page_text(response)[-1500:]
    api_key.refresh_from_db()
    assert (api_key.name, api_key.scope) == ("ERP sync (nightly)", "read_write")
    assert api_key.history.latest().history_user == manager_a
    assert client.post(_url(OrganizationAPIKey, api_key.pk, "delete"), {"post": "yes"}).status_code == 403


def test_membership_services_check_the_role_of_who_acts(org_a, planner_a, newcomer):
    with pytest.raises(PermissionDeniedError):
        tenancy_services.create_membership(org_a, actor=planner_a, user=newcomer, role=Role.VIEWER)
    with pytest.raises(TypeError):
        tenancy_services.update_membership(Membership.objects.get(user=planner_a), role=Role.VIEWER)


# --- the guard: no admin page writes around its service ----------------------------------------------------------


PROJECT_PACKAGES = {"maintenance_site", "assets", "workorders", "inventory", "sla", "scheduling", "scenarios"}


def _domain_admins():
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_config.name.split(".")[0] in PROJECT_PACKAGES:
            yield model, model_admin


def test_every_back_office_page_writes_through_a_service_or_not_at_all():
    """A page of the platform's models is read-only, or a ServiceAdmin whose `save_model` is its own (naming its
    service); Django's own writers are reachable from none (the bases refuse instead of writing)."""
    pages = list(_domain_admins())
    assert len(pages) > 30
    writers = ("save_model", "delete_model", "delete_queryset", "save_related", "save_formset")
    read_only = 0
    for _model, model_admin in pages:
        cls = type(model_admin)
        if isinstance(model_admin, ReadOnlyAdminMixin):
            read_only += 1
            continue
        assert isinstance(model_admin, ServiceAdminMixin), f"{cls.__name__} may write but is no ServiceAdmin"
        for method in writers:
            defined_by = next(klass for klass in cls.__mro__ if method in vars(klass))
            assert defined_by not in (ModelAdmin, SimpleHistoryAdmin), f"{cls.__name__}.{method} is Django's own"
        save_model = next(klass for klass in cls.__mro__ if "save_model" in vars(klass))
        assert save_model.__module__ == cls.__module__, f"{cls.__name__}.save_model does not name its service"
    assert read_only > 10
