"""Resumable uploads (`/api/v1/work-orders/{id}/uploads/`): a photo a phone took offline arrives in pieces. An
interrupted upload continues from the offset the server has; a piece sent twice or out of place never corrupts the
file; the last piece makes one attachment through the attachment service (type by content, size, who may), once
per client id; another organisation's order or somebody else's upload is a 404."""

import io

import pytest
from PIL import Image

from workorders import services
from workorders.models import Attachment, ResumableUpload

pytestmark = pytest.mark.django_db


def photo_bytes(side: int = 400) -> bytes:
    """A noisy JPEG (noise does not compress: a few pieces long)."""
    image = Image.effect_noise((side, side), 80).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def _media_in_a_temporary_folder(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def base(order) -> str:
    return f"/api/v1/work-orders/{order.pk}/uploads/"


def start(client, order, client_id="photo-1", data=b"x", name="pump.jpg"):
    return client.post(base(order), {"client_id": client_id, "name": name, "size": len(data)}, format="json")


def send(client, order, client_id, offset, piece):
    return client.generic(
        "PATCH",
        f"{base(order)}{client_id}/",
        piece,
        content_type="application/octet-stream",
        HTTP_UPLOAD_OFFSET=str(offset),
    )


def test_an_interrupted_upload_continues_from_the_offset_the_server_has(api, order, technician_a):
    client, data = api(technician_a), photo_bytes()
    assert start(client, order, data=data).status_code == 201
    first = send(client, order, "photo-1", 0, data[:20_000])
    assert first.status_code == 200, first.json()
    assert first.json()["offset"] == 20_000 and not first.json()["complete"]
    # the connection drops; the phone asks where it stands and goes on from there
    again = start(client, order, data=data)
    assert again.status_code == 200 and again.json()["offset"] == 20_000
    assert client.get(f"{base(order)}photo-1/").json()["offset"] == 20_000
    # a piece sent again (its answer was lost) is refused with where to continue, and changes nothing
    repeated = send(client, order, "photo-1", 0, data[:20_000])
    assert repeated.status_code == 409
    assert repeated.json()["error"]["code"] == "upload_offset_mismatch" and repeated.json()["error"]["offset"] == 20_000
    last = send(client, order, "photo-1", 20_000, data[20_000:])
    assert last.status_code == 200 and last.json()["complete"], last.json()
    attachment = Attachment.objects.get(work_order=order)
    assert last.json()["attachment"]["id"] == attachment.pk
    assert attachment.content_type == "image/jpeg" and attachment.uploaded_by == technician_a
    assert ResumableUpload.objects.get().data in (b"", memoryview(b""))  # the buffer is emptied once attached


def test_the_file_is_attached_once_per_client_id(api, order, technician_a):
    client, data = api(technician_a), photo_bytes(200)
    start(client, order, data=data)
    assert send(client, order, "photo-1", 0, data).json()["complete"]
    # the last piece again, the start again: the same attachment, no second one
    assert send(client, order, "photo-1", 0, data).status_code == 200
    assert start(client, order, data=data).json()["complete"]
    assert Attachment.objects.filter(work_order=order).count() == 1
    # the same client id for another file is a conflict naming the upload, never a silent success
    other = start(client, order, data=data + b"more")
    assert other.status_code == 409 and other.json()["error"]["code"] == "client_id_reused"


def test_the_type_is_checked_by_content_and_the_size_up_front(api, order, technician_a):
    client = api(technician_a)
    fake = b"MZ\x90\x00" + b"\x00" * 200  # an executable named like a photo
    start(client, order, "fake", data=fake, name="photo.jpg")
    refused = send(client, order, "fake", 0, fake)
    assert refused.status_code in (400, 415), refused.json()
    assert not Attachment.objects.exists()
    too_big = client.post(base(order), {"client_id": "big", "name": "a.jpg", "size": 10**9}, format="json")
    assert too_big.status_code == 400 and "limit" in too_big.json()["error"]["message"]


def test_pieces_past_the_announced_size_or_without_an_offset_are_refused(api, order, technician_a):
    client = api(technician_a)
    start(client, order, data=b"12345")
    assert send(client, order, "photo-1", 0, b"1234567").status_code == 400
    missing = client.generic("PATCH", f"{base(order)}photo-1/", b"12", content_type="application/octet-stream")
    assert missing.status_code == 400 and "Upload-Offset" in missing.json()["error"]["fields"]
    for offset in ("²", "-1", "1e3", "9" * 40):  # what a fuzzer sends: a 400, never a 500
        assert send(client, order, "photo-1", offset, b"12").status_code == 400
    assert ResumableUpload.objects.get().received == 0


def test_another_organisation_or_another_author_gets_a_404(
    api, order, technician_a, technician2_a, manager_b, viewer_a
):
    start(api(technician_a), order, data=b"12345")
    assert api(manager_b).get(f"{base(order)}photo-1/").status_code == 404
    assert start(api(manager_b), order).status_code == 404
    assert api(technician2_a).get(f"{base(order)}photo-1/").status_code == 404  # somebody else's upload
    assert send(api(technician2_a), order, "photo-1", 0, b"1").status_code == 404
    assert start(api(viewer_a), order).status_code == 403  # a viewer may not attach


def test_the_service_refuses_a_piece_of_somebody_elses_upload(order, technician_a, technician2_a):
    upload = services.start_upload(order, actor=technician_a, client_id="p", name="p.jpg", size=3)
    with pytest.raises(services.NotFound):
        services.receive_upload_piece(upload, actor=technician2_a, offset=0, piece=b"abc")


def test_uploads_left_unfinished_past_the_offline_age_are_forgotten_once(order, technician_a, settings):
    from datetime import timedelta

    from django.utils import timezone

    from maintenance_site.tenancy import SYSTEM

    old = services.start_upload(order, actor=technician_a, client_id="old", name="a.jpg", size=10)
    services.start_upload(order, actor=technician_a, client_id="new", name="b.jpg", size=10)
    later = timezone.now() + timedelta(days=settings.OFFLINE_MAX_AGE_DAYS, hours=1)
    ResumableUpload.objects.exclude(pk=old.pk).update(updated_at=later)  # touched recently, as of `later`
    assert services.discard_abandoned_uploads(actor=SYSTEM, now=later) == 1
    assert services.discard_abandoned_uploads(actor=SYSTEM, now=later) == 0  # a second run: nothing
    assert list(ResumableUpload.objects.values_list("client_id", flat=True)) == ["new"]
