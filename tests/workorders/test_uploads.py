"""Uploaded files are recognised by their content, never by the type the client declares: on every upload path
(API attachments, the technician's photo, public problem reports, and the work order a request is approved
into) a file whose content does not match is refused with the type found named, and what is stored and served
is the type found."""

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from assets import services as asset_services
from maintenance_site.errors import InvalidInput
from workorders import services, uploads
from workorders.models import Attachment

pytestmark = pytest.mark.django_db

EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(240) + b"This program cannot be run in DOS mode."
PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00\x00\x00\x08free"
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00\x00\x00\x08meta"
MOV = b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  " + b"\x00\x00\x00\x08wide"
CSV = "code,reading\nPMP-1,4.2\nPMP-2,3.9 µm\n".encode()


def picture(image_format: str, size=(4, 3)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buffer, format=image_format)
    return buffer.getvalue()


def upload(name: str, content: bytes, content_type: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def stored_files(media) -> list[Path]:
    return [p for p in Path(media).rglob("*") if p.is_file()] if Path(media).exists() else []


@pytest.fixture
def pump(org_a):
    return asset_services.create_asset(org_a, code="PMP-1", name="Cooling pump")


@pytest.fixture
def order(org_a, planner_a, technician_a, pump):
    return services.create_work_order(
        org_a, title="Replace the seal", asset=pump, actor=planner_a, assignee=technician_a
    )


# --- what the content says ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (picture("JPEG"), "image/jpeg"),
        (picture("PNG"), "image/png"),
        (picture("WEBP"), "image/webp"),
        (picture("GIF"), "image/gif"),
        (PDF, "application/pdf"),
        (MP4, "video/mp4"),
        (HEIC, "image/heic"),
        (MOV, "video/quicktime"),
        (CSV, "text/plain"),
        ("Ölwechsel erledigt.\r\n".encode("utf-8-sig"), "text/plain"),
        ("Pièce;Quantité\r\nJoint;2\r\n".encode("cp1252"), "text/plain"),  # a CSV saved by Excel on Windows
        (EXE, "application/x-msdownload"),
        (b"\x7fELF\x02\x01\x01" + bytes(100), "application/x-executable"),
        (b"PK\x03\x04" + bytes(100), "application/zip"),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "application/octet-stream"),  # a PNG header on nothing is no PNG
        (bytes(range(256)) * 4, "application/octet-stream"),
        (b"text\x00with a NUL", "application/octet-stream"),
    ],
)
def test_the_type_is_found_in_the_content(content, expected):
    assert uploads.detect(upload("whatever.bin", content, "image/png")).content_type == expected


def test_a_declared_alias_or_a_generic_type_takes_the_type_found():
    allowed = services.ATTACHMENT_TYPES
    assert uploads.accepted_type(upload("a.jpg", picture("JPEG"), "image/jpg"), allowed=allowed, offer="") == (
        "image/jpeg"
    )
    jpeg = upload("a.jpg", picture("JPEG"), "application/octet-stream")
    assert uploads.accepted_type(jpeg, allowed=allowed, offer="") == "image/jpeg"
    assert jpeg.read() == picture("JPEG")  # the file is read from its start again when it is stored
    excel_csv = upload("readings.csv", CSV, "application/vnd.ms-excel")  # what Windows browsers send
    assert uploads.accepted_type(excel_csv, allowed=allowed, offer="") == "text/csv"
    assert uploads.accepted_type(upload("notes.txt", CSV, "text/plain"), allowed=allowed, offer="") == "text/plain"


def test_a_mismatch_is_refused_naming_the_type_found():
    with pytest.raises(InvalidInput) as refused:
        services.check_upload(upload("photo.png", picture("JPEG"), "image/png"))
    assert "sent as image/png but its content is a JPEG image (image/jpeg)" in refused.value.message
    with pytest.raises(InvalidInput) as refused:
        services.check_upload(upload("clip.mp4", MOV, "video/mp4"))
    assert "a QuickTime video (video/quicktime), which is not accepted" in refused.value.message


# --- every upload path ----------------------------------------------------------------------------------


def test_api_refuses_a_program_sent_as_a_photo(api, order, technician_a, media):
    response = api(technician_a).post(
        f"/api/v1/work-orders/{order.pk}/attachments/",
        {"file": upload("photo.png", EXE, "image/png")},
        format="multipart",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "a Windows program (application/x-msdownload), which is not accepted" in error["message"]
    assert error["fields"] == {"file": ["Detected type application/x-msdownload not accepted."]}
    assert not Attachment.objects.exists() and stored_files(media) == []


def test_api_stores_and_serves_the_type_found(api, order, technician_a):
    client = api(technician_a)
    response = client.post(
        f"/api/v1/work-orders/{order.pk}/attachments/",
        {"file": upload("report", PDF, "application/octet-stream")},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["content_type"] == "application/pdf"
    download = client.get(f"/api/v1/attachments/{response.json()['token']}/download")
    assert download["Content-Type"] == "application/pdf"
    assert download["X-Content-Type-Options"] == "nosniff"
    assert b"".join(download.streaming_content) == PDF

    mismatch = client.post(
        f"/api/v1/work-orders/{order.pk}/attachments/",
        {"file": upload("scan.pdf", picture("PNG"), "application/pdf")},
        format="multipart",
    )
    assert mismatch.status_code == 400
    assert "its content is a PNG image (image/png)" in mismatch.json()["error"]["message"]


def test_technician_photo_names_what_the_file_is(order, technician_a, media):
    client = Client()
    client.force_login(technician_a)
    response = client.post(f"/t/orders/{order.pk}/photos/", {"photo": upload("photo.png", EXE, "image/png")})
    assert response.status_code == 400
    assert "it is a Windows program (application/x-msdownload)" in response.content.decode()
    assert not Attachment.objects.exists() and stored_files(media) == []


def test_public_report_refuses_a_program_sent_as_a_photo(client, pump, media):
    response = client.post(
        f"/report/a/{pump.public_token}/",
        {"description": "Sparks", "photos": [upload("photo.png", EXE, "image/png")]},
    )
    assert response.status_code == 400
    assert "a Windows program (application/x-msdownload)" in response.content.decode()
    assert not Attachment.objects.exists() and stored_files(media) == []


def test_an_approved_request_carries_its_files_with_the_type_found(api, org_a, pump, planner_a):
    work_request = services.submit_request(
        org_a,
        description="Leaks under the flange",
        asset=pump,
        files=[upload("leak", picture("JPEG"), "application/octet-stream"), upload("log.csv", CSV, "text/csv")],
    )
    with pytest.raises(InvalidInput):
        services.submit_request(org_a, description="Sparks", files=[upload("photo.png", EXE, "image/png")])

    response = api(planner_a).post(f"/api/v1/requests/{work_request.pk}/approve", {})
    assert response.status_code == 201, response.json()
    order_id = response.json()["id"]
    listed = api(planner_a).get(f"/api/v1/work-orders/{order_id}/attachments/").json()
    assert sorted((a["original_name"], a["content_type"]) for a in listed) == [
        ("leak", "image/jpeg"),
        ("log.csv", "text/csv"),
    ]
    leak = next(a for a in listed if a["original_name"] == "leak")
    download = api(planner_a).get(f"/api/v1/attachments/{leak['token']}/download")
    assert download["Content-Type"] == "image/jpeg"
    assert Attachment.objects.count() == 2  # the refused request stored nothing
