"""The asset back office: the location tree filter, downtime on the asset page, printable QR labels and
CSV import / export, all within the active organisation."""

from datetime import timedelta

import pytest
import segno
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from assets import services
from assets.models import Asset, Downtime

ASSETS = "/admin/assets/asset/"


@pytest.fixture
def tree(org_a):
    site = services.create_location(org_a, name="Plant 1")
    hall = services.create_location(org_a, name="Hall 2", kind="building", parent=site)
    room = services.create_location(org_a, name="Pump room", kind="area", parent=hall)
    other = services.create_location(org_a, name="Depot")
    return site, hall, room, other


def test_location_tree_filter_lists_the_tree_and_includes_sub_locations(client, manager_a, org_a, org_b, tree):
    site, hall, room, other = tree
    services.create_asset(org_a, code="S-1", name="On the site", location=site)
    services.create_asset(org_a, code="H-1", name="In the hall", location=hall)
    services.create_asset(org_a, code="R-1", name="In the pump room", location=room)
    services.create_asset(org_a, code="D-1", name="In the depot", location=other)
    location_b = services.create_location(org_b, name="Hall of B")
    client.force_login(manager_a)

    response = client.get(ASSETS)
    location_filter = next(spec for spec in response.context["cl"].filter_specs if spec.title == "location")
    labels = [label for _, label in location_filter.lookup_choices]
    indent = "\u00a0\u00a0\u00a0"
    assert labels == ["Depot", "Plant 1", f"{indent}Hall 2", f"{indent * 2}Pump room"]
    assert "Hall of B" not in response.content.decode()

    page = client.get(ASSETS, {"location_tree": hall.pk}).content.decode()
    assert "In the hall" in page and "In the pump room" in page
    assert "On the site" not in page and "In the depot" not in page
    page = client.get(ASSETS, {"location_tree": site.pk}).content.decode()
    assert all(name in page for name in ("On the site", "In the hall", "In the pump room"))
    page = client.get(ASSETS, {"location_tree": location_b.pk}).content.decode()
    assert "On the site" not in page and "In the depot" not in page  # another organisation's: nothing


def test_new_asset_with_a_location_and_duplicate_codes_are_form_errors(client, manager_a, org_a, tree):
    site = tree[0]
    client.force_login(manager_a)
    data = {"code": "NEW-1", "name": "New", "criticality": "low", "status": "operational", "location": site.pk}
    response = client.post(f"{ASSETS}add/", data)
    assert response.status_code == 302
    assert Asset.objects.get(code="NEW-1").location == site
    duplicate = client.post(f"{ASSETS}add/", data)
    assert duplicate.status_code == 200
    assert "An asset with this code already exists." in duplicate.content.decode()


def test_downtime_is_listed_newest_first_and_read_only(client, manager_a, org_a):
    asset = services.create_asset(org_a, code="P-1", name="Pump")
    start = timezone.now() - timedelta(days=3)
    services.mark_asset_down(asset, reason="First failure", at=start)
    services.mark_asset_up(asset, at=start + timedelta(hours=2))
    services.mark_asset_down(asset, reason="Second failure", at=start + timedelta(days=1))
    client.force_login(manager_a)
    response = client.get(f"{ASSETS}{asset.pk}/change/")
    page = response.content.decode()
    assert page.index("Second failure") < page.index("First failure")
    assert "2 h 0 min" in page and "(still down)" in page
    inline = next(f for f in response.context["inline_admin_formsets"] if f.opts.model is Downtime)
    assert not inline.has_add_permission and not inline.has_change_permission and not inline.has_delete_permission


# --- QR labels -------------------------------------------------------------------------------------------


def test_label_has_a_qr_code_to_the_token_and_never_the_id(client, manager_a, org_a, tree):
    asset = services.create_asset(org_a, code="LBL-1", name="Labelled pump", location=tree[2])
    client.force_login(manager_a)
    change_page = client.get(f"{ASSETS}{asset.pk}/change/").content.decode()
    assert f"{ASSETS}{asset.pk}/label/" in change_page  # the object-tool link

    response = client.get(f"{ASSETS}{asset.pk}/label/")
    assert response.status_code == 200
    page = response.content.decode()
    technician_url = f"http://testserver/t/assets/{asset.public_token}/"
    assert "<svg" in page
    assert segno.make(technician_url, error="m").svg_inline(scale=5, border=2) in page  # the QR encodes it
    assert f"http://testserver/report/a/{asset.public_token}/" in page
    assert "LBL-1" in page and "Plant 1 / Hall 2 / Pump room" in page
    assert f"/{asset.pk}/" not in page and f"asset/{asset.pk}" not in page


