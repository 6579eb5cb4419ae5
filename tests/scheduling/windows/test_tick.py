"""The tick: windows start and end on time and once, late ticks catch up, missed windows fail, the mode
follows the system windows and a mismatch is reconciled; assets go into maintenance and come back;
recurring windows keep their local time across daylight-saving changes; reminders, notifications, events,
history cleanup, metrics, windows that fit a work order, and the Python API."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync

from assets.models import Asset
from maintenance_site.events.models import Event
from maintenance_site.notifications.models import Notification
from maintenance_site.tenancy import SYSTEM
from maintenance_site.tenancy.models import Organization
from scheduling import tasks
from scheduling.windows.mode import ais_in_maintenance_mode, is_in_maintenance_mode, mode_state
from scheduling.windows.models import MaintenanceMode, MaintenanceWindow, WindowAssetState
from scheduling.windows.reports import (
    aget_maintenance_schedule,
    get_maintenance_history,
    get_maintenance_schedule,
    window_metrics,
    windows_that_fit,
)
from scheduling.windows.series import occurrence_starts, parse_recurrence
from scheduling.windows.services import (
    aschedule_maintenance,
    cancel_window,
    end_window,
    fail_window,
    schedule_maintenance,
    update_window,
)
from scheduling.windows.tick import prune_history, reconcile_modes, tick
from tests.scheduling.windows.support import T0, H, W, make_window, scope_kwargs

S = W.Status


def events(org, kind):
    return list(Event.objects.filter(organization=org, type=f"maintenance:{kind}").order_by("id"))


def mode_row(org):
    return MaintenanceMode.objects.get(organization=org)


# --- on time, once ---------------------------------------------------------------------------------------


def test_a_window_starts_and_ends_on_time_and_once(org_a, manager_a):
    window = make_window(org_a, T0 + H, T0 + 2 * H, title="Upgrade")
    assert tick(now=T0)["started"] == []
    assert tick(now=T0 + H - timedelta(seconds=1))["started"] == []

    assert tick(now=T0 + H)["started"] == [window.pk]
    assert tick(now=T0 + H + timedelta(seconds=30))["started"] == []  # run again: nothing
    window.refresh_from_db()
    assert (window.status, window.actual_start) == (S.ACTIVE, T0 + H)
    assert is_in_maintenance_mode(org_a)
    assert len(events(org_a, "window-started")) == 1

    assert tick(now=T0 + 2 * H)["ended"] == [window.pk]
    assert tick(now=T0 + 2 * H)["ended"] == []
    window.refresh_from_db()
    assert (window.status, window.actual_end) == (S.COMPLETED, T0 + 2 * H)
    assert not is_in_maintenance_mode(org_a)
    assert len(events(org_a, "window-ended")) == 1
    assert [event.payload["active"] for event in events(org_a, "mode-changed")] == [True, False]
    reasons = [row.history_change_reason for row in window.history.order_by("history_date")]
    assert reasons[-2:] == ["Started", "Ended"]
    assert {row.history_user.username for row in window.history.all()[:2]} == {"system"}


def test_a_late_tick_starts_the_window_late_and_records_when(org_a, caplog):
    window = make_window(org_a, T0 + H, T0 + 3 * H)
    late = T0 + H + timedelta(minutes=20)
    assert tick(now=late)["started"] == [window.pk]
    assert "should have been active since" in caplog.text  # the reconciliation of a window that was not active
    window.refresh_from_db()
    assert window.actual_start == late
    assert "late" in window.history.latest().history_change_reason
    metrics = window_metrics(org_a, now=late)
    assert metrics["start_delay_seconds"]["maximum"] == 1200


def test_a_window_whose_end_passed_before_any_tick_is_marked_missed(org_a, caplog):
    window = make_window(org_a, T0 + H, T0 + 2 * H)
    summary = tick(now=T0 + 5 * H)
    assert summary["missed"] == [window.pk] and summary["started"] == []
    window.refresh_from_db()
    assert window.status == S.FAILED and window.actual_start is None
    assert window.status_reason.startswith("Missed")
    assert events(org_a, "window-started") == [] and len(events(org_a, "window-failed")) == 1
    assert not is_in_maintenance_mode(org_a)
    assert "was missed" in caplog.text


def test_an_active_window_past_its_end_ends_at_the_late_tick(org_a, caplog):
    window = make_window(org_a, T0 + H, T0 + 2 * H)
    tick(now=T0 + H)
    tick(now=T0 + 4 * H)
    assert "was still active 7200s after its end" in caplog.text
    window.refresh_from_db()
    assert (window.status, window.actual_end) == (S.COMPLETED, T0 + 4 * H)


def test_back_to_back_system_windows_hand_over_without_the_mode_flapping(org_a):
    first = make_window(org_a, T0 + H, T0 + 2 * H, title="First")
    second = make_window(org_a, T0 + 2 * H, T0 + 3 * H, title="Second")  # touching: allowed
    tick(now=T0 + H)
    summary = tick(now=T0 + 2 * H)
    assert summary["ended"] == [first.pk] and summary["started"] == [second.pk]
    assert [event.payload["active"] for event in events(org_a, "mode-changed")] == [True]
    assert mode_state(org_a).expected_end == T0 + 3 * H


def test_a_window_created_already_due_starts_at_once(org_a):
    window = make_window(org_a, T0 - timedelta(minutes=5), T0 + H)
    assert window.status == S.ACTIVE and window.actual_start == T0
    assert is_in_maintenance_mode(org_a)


def test_location_and_asset_windows_do_not_switch_the_mode(org_a, site):
    make_window(org_a, T0 + H, T0 + 2 * H, **scope_kwargs(site, "location:hall"))
    tick(now=T0 + H)
    assert not is_in_maintenance_mode(org_a)


def test_one_organisations_maintenance_leaves_the_others_alone(org_a, org_b):
    make_window(org_a, T0 + H, T0 + 2 * H)
    tick(now=T0 + H)
    assert is_in_maintenance_mode(org_a)
    assert not is_in_maintenance_mode(org_b)


# --- reconciliation ------------------------------------------------------------------------------------


def test_reconciliation_switches_off_a_mode_nothing_holds(org_a, caplog):
    MaintenanceMode.objects.create(organization=org_a, active=True, active_since=T0)  # e.g. a crash mid-way
    with caplog.at_level(logging.WARNING, logger="scheduling.windows"):
        summary = tick(now=T0)
    assert summary["mode_corrected"] == [org_a.pk]
    assert not is_in_maintenance_mode(org_a)
    assert "was on but no system window runs" in caplog.text
    assert [event.payload["active"] for event in events(org_a, "mode-changed")] == [False]
    assert mode_row(org_a).history.latest().history_change_reason.startswith("Reconciled")


def test_reconciliation_switches_on_the_mode_of_a_running_system_window(org_a, caplog):
    window = make_window(org_a, T0 + H, T0 + 2 * H)
    MaintenanceWindow.objects.filter(pk=window.pk).update(status=S.ACTIVE, actual_start=T0 + H)  # mode row off
    summary = tick(now=T0 + H + timedelta(minutes=1))
    assert summary["mode_corrected"] == [org_a.pk]
    assert is_in_maintenance_mode(org_a)
    assert tick(now=T0 + H + timedelta(minutes=2))["mode_corrected"] == []  # agreed now


def test_reconciliation_of_the_platform_switch(db):
    MaintenanceMode.objects.create(organization=None, active=True)
    assert reconcile_modes(T0) == [None]
    assert not is_in_maintenance_mode(None)


# --- assets ------------------------------------------------------------------------------------------------


def test_asset_windows_mark_their_assets_and_give_them_back(org_a, site):
    pump, fan, conveyor = site["pump"], site["fan"], site["conveyor"]
    Asset.objects.filter(pk=fan.pk).update(status=Asset.Status.DEGRADED)
    window = make_window(org_a, T0 + H, T0 + 2 * H, **scope_kwargs(site, "assets:pump,fan,conveyor"))
    tick(now=T0 + H)
    statuses = dict(Asset.objects.filter(pk__in=[pump.pk, fan.pk, conveyor.pk]).values_list("code", "status"))
    assert statuses == {"PMP-1": "in_maintenance", "FAN-1": "in_maintenance", "CNV-1": "down"}  # down: left alone
    assert dict(WindowAssetState.objects.filter(window=window).values_list("asset__code", "previous_status")) == {
        "PMP-1": "operational",
        "FAN-1": "degraded",
    }
    record = pump.history.latest()
    assert record.history_change_reason == f"Maintenance window #{window.pk} “Window” started"

    tick(now=T0 + 2 * H)
    statuses = dict(Asset.objects.filter(pk__in=[pump.pk, fan.pk]).values_list("code", "status"))
    assert statuses == {"PMP-1": "operational", "FAN-1": "degraded"}
    assert pump.history.latest().history_change_reason.endswith("ended")
    assert not WindowAssetState.objects.filter(window=window, restored_at__isnull=True).exists()


def test_a_location_window_marks_every_asset_below_it(org_a, site):
    make_window(org_a, T0 + H, T0 + 2 * H, **scope_kwargs(site, "location:hall"))
    tick(now=T0 + H)
    in_maintenance = set(Asset.objects.filter(status=Asset.Status.IN_MAINTENANCE).values_list("code", flat=True))
    assert in_maintenance == {"PMP-1", "MOT-1", "FAN-1"}  # not the office PC; the conveyor is down


def test_an_asset_changed_during_the_window_keeps_its_new_status(org_a, site):
    from assets import services as asset_services

    make_window(org_a, T0 + H, T0 + 2 * H, **scope_kwargs(site, "assets:pump"))
    tick(now=T0 + H)
    asset_services.mark_asset_down(Asset.objects.get(pk=site["pump"].pk), reason="Seal burst during the work")
    tick(now=T0 + 2 * H)
    assert Asset.objects.get(pk=site["pump"].pk).status == Asset.Status.DOWN


def test_overlapping_emergency_windows_give_the_asset_back_once_both_ended(org_a, site):
    first = make_window(org_a, T0 + H, T0 + 3 * H, **scope_kwargs(site, "assets:pump"))
    make_window(
        org_a, T0 + 2 * H, T0 + 4 * H, emergency=True, emergency_reason="Leak", **scope_kwargs(site, "assets:pump")
    )
    tick(now=T0 + H)
    tick(now=T0 + 2 * H)
    tick(now=T0 + 3 * H)  # the first ends; the emergency one still holds the pump
    first.refresh_from_db()
    assert first.status == S.COMPLETED
    assert Asset.objects.get(pk=site["pump"].pk).status == Asset.Status.IN_MAINTENANCE
    tick(now=T0 + 4 * H)
    assert Asset.objects.get(pk=site["pump"].pk).status == Asset.Status.OPERATIONAL


# --- ending early, failing, cancelling -------------------------------------------------------------------


def test_ending_early_failing_and_cancelling(org_a, manager_a):
    running = make_window(org_a, T0 - H, T0 + H, title="Running")
    ended = end_window(running, reason="Done sooner", actor=manager_a, now=T0 + timedelta(minutes=5))
    assert (ended.status, ended.actual_end, ended.status_reason) == (
        S.COMPLETED,
        T0 + timedelta(minutes=5),
        "Done sooner",
    )
    assert not is_in_maintenance_mode(org_a)
    failed = fail_window(ended, reason="The update was rolled back", actor=manager_a)
    assert failed.status == S.FAILED and failed.history.latest().history_user == manager_a
    scheduled = make_window(org_a, T0 + 2 * H, T0 + 3 * H, now=T0 + timedelta(minutes=5))
    from maintenance_site.errors import Conflict, InvalidInput

    with pytest.raises(Conflict):
        end_window(scheduled, actor=SYSTEM)
    with pytest.raises(InvalidInput):
        cancel_window(scheduled, reason="", actor=SYSTEM)
    cancel_window(scheduled, reason="Postponed", actor=SYSTEM)
    assert tick(now=T0 + 2 * H)["started"] == []


# --- recurring windows and daylight saving --------------------------------------------------------------


def _utc(*args):
    return datetime(*args, tzinfo=UTC)


def test_weekly_window_keeps_its_local_time_across_the_spring_change(org_a):
    # Berlin: 29 March 2026 at 02:00 CET the clocks go to 03:00 CEST. Sundays 01:00-03:00 local time.
    now = _utc(2026, 3, 16, 12)
    series = make_window(
        org_a,
        _utc(2026, 3, 22, 0),
        _utc(2026, 3, 22, 2),
        recurrence="RRULE:FREQ=WEEKLY;BYDAY=SU",
        now=now,
        title="Weekly backup",
    )
    assert series.recurrence == "FREQ=WEEKLY;BYDAY=SU" and series.status == S.SCHEDULED
    starts = list(series.occurrences.order_by("starts_at").values_list("starts_at", flat=True)[:3])
    assert starts == [_utc(2026, 3, 22, 0), _utc(2026, 3, 29, 0), _utc(2026, 4, 4, 23)]  # 01:00 CET, CET, CEST
    third = series.occurrences.get(starts_at=_utc(2026, 4, 4, 23))
    assert third.ends_at - third.starts_at == 2 * H

    tick(now=_utc(2026, 4, 4, 22, 59))
    third.refresh_from_db()
    assert third.status == S.SCHEDULED
    tick(now=_utc(2026, 4, 4, 23))
    third.refresh_from_db()
    assert third.status == S.ACTIVE
    series.refresh_from_db()
    assert series.status == S.SCHEDULED  # the head never runs itself


def test_local_times_that_do_not_exist_or_happen_twice(org_a):
    # Sundays at 02:30 Berlin time: on 29 March 2026 that time does not exist (moved forward to 03:30 CEST);
    # on 25 October 2026 it happens twice (the first, CEST, is used).
    now = _utc(2026, 3, 1)
    spring = make_window(
        org_a,
        _utc(2026, 3, 22, 1, 30),
        _utc(2026, 3, 22, 2),
        recurrence="FREQ=WEEKLY;BYDAY=SU;COUNT=3",
        now=now,
        title="Spring",
    )
    assert list(spring.occurrences.order_by("starts_at").values_list("starts_at", flat=True)) == [
        _utc(2026, 3, 22, 1, 30),  # 02:30 CET
        _utc(2026, 3, 29, 1, 30),  # "02:30" that night = 03:30 CEST
        _utc(2026, 4, 5, 0, 30),  # 02:30 CEST
    ]
    zone = org_a.zone
    rule = parse_recurrence("FREQ=WEEKLY;BYDAY=SU", _utc(2026, 10, 18, 0, 30), zone)
    starts = occurrence_starts(rule, zone, _utc(2026, 10, 17), _utc(2026, 11, 2))
    assert starts == [_utc(2026, 10, 18, 0, 30), _utc(2026, 10, 25, 0, 30), _utc(2026, 11, 1, 1, 30)]


def test_local_times_that_do_not_exist_or_happen_twice_in_new_york(org_a):
    # Sundays at 02:30 New York time: on 14 March 2027 that time does not exist (moved forward to 03:30 EDT).
    Organization.objects.filter(pk=org_a.pk).update(time_zone="America/New_York")
    org_a.refresh_from_db()
    spring = make_window(
        org_a,
        _utc(2027, 3, 7, 7, 30),
        _utc(2027, 3, 7, 8),
        recurrence="FREQ=WEEKLY;BYDAY=SU;COUNT=3",
        now=_utc(2027, 3, 1),
        title="Spring",
    )
    assert list(spring.occurrences.order_by("starts_at").values_list("starts_at", flat=True)) == [
        _utc(2027, 3, 7, 7, 30),  # 02:30 EST
        _utc(2027, 3, 14, 7, 30),  # "02:30" that night = 03:30 EDT
        _utc(2027, 3, 21, 6, 30),  # 02:30 EDT
    ]
    # Sundays at 01:30: on 7 November 2027 that time happens twice (the first, EDT, is used).
    zone = org_a.zone
    rule = parse_recurrence("FREQ=WEEKLY;BYDAY=SU", _utc(2027, 10, 31, 5, 30), zone)
    starts = occurrence_starts(rule, zone, _utc(2027, 10, 30), _utc(2027, 11, 15))
    assert starts == [_utc(2027, 10, 31, 5, 30), _utc(2027, 11, 7, 5, 30), _utc(2027, 11, 14, 6, 30)]


def test_occurrences_are_created_once_and_ahead_as_time_passes(org_a, settings):
    settings.MAINTENANCE_RECURRENCE_DAYS = 10
    series = make_window(org_a, T0 + H, T0 + 2 * H, recurrence="FREQ=DAILY", title="Daily")
    assert series.occurrences.count() == 10
    tick(now=T0)
    tick(now=T0)
    assert series.occurrences.count() == 10  # unique (series, occurrence_start), materialised once
    tick(now=T0 + timedelta(days=3))
    assert series.occurrences.count() == 13
    assert series.occurrences.filter(status=S.FAILED).count() == 3  # the days no tick ran: missed


def test_a_moved_occurrence_is_not_recreated_and_a_cancelled_series_stops(org_a):
    series = make_window(org_a, T0 + H, T0 + 2 * H, recurrence="FREQ=DAILY;COUNT=3", title="Daily")
    first = series.occurrences.order_by("starts_at").first()
    update_window(first, starts_at=T0 + 3 * H, ends_at=T0 + 4 * H, now=T0, actor=SYSTEM)
    tick(now=T0)
    assert series.occurrences.count() == 3
    cancel_window(series, reason="No longer needed", now=T0, actor=SYSTEM)
    assert set(series.occurrences.values_list("status", flat=True)) == {S.CANCELLED}


def test_changing_a_series_changes_its_future_occurrences(org_a):
    series = make_window(org_a, T0 + H, T0 + 2 * H, recurrence="FREQ=DAILY;COUNT=3", title="Daily")
    update_window(series, title="Daily check", now=T0, actor=SYSTEM)
    assert set(series.occurrences.values_list("title", flat=True)) == {"Daily check"}
    update_window(series, starts_at=T0 + 2 * H, ends_at=T0 + 3 * H, now=T0, actor=SYSTEM)
    assert list(series.occurrences.order_by("starts_at").values_list("starts_at", flat=True)) == [
        T0 + 2 * H,
        T0 + 2 * H + timedelta(days=1),
        T0 + 2 * H + timedelta(days=2),
    ]


# --- notifications, reminders ----------------------------------------------------------------------------


def test_notifications_scheduled_starting_soon_started_ended(org_a, manager_a, technician_a, settings):
    settings.MAINTENANCE_REMINDER_MINUTES = 30
    window = make_window(org_a, T0 + H, T0 + 2 * H, title="Firmware")

    def kinds():
        return list(Notification.objects.filter(recipient=technician_a).order_by("id").values_list("kind", flat=True))

    assert kinds() == ["maintenance:window-scheduled"]
    tick(now=T0 + timedelta(minutes=29))
    assert kinds().count("maintenance:window-starting-soon") == 0
    tick(now=T0 + timedelta(minutes=30))
    tick(now=T0 + timedelta(minutes=31))
    assert kinds().count("maintenance:window-starting-soon") == 1
    tick(now=T0 + H)
    tick(now=T0 + 2 * H)
    assert kinds()[-2:] == ["maintenance:window-started", "maintenance:window-ended"]
    window.refresh_from_db()
    assert window.reminder_sent_at == T0 + timedelta(minutes=30)


def test_without_notify_users_only_a_failure_is_told_and_only_to_managers(org_a, manager_a, technician_a):
    window = make_window(org_a, T0 + H, T0 + 2 * H, notify_users=False)
    tick(now=T0 + H)
    fail_window(window, reason="Disk full", now=T0 + H + timedelta(minutes=5), actor=SYSTEM)
    assert not Notification.objects.filter(recipient=technician_a).exists()
    assert list(Notification.objects.filter(recipient=manager_a).values_list("kind", flat=True)) == [
        "maintenance:window-failed"
    ]


# --- history, metrics, fitting ---------------------------------------------------------------------------


def test_history_is_pruned_to_the_newest(org_a, org_b):
    for day in range(4):
        start = T0 + timedelta(days=day)
        make_window(org_a, start, start + H, title=f"A{day}", now=start)
        tick(now=start + H)
    make_window(org_b, T0, T0 + H, now=T0)
    tick(now=T0 + H)
    assert prune_history(max_size=2) == 2
    assert [record["title"] for record in get_maintenance_history(org_a)] == ["A3", "A2"]
    assert len(get_maintenance_history(org_b)) == 1
    tasks.prune_maintenance_history()  # the task: default MAINTENANCE_MAX_HISTORY, nothing more to delete
    assert MaintenanceWindow.objects.filter(organization=org_a).count() == 2


def test_metrics(org_a):
    a = make_window(org_a, T0, T0 + H, maintenance_type=W.Type.DATABASE, now=T0)
    make_window(org_a, T0 + 2 * H, T0 + 4 * H, maintenance_type=W.Type.NETWORK, now=T0)
    end_window(a, now=T0 + timedelta(minutes=30), actor=SYSTEM)
    metrics = window_metrics(org_a, now=T0 + H)
    assert metrics["windows_scheduled"] == 1 and metrics["total"] == 2
    assert metrics["by_type"]["database"] == 1 and metrics["by_type"]["network"] == 1
    assert metrics["by_status"]["completed"] == 1
    assert metrics["duration_minutes"]["scheduled"]["average"] == 60
    assert metrics["duration_minutes"]["actual"]["average"] == 30
    assert metrics["end_delay_seconds"]["average"] == -1800 and metrics["ended_early"] == 1


def test_windows_that_fit_a_work_order(org_a, site, planner_a):
    from workorders import services as work_services

    order = work_services.create_work_order(
        org_a,
        title="Replace the seal",
        asset=site["pump"],
        estimated_minutes=90,
        needs_downtime=True,
        actor=planner_a,
    )
    short_system = make_window(org_a, T0 + H, T0 + 2 * H, title="Short system")
    pump = make_window(org_a, T0 + 3 * H, T0 + 5 * H, title="Pump", **scope_kwargs(site, "assets:pump"))
    office = make_window(org_a, T0 + 6 * H, T0 + 9 * H, title="Office", **scope_kwargs(site, "location:office"))
    plant = make_window(org_a, T0 + 10 * H, T0 + 13 * H, title="Plant", **scope_kwargs(site, "location:plant"))
    cancelled = make_window(org_a, T0 + 14 * H, T0 + 17 * H, title="Cancelled")
    cancel_window(cancelled, reason="no", now=T0, actor=SYSTEM)
    later = make_window(org_a, T0 + 20 * H, T0 + 23 * H, title="Later system")
    assert windows_that_fit(order, now=T0) == [pump, plant, later]
    assert windows_that_fit(order, count=1, now=T0) == [pump]
    assert short_system not in windows_that_fit(order, now=T0) and office.pk
    # a running window counts with the time it has left
    tick(now=T0 + 3 * H + timedelta(minutes=45))
    assert windows_that_fit(order, now=T0 + 3 * H + timedelta(minutes=45))[0] == plant


# --- the Python API ------------------------------------------------------------------------------------


def test_python_api_mirrors_the_seed(org_a):
    from django.utils import timezone

    start = timezone.now() + timedelta(hours=1)
    window_id = schedule_maintenance(org_a, "system_update", start, 30, "System update to version 2.0", actor=SYSTEM)
    schedule = get_maintenance_schedule(org_a)
    assert [(r["id"], r["maintenance_type"], r["duration"]) for r in schedule] == [(window_id, "system_update", 30)]
    assert schedule[0]["title"] == "System update to version 2.0"
    assert get_maintenance_history(org_a) == []
    assert is_in_maintenance_mode(org_a) is False
    assert async_to_sync(ais_in_maintenance_mode)(org_a) is False
    second = async_to_sync(aschedule_maintenance)(org_a, "database", start + timedelta(hours=2), 15, actor=SYSTEM)
    assert [r["id"] for r in async_to_sync(aget_maintenance_schedule)(org_a)] == [window_id, second]
    from maintenance_site.errors import InvalidInput

    with pytest.raises(InvalidInput):
        schedule_maintenance(org_a, "coffee_break", start, 15, actor=SYSTEM)


def test_a_naive_start_is_the_organisations_local_time(org_a):
    window_id = schedule_maintenance(org_a, "network", datetime(2031, 7, 1, 2, 0), 60, actor=SYSTEM)
    assert MaintenanceWindow.objects.get(pk=window_id).starts_at == _utc(2031, 7, 1, 0, 0)  # 02:00 CEST


def test_the_beat_task_runs_the_tick(org_a):
    from django.utils import timezone

    window = make_window(org_a, timezone.now() + timedelta(hours=1), timezone.now() + timedelta(hours=2), now=None)
    MaintenanceWindow.objects.filter(pk=window.pk).update(starts_at=timezone.now() - timedelta(minutes=1))
    tasks.maintenance_windows_tick.delay()
    window.refresh_from_db()
    assert window.status == S.ACTIVE


def test_the_tick_is_a_core_periodic_task(settings):
    from maintenance_site.ops.schedules import core_periodic_tasks

    settings.MAINTENANCE_CHECK_INTERVAL = 45
    tick = next(task for task in core_periodic_tasks() if task.task == "scheduling.tasks.maintenance_windows_tick")
    assert tick.every_seconds == 45


def test_people_read_a_windows_times_in_the_organisations_zone_in_the_one_format(org_a, technician_a):
    make_window(org_a, T0 + H, T0 + 2 * H)  # T0 is 10:00 UTC, 11:00 in Berlin (org A's zone) in January
    tick(now=T0 + timedelta(minutes=30))
    scheduled, soon = Notification.objects.filter(recipient=technician_a).order_by("id")
    assert "Mon 7 Jan 2030, 12:00 (Europe/Berlin) to Mon 7 Jan 2030, 13:00 (Europe/Berlin)" in scheduled.body
    assert "starts at Mon 7 Jan 2030, 12:00 (Europe/Berlin)" in soon.body
    assert "UTC" not in scheduled.body + soon.body
