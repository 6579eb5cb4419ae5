"""Public problem reports: the organisation's form, the QR-label form of one asset, the requester's status page,
validation, photos, the rate limit."""

import io
import re
import uuid
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from PIL import Image

from assets import services as asset_services
from assets.models import Asset
from maintenance_site.errors import InvalidInput
from maintenance_site.tenancy import SYSTEM
from workorders import public_views, services
from workorders.models import Attachment, WorkOrder, WorkRequest

pytestmark = pytest.mark.django_db

# A valid 1×1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63f8cfc0f01f0005"
    "0001ff89993d1d0000000049454e44ae426082"
)


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), (200, 30, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def photo(name="leak.png", content=PNG, content_type="image/png"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def stored_files(media) -> list[Path]:
    return [p for p in Path(media).rglob("*") if p.is_file()] if Path(media).exists() else []


@pytest.fixture
def retired(org_a):
    return asset_services.create_asset(org_a, code="OLD-9", name="Scrapped compressor", status=Asset.Status.RETIRED)


def form_url(org):
    return f"/report/{org.request_form_token}/"


def asset_url(asset):
    return f"/report/a/{asset.public_token}/"


def status_url(work_request):
    return f"/report/status/{work_request.token}/"


def nothing_stored(media):
    return not WorkRequest.objects.exists() and not Attachment.objects.exists() and not stored_files(media)


# --- the forms ------------------------------------------------------------------------------------------


def test_organisation_form_lists_its_in_service_assets_only(client, org_a, pump, retired, foreign_asset, site):
    response = client.get(form_url(org_a))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Org A" in html
    assert f'<option value="{pump.pk}">PMP-1 — Pump</option>' in html
    assert "OLD-9" not in html  # retired
    assert "B-PUMP" not in html  # another organisation's
    assert "Plant › Hall 1 › Pump room" in html  # locations by path
    assert "csrfmiddlewaretoken" in html
    assert 'enctype="multipart/form-data"' in html


def test_every_input_has_a_label(client, org_a, pump):
    html = client.get(form_url(org_a)).content.decode()
    ids = re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', html)
    assert {"id_description", "id_asset", "id_location", "id_contact_name", "id_contact_email"} <= set(ids)
    assert {"id_contact_phone", "id_photos"} <= set(ids)
    for input_id in ids:
        assert f'<label for="{input_id}">' in html, input_id


def test_photo_input_opens_the_camera_and_takes_several(client, org_a):
    html = client.get(form_url(org_a)).content.decode()
    photo_input = re.search(r'<input[^>]*name="photos"[^>]*>', html)[0]
    assert 'accept="image/*"' in photo_input
    assert 'capture="environment"' in photo_input
    assert "multiple" in photo_input


def test_pages_are_mobile_first_and_self_contained(client, org_a):
    html = client.get(form_url(org_a)).content.decode()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "/static/workorders/public.css" in html
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)  # no CDN
    css = (Path(__file__).resolve().parents[2] / "workorders/static/workorders/public.css").read_text()
    assert "min-height: 2.75rem" in css  # 44 px touch targets
    assert "font-size: 1rem" in css


def test_asset_form_shows_the_asset_and_does_not_ask_for_one(client, pump):
    response = client.get(asset_url(pump))
    assert response.status_code == 200
    html = response.content.decode()
    assert "PMP-1" in html and "Pump" in html and "Plant › Hall 1 › Pump room" in html
    assert 'name="asset"' not in html and 'name="location"' not in html


@pytest.mark.parametrize(
    "url",
    [
        "/report/not-a-token/",
        "/report/a/not-a-token/",
        "/report/status/not-a-token/",
    ],
)
def test_unknown_token_is_not_found(client, org_a, url):
    assert client.get(url).status_code == 404
    assert client.post(url, {"description": "x"}).status_code in (404, 405)
    assert not WorkRequest.objects.exists()


def test_tokens_are_not_interchangeable(client, org_a, pump, retired):
    assert client.get(f"/report/{pump.public_token}/").status_code == 404  # an asset's token is no form token
    assert client.get(f"/report/a/{org_a.request_form_token}/").status_code == 404
    assert client.get(asset_url(retired)).status_code == 404  # a retired asset's label leads nowhere


# --- submitting -----------------------------------------------------------------------------------------


def test_organisation_form_creates_a_pending_request(client, org_a, pump, site, media):
    response = client.post(
        form_url(org_a),
        {
            "description": "  Leaking at the flange  ",
            "asset": pump.pk,
            "location": site["room"].pk,
            "contact_name": "Ann",
            "contact_email": "ann@example.com",
            "contact_phone": "+44 20 7946 0000",
        },
    )
    work_request = WorkRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == status_url(work_request)
    assert work_request.organization == org_a
    assert work_request.status == WorkRequest.Status.PENDING
    assert (work_request.description, work_request.asset, work_request.location) == (
        "Leaking at the flange",
        pump,
        site["room"],
    )
    assert (work_request.contact_name, work_request.contact_email, work_request.contact_phone) == (
        "Ann",
        "ann@example.com",
        "+44 20 7946 0000",
    )


def test_asset_form_fixes_the_asset_and_its_location(client, pump, site):
    response = client.post(asset_url(pump), {"description": "Noisy bearing", "asset": "999", "location": "999"})
    assert response.status_code == 302
    work_request = WorkRequest.objects.get()
    assert (work_request.asset, work_request.location, work_request.organization) == (
        pump,
        site["room"],
        pump.organization,
    )


def test_photos_are_stored_as_attachments_of_the_request(client, org_a, pump, media):
    response = client.post(
        asset_url(pump),
        {"description": "Cracked housing", "photos": [photo("one.png"), photo("two.jpg", jpeg(), "image/jpeg")]},
    )
    assert response.status_code == 302
    work_request = WorkRequest.objects.get()
    attachments = list(work_request.attachments.order_by("original_name"))
    assert [(a.original_name, a.content_type, a.work_order) for a in attachments] == [
        ("one.png", "image/png", None),
        ("two.jpg", "image/jpeg", None),
    ]
    assert all(a.organization == org_a and a.uploaded_by is None for a in attachments)
    assert Path(attachments[0].file.path).read_bytes() == PNG
    assert len(stored_files(media)) == 2


def test_missing_description_is_shown_next_to_the_field(client, org_a, media):
    response = client.post(form_url(org_a), {"description": "   ", "contact_email": "not-an-address"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Your report has not been sent yet" in html
    assert re.search(r'<ul class="field__errors" id="id_description_error"><li>This field is required', html)
    assert re.search(r'id="id_contact_email_error"><li>Enter a valid email address', html)
    textarea = re.search(r"<textarea[^>]*>", html)[0]
    assert 'aria-invalid="true"' in textarea and "id_description_error" in textarea
    assert 'value="not-an-address"' in html  # what was typed is kept
    assert nothing_stored(media)


def test_another_organisations_asset_cannot_be_chosen(client, org_a, foreign_asset, media):
    response = client.post(form_url(org_a), {"description": "Broken", "asset": foreign_asset.pk})
    assert response.status_code == 400
    assert "id_asset_error" in response.content.decode()
    assert nothing_stored(media)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            [photo("setup.exe", b"MZ\x90\x00", "application/x-msdownload")],
            "a Windows program (application/x-msdownload)",
        ),
        ([photo("photo.png", b"MZ\x90\x00" + bytes(200), "image/png")], "a Windows program (application/x-msdownload)"),
        # a bad second file: not even the first is stored
        ([photo("ok.png"), photo("page.html", b"<script>", "text/html")], "its content is a text file (text/plain)"),
    ],
)
def test_a_file_of_a_refused_type_stores_nothing(client, pump, media, files, message):
    response = client.post(asset_url(pump), {"description": "Sparks", "photos": files})
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html  # the service's message names the type found in the content
    assert 'id="id_photos_error"' in html
    assert nothing_stored(media)


