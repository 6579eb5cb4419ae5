"""The technician's view (`/t/`) through the Django test client: pages, forms, the JSON endpoints used by
the offline queue, and the permission cases (anonymous, another organisation: 404, someone else's work: 403)."""

import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from assets import meters as meter_services
from assets.models import Meter
from inventory.models import MovementKind, StockLevel, StockMovement
from maintenance_site.tenancy import services as tenancy
from maintenance_site.tenancy.middleware import SESSION_KEY
from workorders import services
from workorders.models import Attachment, ChecklistItem, Comment, ItemKind, TimeEntry, WorkOrder

pytestmark = pytest.mark.django_db

S = WorkOrder.Status


def url(name, *args, **kwargs):
    return reverse(f"technician:{name}", args=args, kwargs=kwargs)


def text(response) -> str:
    return response.content.decode()


def started(order, technician):
    return services.start(order, actor=technician)


def item_named(order, label) -> ChecklistItem:
    return order.checklist.get(text=label)


# --- signing in, out, the organisation --------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/t/", "/t/work/list/", "/t/orders/1/", "/t/assets/some-token/", "/t/organization/", "/t/sw.js"],
)
def test_anonymous_visitors_are_sent_to_the_technician_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/t/login/?next=")


def test_login_page_signs_in_and_leads_to_my_work(client, technician_a):
    page = client.get(url("login"))
    assert page.status_code == 200
    assert 'autocomplete="current-password"' in text(page)
    response = client.post(url("login"), {"username": "technician-a", "password": "pw-technician-a"})
    assert response.status_code == 302
    assert response["Location"] == url("my-work")
    assert client.get(url("my-work")).status_code == 200