def test_other_organisations_label_is_404(client, manager_a, org_b):
    asset_b = services.create_asset(org_b, code="B-1", name="Pump of B")
    client.force_login(manager_a)
    assert client.get(f"{ASSETS}{asset_b.pk}/label/").status_code == 404
    assert client.get(f"{ASSETS}not-a-number/label/").status_code == 404


# --- CSV import and export -------------------------------------------------------------------------------


def csv_file(*lines):
    return SimpleUploadedFile("assets.csv", ("\n".join(lines) + "\n").encode(), content_type="text/csv")


def test_import_with_a_bad_row_reports_it_and_imports_nothing(client, manager_a, org_a, org_b, tree):
    services.create_asset_type(org_a, name="Pump")
    services.create_location(org_b, name="Hall of B")
    asset_b = services.create_asset(org_b, code="SHARED-1", name="B's pump")
    client.force_login(manager_a)
    assert f"{ASSETS}import/" in client.get(ASSETS).content.decode()

    response = client.post(
        f"{ASSETS}import/",
        {
            "format": "0",
            "resource": "0",
            "import_file": csv_file(
                "code,name,asset_type,location,criticality,status",
                "NEW-1,Good pump,Pump,Plant 1 / Hall 2,high,operational",
                "NEW-2,Bad pump,Pump,Hall of B,low,operational",
                "SHARED-1,Not B's,Pump,Pump room,Critical,Down",
            ),
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "No location “Hall of B” in this organisation" in page
    assert 'name="import_file_name"' not in page  # no confirmation offered
    assert not Asset.objects.filter(code__in=["NEW-1", "NEW-2"]).exists()
    assert Asset.objects.filter(code="SHARED-1").count() == 1
    asset_b.refresh_from_db()
    assert asset_b.name == "B's pump" and asset_b.organization == org_b


def test_import_creates_and_updates_in_the_active_organisation(client, manager_a, org_a, org_b, tree):
    services.create_asset_type(org_a, name="Pump")
    asset_b = services.create_asset(org_b, code="SHARED-1", name="B's pump")
    existing = services.create_asset(org_a, code="OLD-1", name="Old name")
    client.force_login(manager_a)
    upload = csv_file(
        "code,name,asset_type,location,criticality,status",
        "SHARED-1,Our pump,pump,Pump room,Critical,operational",
        "OLD-1,New name,,Plant 1/Hall 2,,Down",
    )
    response = client.post(f"{ASSETS}import/", {"format": "0", "resource": "0", "import_file": upload})
    assert response.status_code == 200
    confirm = response.context["confirm_form"]
    assert confirm is not None, response.content.decode()[:3000]
    response = client.post(f"{ASSETS}process_import/", {**confirm.initial})
    assert response.status_code == 302

    ours = Asset.objects.get(organization=org_a, code="SHARED-1")
    assert ours.name == "Our pump" and ours.criticality == "critical" and ours.location == tree[2]
    assert ours.asset_type.name == "Pump"
    existing.refresh_from_db()
    assert existing.name == "New name" and existing.location == tree[1] and existing.status == "down"
    assert existing.downtimes.filter(ended_at__isnull=True).exists()  # written through the services
    assert existing.history.latest().history_user == manager_a
    asset_b.refresh_from_db()
    assert asset_b.name == "B's pump"


def test_only_holders_of_the_write_action_import(client, storekeeper_a, org_a):
    client.force_login(storekeeper_a)
    assert f"{ASSETS}import/" not in client.get(ASSETS).content.decode()
    assert client.get(f"{ASSETS}import/").status_code == 403
    upload = csv_file("code,name", "X-1,Sneaky")
    assert client.post(f"{ASSETS}import/", {"format": "0", "resource": "0", "import_file": upload}).status_code == 403
    assert client.post(f"{ASSETS}process_import/", {"format": "0"}).status_code == 403
    assert not Asset.objects.filter(code="X-1").exists()


def test_export_has_the_organisations_assets_with_location_paths(client, manager_a, org_a, org_b, tree):
    services.create_asset(org_a, code="E-1", name="Exported", location=tree[2])
    services.create_asset(org_b, code="B-1", name="Pump of B")
    client.force_login(manager_a)
    assert client.get(f"{ASSETS}export/").status_code == 200
    response = client.post(
        f"{ASSETS}export/",
        {"format": "0", "resource": "0", **{f"assetresource_{name}": "on" for name in ("code", "name", "location")}},
    )
    assert response.status_code == 200, response.content.decode()[:2000]
    body = response.content.decode()
    assert body.splitlines()[0] == "code,name,location"
    assert "E-1,Exported,Plant 1 / Hall 2 / Pump room" in body
    assert "B-1" not in body