def test_a_file_too_large_stores_nothing(client, pump, media, monkeypatch):
    monkeypatch.setattr(services, "ATTACHMENT_MAX_BYTES", 10)
    response = client.post(asset_url(pump), {"description": "Sparks", "photos": [photo()]})
    assert response.status_code == 400
    assert "the limit is 0 MB" in response.content.decode()
    assert nothing_stored(media)


def test_a_refusal_of_the_service_is_shown_on_the_form(client, pump, media, monkeypatch):
    def refuse(*args, **kwargs):
        raise InvalidInput("The file is empty.", fields={"file": ["Empty."]})

    monkeypatch.setattr(services, "submit_request", refuse)
    response = client.post(asset_url(pump), {"description": "Sparks", "photos": [photo()]})
    assert response.status_code == 400
    assert re.search(r'id="id_photos_error"><li>The file is empty\.', response.content.decode())


def test_the_form_is_csrf_protected(org_a):
    browser = Client(enforce_csrf_checks=True)
    assert browser.post(form_url(org_a), {"description": "No token"}).status_code == 403
    browser.get(form_url(org_a))
    token = browser.cookies["csrftoken"].value
    response = browser.post(form_url(org_a), {"description": "With token", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert WorkRequest.objects.get().description == "With token"


# --- rate limit -----------------------------------------------------------------------------------------


def test_too_many_reports_from_one_address_are_refused_with_429(client, settings, org_a, pump, media):
    settings.PUBLIC_REPORT_RATE = "2/600"
    for n in range(2):
        assert (
            client.post(form_url(org_a), {"description": f"report {n}"}, REMOTE_ADDR="203.0.113.5").status_code == 302
        )
    response = client.post(
        asset_url(pump), {"description": "third one", "photos": [photo()]}, REMOTE_ADDR="203.0.113.5"
    )
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 600
    html = response.content.decode()
    assert "Too many reports sent" in html and "has not been sent" in html
    assert "third one" in html  # what was typed is kept
    assert WorkRequest.objects.count() == 2 and not Attachment.objects.exists()
    # another address is not affected
    assert client.post(form_url(org_a), {"description": "elsewhere"}, REMOTE_ADDR="203.0.113.6").status_code == 302


def test_ipv6_clients_are_counted_per_64_block(client, settings, org_a):
    settings.PUBLIC_REPORT_RATE = "1/600"
    assert client.post(form_url(org_a), {"description": "a"}, REMOTE_ADDR="2001:db8:1:2::1").status_code == 302
    assert client.post(form_url(org_a), {"description": "b"}, REMOTE_ADDR="2001:db8:1:2::99").status_code == 429
    assert client.post(form_url(org_a), {"description": "c"}, REMOTE_ADDR="2001:db8:1:3::1").status_code == 302


def test_an_organisation_receives_a_bounded_number_of_reports(client, settings, org_a, org_b, pump):
    settings.PUBLIC_REPORT_ORGANIZATION_RATE = "3/600"
    for n in range(3):
        url = form_url(org_a) if n % 2 else asset_url(pump)  # both forms share the organisation's allowance
        assert client.post(url, {"description": "x"}, REMOTE_ADDR=f"198.51.100.{n}").status_code == 302
    assert client.post(form_url(org_a), {"description": "x"}, REMOTE_ADDR="198.51.100.9").status_code == 429
    assert client.post(form_url(org_b), {"description": "x"}, REMOTE_ADDR="198.51.100.9").status_code == 302


def test_a_refused_address_does_not_use_up_the_organisations_allowance(client, settings, org_a):
    settings.PUBLIC_REPORT_RATE = "1/600"
    settings.PUBLIC_REPORT_ORGANIZATION_RATE = "2/600"
    assert client.post(form_url(org_a), {"description": "x"}, REMOTE_ADDR="192.0.2.1").status_code == 302
    for _ in range(5):
        assert client.post(form_url(org_a), {"description": "x"}, REMOTE_ADDR="192.0.2.1").status_code == 429
    assert client.post(form_url(org_a), {"description": "x"}, REMOTE_ADDR="192.0.2.2").status_code == 302


@pytest.mark.redis
def test_the_limit_holds_in_redis(client, settings, org_a):
    """The counters in Redis (atomic increments, expiry kept), as deployed."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": settings.REDIS_URL,
            "KEY_PREFIX": f"test-{uuid.uuid4()}",
        }
    }
    settings.PUBLIC_REPORT_RATE = "2/600"
    statuses = [client.post(form_url(org_a), {"description": "x"}).status_code for _ in range(3)]
    assert statuses == [302, 302, 429]
    keys = list(cache._cache.get_client().scan_iter(f"{settings.CACHES['default']['KEY_PREFIX']}:*"))
    assert len(keys) == 2  # one counter per address, one per organisation
    assert all(0 < cache._cache.get_client().ttl(key) <= 660 for key in keys)


def test_without_a_cache_reports_still_get_through(client, org_a):
    unreachable = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    with override_settings(CACHES=unreachable):
        assert client.post(form_url(org_a), {"description": "the cache is down"}).status_code == 302
    assert WorkRequest.objects.count() == 1


@pytest.mark.parametrize(
    ("remote", "counted_as"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("", "unknown"),
    ],
)
def test_client_address(rf, remote, counted_as):
    assert public_views.client_address(rf.get("/", REMOTE_ADDR=remote)) == counted_as


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("5/600", (5, 600)), ("5/10m", (5, 600)), ("5/min", (5, 60)), ("100/h", (100, 3600)), (" 3 / 2d ", (3, 172800))],
)
def test_rates_are_parsed(raw, expected):
    assert public_views.parse_rate("PUBLIC_REPORT_RATE", raw) == expected


@pytest.mark.parametrize("raw", ["", "5", "five/600", "0/600", "5/0", "5/fortnight"])
def test_a_malformed_rate_is_a_configuration_error(raw):
    with pytest.raises(ImproperlyConfigured, match="PUBLIC_REPORT_RATE"):
        public_views.parse_rate("PUBLIC_REPORT_RATE", raw)


# --- the requester's status page ------------------------------------------------------------------------


def submit(org, **fields):
    fields.setdefault("description", "Door will not close")
    return services.submit_request(org, **fields)


def test_status_page_shows_a_pending_request(client, org_a, pump):
    work_request = submit(org_a, asset=pump, contact_email="ann@example.com", contact_phone="+44 1")
    response = client.get(status_url(work_request))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Pending" in html and "waiting to be reviewed" in html
    assert "Door will not close" in html
    # nothing else: not the organisation, the asset, nor the contact details
    for secret in ("Org A", "PMP-1", "Pump", "ann@example.com", "+44 1"):
        assert secret not in html
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]


def test_status_page_shows_the_work_order_of_an_approved_request(client, org_a, planner_a):
    work_request = submit(org_a)
    work_order = services.approve_request(work_request, actor=planner_a, title="Fix the fire door")
    html = client.get(status_url(work_request)).content.decode()
    assert "Approved" in html and work_order.number in html and "Open" in html
    assert "Fix the fire door" not in html  # staff's wording stays internal
    # The page follows the order's status as it moves (set directly: this is about the page, not the lifecycle).
    WorkOrder.objects.filter(pk=work_order.pk).update(status=WorkOrder.Status.IN_PROGRESS)
    assert "In progress" in client.get(status_url(work_request)).content.decode()
    assert WorkOrder.objects.get().source == WorkOrder.Source.REQUEST


def test_status_page_shows_the_reason_of_a_rejection(client, org_a, planner_a):
    work_request = submit(org_a)
    services.reject_request(work_request, actor=planner_a, reason="Reported twice: see the other report")
    html = client.get(status_url(work_request)).content.decode()
    assert "Rejected" in html and "Reported twice: see the other report" in html


def test_one_status_page_shows_nothing_of_another_request(client, org_a, org_b, planner_a):
    mine = submit(org_a, description="My broken tap")
    approved = submit(org_a, description="Lift stuck on floor 3")
    rejected = submit(org_b, description="Heater in room 12")
    work_order = services.approve_request(approved, actor=planner_a)
    services.reject_request(rejected, actor=SYSTEM, reason="Out of scope for the contract")
    html = client.get(status_url(mine)).content.decode()
    assert "My broken tap" in html and "Pending" in html
    for other in ("Lift stuck on floor 3", work_order.number, "Heater in room 12", "Out of scope", "Org B"):
        assert other not in html
