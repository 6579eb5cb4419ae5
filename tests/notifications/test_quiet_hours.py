"""Quiet hours in the recipient's time zone (non-urgent news waits, critical passes) and the daily digest."""

import datetime
import zoneinfo
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from maintenance_site.notifications import quiet, services
from maintenance_site.notifications.models import Channel, NotificationDelivery, NotificationProfile

pytestmark = [pytest.mark.django_db]
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
CONTEXT = {"title": "Stock low: V-belt", "body": "2 left, reorder point 5."}


def at_berlin(hour, minute=0, day=7):
    return datetime.datetime(2026, 12, day, hour, minute, tzinfo=BERLIN)


def profile(user, **fields):
    return NotificationProfile.objects.create(user=user, **fields)


def test_quiet_window_across_midnight_in_the_users_zone():
    night = NotificationProfile(quiet_hours_start=datetime.time(22), quiet_hours_end=datetime.time(7))
    assert quiet.quiet_until(night, BERLIN, at_berlin(23)) == at_berlin(7, day=8)
    assert quiet.quiet_until(night, BERLIN, at_berlin(6, 30)) == at_berlin(7)
    assert quiet.quiet_until(night, BERLIN, at_berlin(12)) is None
    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")  # 23:00 in Berlin is 07:00 in Tokyo: not quiet there
    assert quiet.quiet_until(night, tokyo, at_berlin(23)) is None


def test_non_urgent_email_waits_for_the_end_of_quiet_hours(org_a, manager_a, notify_now):
    profile(manager_a, quiet_hours_start=datetime.time(22), quiet_hours_end=datetime.time(7))
    with mock.patch.object(timezone, "now", return_value=at_berlin(23)):
        notify_now(org_a, [manager_a], "inventory:low-stock", CONTEXT)
    email = NotificationDelivery.objects.get(channel=Channel.EMAIL)
    assert email.status == "pending" and email.not_before == at_berlin(7, day=8)
    assert mail.outbox == []
    assert NotificationDelivery.objects.get(channel=Channel.IN_APP).status == "sent"  # the in-app list never waits
    assert services.send_delivery(email.pk) is None  # not before its time
    with mock.patch.object(timezone, "now", return_value=at_berlin(7, 5, day=8)):
        NotificationDelivery.objects.update(updated_at=at_berlin(23))
        assert services.requeue_stuck_deliveries() == 1  # the sweep sends it once the quiet hours are over
    assert len(mail.outbox) == 1


def test_critical_news_passes_quiet_hours(org_a, manager_a, notify_now):
    profile(manager_a, quiet_hours_start=datetime.time(0), quiet_hours_end=datetime.time(23, 59))
    notify_now(org_a, [manager_a], "sla:violation", {"title": "SLA violated", "body": "WO-1 is late."})
    assert len(mail.outbox) == 1


def test_the_daily_digest_collects_the_days_emails(org_a, manager_a, notify_now):
    profile(manager_a, daily_digest=True, digest_time=datetime.time(8), time_zone="Europe/Berlin")
    with mock.patch.object(timezone, "now", return_value=at_berlin(10)):
        notify_now(org_a, [manager_a], "inventory:low-stock", CONTEXT)
        notify_now(org_a, [manager_a], "work-order:verification-needed", {"title": "Verify WO-9", "body": "Done."})
    assert mail.outbox == []
    assert set(NotificationDelivery.objects.filter(channel=Channel.EMAIL).values_list("not_before", flat=True)) == {
        at_berlin(8, day=8)
    }
    assert services.send_due_digests() == 0  # not yet
    with mock.patch.object(timezone, "now", return_value=at_berlin(8, 1, day=8)):
        assert services.send_due_digests() == 1
        assert services.send_due_digests() == 0  # sent once
    [digest] = mail.outbox
    assert "2 notification(s)" in digest.subject and "Verify WO-9" in digest.body and "V-belt" in digest.body
    assert set(NotificationDelivery.objects.filter(channel=Channel.EMAIL).values_list("status", flat=True)) == {"sent"}


def test_quiet_hours_and_digest_through_the_preferences_api(api, org_a, technician_a):
    client = api(technician_a, org_a)
    body = {"quiet_hours_start": "22:00", "quiet_hours_end": "06:30", "daily_digest": True, "time_zone": "Asia/Tokyo"}
    response = client.put("/api/v1/notifications/preferences/", body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["quiet_hours_end"] == "06:30:00" and data["daily_digest"] is True and data["time_zone"] == "Asia/Tokyo"
    half = client.put("/api/v1/notifications/preferences/", {"quiet_hours_end": None}, format="json")
    assert half.status_code == 400 and "quiet_hours_end" in half.json()["error"]["fields"]
    bad_zone = client.put("/api/v1/notifications/preferences/", {"time_zone": "Mars/Olympus"}, format="json")
    assert bad_zone.status_code == 400