def test_wrong_password_is_refused_with_a_message(client, technician_a):
    response = client.post(url("login"), {"username": "technician-a", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in text(response)


def test_logout_page_clears_the_phone_then_posts(client_of, technician_a):
    client = client_of(technician_a)
    page = client.get(url("logout"))
    assert page.status_code == 200
    assert "data-logout-form" in text(page) and 'data-page="logout"' in text(page)
    response = client.post(url("logout"))
    assert response.status_code == 302 and response["Location"] == url("login")
    assert client.get(url("my-work")).status_code == 302  # signed out


def test_a_member_of_several_organisations_picks_one_first(client_of, member_of_both, org_a, org_b):
    client = client_of(member_of_both)
    response = client.get(url("my-work"))
    assert response.status_code == 302 and response["Location"] == url("organization")
    page = client.get(url("organization"))
    assert "Org A" in text(page) and "Org B" in text(page)
    assert reverse("switch-organization") in text(page)
    switched = client.post(reverse("switch-organization"), {"organization": org_b.pk, "next": url("my-work")})
    assert switched["Location"] == url("my-work")
    assert client.session[SESSION_KEY] == org_b.pk
    page = client.get(url("my-work"))
    assert page.status_code == 200 and "Org B" in text(page)


def test_a_user_without_membership_gets_a_403_saying_so(client_of):
    from tests.conftest import make_user

    response = client_of(make_user("loner")).get(url("my-work"))
    assert response.status_code == 403
    assert "not a member of any organisation" in text(response)


# --- my work ------------------------------------------------------------------------------------------


def test_my_work_lists_my_and_my_teams_open_orders_most_urgent_first(
    client_of, org_a, planner_a, technician_a, technician2_a
):
    now = timezone.now()
    team = services.create_team(org_a, name="Electrical", members=[technician_a], actor=planner_a)

    def create(title, **fields):
        return services.create_work_order(org_a, title=title, actor=planner_a, **fields)

    low = create("Low", priority="low", assignee=technician_a)
    high_late = create("High later", priority="high", assignee=technician_a, due_at=now + timedelta(days=3))
    high_soon = create("High soon", priority="high", assignee=technician_a, due_at=now + timedelta(hours=2))
    critical = create("Critical", priority="critical", team=team)
    overdue = create("Overdue medium", priority="medium", assignee=technician_a, due_at=now - timedelta(hours=1))
    create("Someone else's", priority="critical", assignee=technician2_a)
    done = create("Done", priority="critical", assignee=technician_a)
    services.cancel(done, reason="duplicate", actor=planner_a)

    response = client_of(technician_a).get(url("my-work"))
    orders = response.context["orders"]
    assert [o.title for o in orders] == [critical.title, high_soon.title, high_late.title, overdue.title, low.title]
    assert [o.overdue for o in orders] == [False, False, False, True, False]
    page = text(response)
    assert "Overdue: due" in page
    assert "Someone else" not in page


def test_my_work_filters_today_this_week_all(client_of, org_a, planner_a, technician_a):
    now = timezone.now()
    services.create_work_order(
        org_a, title="Late", actor=planner_a, assignee=technician_a, due_at=now - timedelta(days=2)
    )
    services.create_work_order(
        org_a, title="Next month", actor=planner_a, assignee=technician_a, due_at=now + timedelta(days=40)
    )
    services.create_work_order(org_a, title="No date", actor=planner_a, assignee=technician_a)
    underway = services.create_work_order(
        org_a, title="Under way", actor=planner_a, assignee=technician_a, due_at=now + timedelta(days=30)
    )
    started(underway, technician_a)
    client = client_of(technician_a)

    def titles(when):
        return {o.title for o in client.get(url("my-work"), {"when": when}).context["orders"]}

    assert titles("today") == {"Late", "Under way"}
    assert titles("week") == {"Late", "Under way"}
    assert titles("all") == {"Late", "Next month", "No date", "Under way"}
    assert titles("nonsense") == titles("all")


def test_the_week_filter_ends_on_sunday_night_in_the_organisations_time_zone(
    client_of, monkeypatch, org_a, planner_a, technician_a
):
    wednesday = datetime(2026, 11, 18, 10, 0, tzinfo=org_a.zone)  # Europe/Berlin
    monkeypatch.setattr(timezone, "now", lambda: wednesday.astimezone(UTC))
    for title, due in (
        ("This afternoon", wednesday.replace(hour=16)),
        ("Sunday night", datetime(2026, 11, 22, 23, 30, tzinfo=org_a.zone)),
        ("Monday morning", datetime(2026, 11, 23, 0, 30, tzinfo=org_a.zone)),
    ):
        services.create_work_order(org_a, title=title, actor=planner_a, assignee=technician_a, due_at=due)
    client = client_of(technician_a)

    def titles(when):
        return [o.title for o in client.get(url("my-work"), {"when": when}).context["orders"]]

    assert titles("today") == ["This afternoon"]
    assert titles("week") == ["This afternoon", "Sunday night"]
    assert titles("all") == ["This afternoon", "Sunday night", "Monday morning"]


def test_the_list_fragment_is_the_list_alone(client_of, order, technician_a):
    response = client_of(technician_a).get(url("my-work-fragment"))
    assert response.status_code == 200
    assert order.number in text(response)
    assert "<html" not in text(response)


def _queries_for_my_work(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url("my-work")).status_code == 200
    return len(queries)


def test_my_work_issues_as_many_queries_for_30_orders_as_for_3(client_of, org_a, planner_a, technician_a, pump):
    team = services.create_team(org_a, name="Mechanical", members=[technician_a], actor=planner_a)

    def add_orders(count):
        for index in range(count):
            services.create_work_order(
                org_a,
                title=f"Order {index}",
                actor=planner_a,
                asset=pump,
                priority=["low", "high"][index % 2],
                due_at=timezone.now() + timedelta(hours=index - 2),
                **({"team": team} if index % 3 == 0 else {"assignee": technician_a}),
            )
            services.create_work_order(org_a, title=f"Free {index}", actor=planner_a, asset=pump)

    client = client_of(technician_a)
    add_orders(3)
    small = _queries_for_my_work(client)
    add_orders(27)
    large = _queries_for_my_work(client)
    # session, user, membership (+ organisation), teams-in-session check, my orders, claimable orders,
    # the event sequence: the same whatever the number of orders.
    assert large == small
    assert len(client.get(url("my-work")).context["orders"]) == 30


def test_unassigned_orders_can_be_claimed_when_the_organisation_allows(client_of, org_a, planner_a, technician_a):
    free = services.create_work_order(org_a, title="Free job", actor=planner_a)
    client = client_of(technician_a)
    page = client.get(url("my-work"))
    assert [o.pk for o in page.context["claimable"]] == [free.pk]
    assert "Claim and start" in text(page)
    response = client.post(url("order-action", free.pk, "claim"))
    assert response.status_code == 302
    free.refresh_from_db()
    assert (free.status, free.assignee) == (S.IN_PROGRESS, technician_a)


def test_claiming_disabled_hides_free_work_and_refuses_to_claim(client_of, org_a, planner_a, technician_a):
    org_a.technicians_can_claim = False
    org_a.save()
    free = services.create_work_order(org_a, title="Free job", actor=planner_a)
    client = client_of(technician_a)
    assert client.get(url("my-work")).context["claimable"] == []
    response = client.post(url("order-action", free.pk, "claim"))
    assert response.status_code == 409
    assert "does not let technicians claim work" in text(response)
    free.refresh_from_db()
    assert free.status == S.OPEN


# --- the work-order page ------------------------------------------------------------------------------


def test_order_page_shows_asset_location_description_checklist_and_history(client_of, order, technician_a, pump):
    response = client_of(technician_a).get(url("order", order.pk))
    assert response.status_code == 200
    page = text(response)
    expected = [
        order.number,
        "Replace the seal",
        "PMP-1",
        "Plant room",
        "Leaks at the shaft.",
        "Isolate the pump",
        "Remarks",
        url("asset", pump.public_token),
        'id="maintenance-banner"',
    ]
    assert [snippet for snippet in expected if snippet not in page] == []
    assert response.context["actions"] == ["start"]
    history = response.context["history"]
    assert [entry["summary"] for entry in history] == ["Created"]


def test_start_hold_resume_complete_through_the_page(client_of, order, technician_a):
    client = client_of(technician_a)
    response = client.post(url("order-action", order.pk, "start"))
    assert response.status_code == 302 and response["Location"] == url("order", order.pk)
    page = client.get(response["Location"])
    assert f"{order.number} started." in text(page)
    assert set(page.context["actions"]) == {"hold", "complete"}

    refused = client.post(url("order-action", order.pk, "hold"), {"reason": "  "})
    assert refused.status_code == 400
    assert f"Give a reason to hold {order.number}." in text(refused)
    order.refresh_from_db()
    assert order.status == S.IN_PROGRESS

    client.post(url("order-action", order.pk, "hold"), {"reason": "Waiting for a seal"})
    order.refresh_from_db()
    assert (order.status, order.hold_reason) == (S.ON_HOLD, "Waiting for a seal")
    assert "Waiting for a seal" in text(client.get(url("order", order.pk)))

    client.post(url("order-action", order.pk, "resume"))
    order.refresh_from_db()
    assert order.status == S.IN_PROGRESS

    refused = client.post(url("order-action", order.pk, "complete"), {"notes": "all good"})
    assert refused.status_code == 409
    assert "1 required checklist item(s) are not done: “Isolate the pump”" in text(refused)
    assert "Remarks" not in refused.context["error"]  # optional items are not required
    order.refresh_from_db()
    assert order.status == S.IN_PROGRESS

    client.post(url("checklist", order.pk, item_named(order, "Isolate the pump").pk), {"done": "1"})
    response = client.post(url("order-action", order.pk, "complete"), {"notes": "all good"})
    assert response.status_code == 302
    order.refresh_from_db()
    assert (order.status, order.completion_notes) == (S.COMPLETED, "all good")
    summaries = [entry["summary"] for entry in client.get(url("order", order.pk)).context["history"]]
    assert summaries == ["Complete", "Resume", "Hold: Waiting for a seal", "Start", "Created"]


def test_an_unknown_action_is_a_404(client_of, order, technician_a):
    assert client_of(technician_a).post(url("order-action", order.pk, "verify")).status_code == 404


def test_checklist_forms_for_each_kind(client_of, org_a, order, planner_a, technician_a):
    services.add_checklist_item(order, text="Pressure test", kind=ItemKind.PASS_FAIL, actor=planner_a)
    services.add_checklist_item(order, text="Vibration", kind=ItemKind.NUMBER, unit="mm/s", actor=planner_a)
    client = client_of(technician_a)
    tick, remarks = item_named(order, "Isolate the pump"), item_named(order, "Remarks")
    verdict, number = item_named(order, "Pressure test"), item_named(order, "Vibration")

    page = text(client.get(url("order", order.pk)))
    assert 'name="done" value="1"' in page and 'name="passed" value="0"' in page
    assert f'for="item-{number.pk}-value"' in page and "Value in mm/s" in page
    assert f'for="item-{remarks.pk}-answer"' in page

    client.post(url("checklist", order.pk, tick.pk), {"done": "1"})
    client.post(url("checklist", order.pk, verdict.pk), {"passed": "0"})
    client.post(url("checklist", order.pk, number.pk), {"number_value": "4,5"})
    client.post(url("checklist", order.pk, remarks.pk), {"text_value": "Seal worn"})
    for item in (tick, verdict, number, remarks):
        item.refresh_from_db()
        assert item.done and item.done_by == technician_a
    assert (verdict.passed, number.number_value, remarks.text_value) == (False, 4.5, "Seal worn")

    bad = client.post(url("checklist", order.pk, number.pk), {"number_value": "lots"})
    assert bad.status_code == 400 and "“lots” is not a number." in text(bad)

    undo = client.post(url("checklist", order.pk, tick.pk), {"done": "0"})
    assert undo.status_code == 302
    tick.refresh_from_db()
    assert not tick.done

    follow_up = client.post(url("follow-up", order.pk, verdict.pk))
    assert follow_up.status_code == 302
    verdict.refresh_from_db()
    assert verdict.follow_up is not None and verdict.follow_up.parent == order


def test_another_orders_checklist_item_is_a_404(client_of, org_a, order, planner_a, technician_a):
    other = services.create_work_order(org_a, title="Other", actor=planner_a, assignee=technician_a)
    item = item_named(order, "Isolate the pump")
    assert client_of(technician_a).post(url("checklist", other.pk, item.pk), {"done": "1"}).status_code == 404


def test_time_by_minutes_and_by_timer(client_of, order, technician_a):
    client = client_of(technician_a)
    started(order, technician_a)
    response = client.post(url("time", order.pk), {"minutes": "45", "note": "Dismantled", "client_id": "c-1"})
    assert response.status_code == 302
    client.post(url("time", order.pk), {"minutes": "45", "note": "Dismantled", "client_id": "c-1"})  # double tap
    assert list(TimeEntry.objects.values_list("minutes", "note")) == [(45, "Dismantled")]
    bad = client.post(url("time", order.pk), {"minutes": "0"})
    assert bad.status_code == 400

    client.post(url("timer", order.pk, "start"))
    page = client.get(url("order", order.pk))
    assert page.context["running_here"] and "Stop timer" in text(page)
    TimeEntry.objects.filter(minutes__isnull=True).update(started_at=timezone.now() - timedelta(minutes=20))
    client.post(url("timer", order.pk, "stop"))
    assert sorted(TimeEntry.objects.values_list("minutes", flat=True)) == [20, 45]
    assert client.get(url("order", order.pk)).context["total_minutes"] == 65

    refused = client.post(url("timer", order.pk, "stop"))
    assert refused.status_code == 409 and "You have no timer running on this order." in text(refused)


def test_parts_used_from_my_van_with_plain_stock_errors(client_of, order, technician_a, seal, van, warehouse):
    client = client_of(technician_a)
    started(order, technician_a)
    form = client.get(url("order", order.pk)).context["forms"]["part"]
    assert form.initial["location"] == van.pk  # my van by default
    assert "Van 3 (my van)" in str(form["location"])

    too_many = client.post(url("part", order.pk), {"part_query": "SEAL-40", "quantity": "3", "location": van.pk})
    assert too_many.status_code == 409
    assert "Only 2 left in Van 3" in text(too_many)
    assert "Also available: Warehouse (10)" in text(too_many)

    response = client.post(
        url("part", order.pk), {"part_query": "seal-40", "quantity": "2", "location": van.pk, "client_id": "p-1"}
    )
    assert response.status_code == 302
    assert StockLevel.objects.get(part=seal, location=van).on_hand == 0
    page = client.get(url("order", order.pk))
    assert [(m.kind, m.quantity) for m in page.context["used"]] == [(MovementKind.ISSUE, -2)]
    assert "SEAL-40 Mechanical seal 40 mm" in text(page)

    by_name = client.post(
        url("part", order.pk), {"part_query": "mechanical", "quantity": "1", "location": warehouse.pk}
    )
    assert by_name.status_code == 302
    assert StockLevel.objects.get(part=seal, location=warehouse).on_hand == 9


def test_part_search_by_name_or_sku_within_the_organisation(client_of, org_b, order, technician_a, seal):
    from inventory.models import Part

    Part.objects.create(organization=org_b, sku="SEAL-99", name="Seal of another organisation")
    Part.objects.create(organization=order.organization, sku="SEAL-50", name="Mechanical seal 50 mm")
    client = client_of(technician_a)
    results = client.get(url("part-search"), {"q": "seal"}).json()
    assert [r["sku"] for r in results["results"]] == ["SEAL-40", "SEAL-50"]
    assert results["van"] == "Van 3" and results["results"][0]["in_van"] == "2"

    started(order, technician_a)
    ambiguous = client.post(url("part", order.pk), {"part_query": "mechanical", "quantity": "1"})
    assert ambiguous.status_code == 400
    assert "2 parts match “mechanical”: pick one below." in text(ambiguous)
    assert 'type="radio" name="part"' in text(ambiguous)
    unknown = client.post(url("part", order.pk), {"part_query": "SEAL-99", "quantity": "1"})
    assert "No part matches “SEAL-99”" in text(unknown)


def test_notes_are_added_once_per_client_id(client_of, order, technician_a):
    client = client_of(technician_a)
    for _ in range(2):
        response = client.post(url("note", order.pk), {"body": "Seal ordered", "client_id": "n-1"})
        assert response.status_code == 302
    assert list(Comment.objects.values_list("body", flat=True)) == ["Seal ordered"]
    assert "Seal ordered" in text(client.get(url("order", order.pk)))
    assert client.post(url("note", order.pk), {"body": ""}).status_code == 400


def _jpeg_with_gps(size=(3000, 2000)) -> bytes:
    image = Image.new("RGB", size, (200, 40, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = 1  # Orientation
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (52.0, 31.0, 12.0)
    gps[3], gps[4] = "E", (13.0, 24.0, 36.0)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def test_a_phone_photo_is_downscaled_and_stripped_of_its_location(client_of, order, technician_a, manager_b):
    from django.core.files.uploadedfile import SimpleUploadedFile

    original = _jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the GPS is there to begin with
    client = client_of(technician_a)
    upload = SimpleUploadedFile("IMG_0001.jpg", original, content_type="image/jpeg")
    response = client.post(url("photo", order.pk), {"photo": upload})
    assert response.status_code == 302

    attachment = Attachment.objects.get(work_order=order)
    assert (attachment.original_name, attachment.content_type, attachment.uploaded_by) == (
        "IMG_0001.jpg",
        "image/jpeg",
        technician_a,
    )
    with attachment.file.open("rb") as stored:
        data = stored.read()
    stored_image = Image.open(io.BytesIO(data))
    assert stored_image.size == (1600, 1067)
    assert not stored_image.getexif()
    assert b"Exif" not in data and b"PhoneMaker" not in data
    assert attachment.size == len(data) < len(original)

    download = client.get(url("attachment", attachment.token))
    assert download.status_code == 200 and download["Content-Type"] == "image/jpeg"
    assert b"".join(download.streaming_content) == data
    assert client_of(manager_b).get(url("attachment", attachment.token)).status_code == 404
    assert Client().get(url("attachment", attachment.token)).status_code == 302  # sign in first


def test_a_file_that_is_not_a_picture_is_refused(client_of, order, technician_a):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("notes.jpg", b"not a picture at all", content_type="image/jpeg")
    response = client_of(technician_a).post(url("photo", order.pk), {"photo": upload})
    assert response.status_code == 400
    assert "This file is not a photo we can read" in text(response)
    assert not Attachment.objects.exists()


def test_png_stays_png_and_small_pictures_keep_their_size():
    from django.core.files.uploadedfile import SimpleUploadedFile

    from workorders.images import prepare_photo

    buffer = io.BytesIO()
    Image.new("RGBA", (300, 200), (0, 0, 0, 0)).save(buffer, format="PNG")
    prepared = prepare_photo(SimpleUploadedFile("shot.png", buffer.getvalue(), content_type="image/png"))
    assert (prepared.name, prepared.content_type) == ("shot.png", "image/png")
    assert Image.open(prepared).size == (300, 200)


# --- other organisations, other people's work -----------------------------------------------------------


def test_another_organisations_order_asset_and_attachment_are_404(client_of, order, pump, manager_b, technician_a):
    from django.core.files.uploadedfile import SimpleUploadedFile

    attachment = services.add_attachment(
        uploaded=SimpleUploadedFile("a.txt", b"hello", content_type="text/plain"), actor=technician_a, work_order=order
    )
    stranger = client_of(manager_b)
    item = item_named(order, "Isolate the pump")
    for response in (
        stranger.get(url("order", order.pk)),
        stranger.get(url("asset", pump.public_token)),
        stranger.get(url("attachment", attachment.token)),
        stranger.post(url("order-action", order.pk, "start")),
        stranger.post(url("checklist", order.pk, item.pk), {"done": "1"}),
        stranger.post(url("note", order.pk), {"body": "hi"}),
    ):
        assert response.status_code == 404
    order.refresh_from_db()
    assert order.status == S.ASSIGNED and not order.comments.exists()


def test_acting_on_someone_elses_order_is_refused_with_the_services_message(client_of, order, technician2_a):
    client = client_of(technician2_a)
    page = client.get(url("order", order.pk))
    assert page.status_code == 200  # reading is fine
    assert page.context["actions"] == [] and not page.context["editable"]
    response = client.post(url("order-action", order.pk, "start"))
    assert response.status_code == 403
    assert f"{order.number} is not assigned to you." in text(response)
    item = item_named(order, "Isolate the pump")
    response = client.post(url("checklist", order.pk, item.pk), {"done": "1"})
    assert response.status_code == 403
    assert f"{order.number} is not assigned to you; ask a planner to assign it." in text(response)
    response = client.post(url("time", order.pk), {"minutes": "10"})
    assert response.status_code == 403
    order.refresh_from_db()
    assert order.status == S.ASSIGNED


def test_a_storekeeper_reads_an_order_but_is_offered_no_note_or_photo_form(client_of, order, storekeeper_a):
    # Issue 16: the note went through for any member; the role table gives storekeepers neither way to annotate
    client = client_of(storekeeper_a)
    page = client.get(url("order", order.pk))
    assert page.status_code == 200 and not page.context["may_annotate"]
    assert "add notes and photos" not in text(page) and url("note", order.pk) not in text(page)
    response = client.post(url("note", order.pk), {"body": "Seal is on shelf B2", "client_id": "n-1"})
    assert response.status_code == 403
    assert "Your role (Storekeeper) may not comment on work orders" in text(response)
    assert not order.comments.exists()


def test_another_technician_may_still_add_a_note(client_of, order, technician2_a):
    page = client_of(technician2_a).get(url("order", order.pk))
    assert page.context["may_annotate"] and "add notes and photos" in text(page)
    response = client_of(technician2_a).post(url("note", order.pk), {"body": "Heard it grind", "client_id": "n-2"})
    assert response.status_code == 302 and order.comments.get().body == "Heard it grind"


# --- the JSON endpoints of the offline queue -----------------------------------------------------------


def post_json(client, path, payload, **extra):
    return client.post(path, json.dumps(payload), content_type="application/json", **extra)


def test_a_replayed_checklist_tick_is_applied_once(client_of, order, technician_a):
    client = client_of(technician_a)
    item = item_named(order, "Isolate the pump")
    path = url("api-checklist", order.pk, item.pk)
    client_id = str(uuid.uuid4())
    first = post_json(client, path, {"done": "1", "client_id": client_id})
    again = post_json(client, path, {"done": "1", "client_id": client_id})
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["ok"] and "Isolate the pump" in first.json()["html"]
    assert item.history.count() == 2  # created, ticked once
    item.refresh_from_db()
    assert item.done and item.client_id == client_id


def test_replayed_notes_and_time_are_applied_once(client_of, order, technician_a):
    client = client_of(technician_a)
    started(order, technician_a)
    for attempt in range(3):
        note = post_json(client, url("api-note", order.pk), {"body": "Seal ordered", "client_id": "note-1"})
        time = post_json(client, url("api-time", order.pk), {"minutes": 30, "client_id": "time-1"})
        assert note.status_code == time.status_code == (201 if attempt == 0 else 200)  # replays: already stored
    assert Comment.objects.count() == 1 and TimeEntry.objects.count() == 1
    assert time.json()["total_minutes"] == 30
    assert "Seal ordered" in note.json()["html"]


def test_json_endpoints_answer_in_json_for_every_refusal(client_of, order, planner_a, technician_a, technician2_a):
    item = item_named(order, "Isolate the pump")
    path = url("api-checklist", order.pk, item.pk)
    anonymous = post_json(Client(), path, {"done": "1"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"

    client = client_of(technician_a)
    services.assign(order, technician2_a, actor=planner_a)  # reassigned while the phone was offline
    reassigned = post_json(client, path, {"done": "1", "client_id": "x-1"})
    assert reassigned.status_code == 403
    assert (
        reassigned.json()["error"]["message"] == f"{order.number} is not assigned to you; ask a planner to assign it."
    )

    services.cancel(order, reason="not needed", actor=planner_a)  # and then cancelled
    assignee = client_of(technician2_a)
    cancelled = post_json(assignee, path, {"done": "1", "client_id": "x-3"})
    assert cancelled.status_code == 409
    assert cancelled.json()["error"]["message"] == f"{order.number} is cancelled: its checklist can no longer change."
    time = post_json(assignee, url("api-time", order.pk), {"minutes": 5, "client_id": "x-2"})
    assert time.status_code == 409 and "no more time can be logged" in time.json()["error"]["message"]

    missing = post_json(client, url("api-note", 999999), {"body": "x", "client_id": "x-4"})
    assert missing.status_code == 404 and "error" in missing.json()
    invalid = post_json(client, url("api-time", order.pk), {"minutes": "lots", "client_id": "x-5"})
    assert invalid.status_code == 400 and invalid.json()["error"]["fields"]["minutes"]
    not_json = client.post(url("api-note", order.pk), "{", content_type="application/json")
    assert not_json.status_code == 400


def test_json_endpoints_need_the_csrf_token_which_csrf_hands_out(order, technician_a):
    client = Client(enforce_csrf_checks=True)
    client.force_login(technician_a)
    path = url("api-note", order.pk)
    assert post_json(client, path, {"body": "hi", "client_id": "c"}).status_code == 403
    token = client.get(url("csrf")).json()["csrfToken"]
    response = post_json(client, path, {"body": "hi", "client_id": "c"}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201
    assert Client().get(url("csrf")).status_code == 401


def test_my_own_changes_are_remembered_so_their_events_do_not_look_foreign(client_of, order, technician_a):
    from maintenance_site.events.models import Event

    client = client_of(technician_a)
    client.post(url("order-action", order.pk, "start"), HTTP_X_CORRELATION_ID="mine-123")
    assert Event.objects.filter(type="work-order:updated", correlation_id="mine-123").exists()
    page = client.get(url("order", order.pk))
    assert page.context["own_changes"] == ["mine-123"]
    assert 'id="own-changes"' in text(page)


# --- the asset page (QR label) --------------------------------------------------------------------------


def test_the_asset_page_shows_open_work_history_meters_and_the_report_link(
    client_of, org_a, order, pump, planner_a, technician_a
):
    meter = meter_services.create_meter(org_a, asset=pump, name="Run hours", unit="h", actor=planner_a)
    response = client_of(technician_a).get(url("asset", pump.public_token))
    assert response.status_code == 200
    page = text(response)
    assert [o.pk for o in response.context["open_orders"]] == [order.pk]
    assert response.context["history"] and "Cooling pump" in page
    assert reverse("public-report-asset", args=[pump.public_token]) in page
    assert "Report a problem" in page
    assert url("api-meter-reading", pump.public_token, meter.pk) in page


def test_meter_readings_by_form_and_json_replay_once(client_of, org_a, pump, planner_a, technician_a):
    meter = meter_services.create_meter(org_a, asset=pump, name="Run hours", unit="h", actor=planner_a)
    client = client_of(technician_a)
    response = client.post(url("meter-reading", pump.public_token, meter.pk), {"value": "120.5"})
    assert response.status_code == 302
    read_at = timezone.now().isoformat()
    for _ in range(2):
        replay = post_json(
            client,
            url("api-meter-reading", pump.public_token, meter.pk),
            {"value": "130", "read_at": read_at, "client_id": "m-1"},
        )
        assert replay.status_code == 201
    assert sorted(str(v) for v in meter.readings.values_list("value", flat=True)) == ["120.5000", "130.0000"]
    lower = post_json(client, url("api-meter-reading", pump.public_token, meter.pk), {"value": "100"})
    assert lower.status_code == 400 and "is a counter" in lower.json()["error"]["message"]
    assert Meter.objects.get(pk=meter.pk).last_value == 130


def test_another_organisations_meter_is_a_404(client_of, org_a, org_b, pump, planner_a, manager_b):
    meter = meter_services.create_meter(org_a, asset=pump, name="Run hours", unit="h", actor=planner_a)
    response = post_json(client_of(manager_b), url("api-meter-reading", pump.public_token, meter.pk), {"value": "1"})
    assert response.status_code == 404


# --- plumbing ---------------------------------------------------------------------------------------------


def test_the_service_worker_is_served_for_the_whole_technician_scope(client_of, technician_a):
    response = client_of(technician_a).get(url("service-worker"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert response["Service-Worker-Allowed"] == "/t/"
    body = text(response)
    assert '"prefix": "/t/"' in body and "/t/api/" in body and "/static/technician/technician.js" in body


def test_pages_are_not_kept_by_shared_caches(client_of, order, technician_a):
    response = client_of(technician_a).get(url("order", order.pk))
    assert "no-store" in response["Cache-Control"] or "private" in response["Cache-Control"]


def test_issued_stock_movements_of_the_order_only(client_of, org_a, order, planner_a, technician_a, seal, van):
    from inventory import services as inventory_services

    other = services.create_work_order(org_a, title="Other", actor=planner_a, assignee=technician_a)
    started(order, technician_a)
    started(other, technician_a)
    inventory_services.issue_to_work_order(other, seal, van, 1, actor=technician_a)
    assert client_of(technician_a).get(url("order", order.pk)).context["used"] == []
    assert StockMovement.objects.filter(work_order=other).count() == 1


def test_a_technician_can_log_in_when_organisation_memberships_change(client_of, org_b, technician_a):
    tenancy.add_member(org_b, technician_a, "technician")
    response = client_of(technician_a).get(url("my-work"))
    assert response.status_code == 302 and response["Location"] == url("organization")
