"""The overlap check (time × scope × status), the emergency override, and bad input refused with a reason
keyed by field."""

from datetime import timedelta

import pytest

from maintenance_site.errors import Conflict, InvalidInput
from maintenance_site.tenancy import SYSTEM
from scheduling.windows.models import MaintenanceWindow
from scheduling.windows.services import cancel_window, create_window, delete_window, end_window
from tests.scheduling.windows.support import T0, H, W, make_window, scope_kwargs

# The existing window runs 12:00-14:00 (T0 is 10:00).
START, END = T0 + 2 * H, T0 + 4 * H
M = timedelta(minutes=1)

TIMES = {
    "same": (START, END, True),
    "inside": (START + 30 * M, END - 30 * M, True),
    "around": (START - H, END + H, True),
    "over its start": (START - H, START + 30 * M, True),
    "over its end": (END - 30 * M, END + H, True),
    "touching before (ends at its start)": (START - H, START, False),
    "touching after (starts at its end)": (END, END + H, False),
    "disjoint": (END + 2 * H, END + 3 * H, False),
}


@pytest.mark.parametrize("case", list(TIMES))
def test_time_matrix_on_the_same_asset(org_a, site, case):
    existing = make_window(org_a, START, END, title="Pump overhaul", **scope_kwargs(site, "assets:pump"))
    start, end, collides = TIMES[case]
    if collides:
        with pytest.raises(Conflict) as refused:
            make_window(org_a, start, end, **scope_kwargs(site, "assets:pump"))
        assert refused.value.status_code == 409
        assert refused.value.code == "window_overlap"
        assert "Pump overhaul" in refused.value.message and f"#{existing.pk}" in refused.value.message
        assert refused.value.extra["conflicting_window"]["id"] == existing.pk
    else:
        make_window(org_a, start, end, **scope_kwargs(site, "assets:pump"))


SCOPES = [
    # (existing, new, collides)
    ("system", "assets:pc", True),
    ("assets:pc", "system", True),
    ("system", "system", True),
    ("location:plant", "assets:pump", True),  # the pump is in a sub-location of the plant
    ("assets:pump", "location:plant", True),
    ("location:hall", "location:room", True),  # a sub-location
    ("location:room", "location:hall", True),
    ("location:room", "location:office", False),  # sibling buildings' trees do not meet
    ("location:office", "assets:pump", False),
    ("assets:pump", "assets:pump,fan", True),
    ("assets:pump", "assets:fan", False),
    ("assets:pump", "assets:motor", True),  # a component of the pump
    ("assets:fan", "location:room", False),  # the fan is in the hall, not in the pump room
    ("assets:fan", "location:hall", True),
]


@pytest.mark.parametrize(("existing_scope", "new_scope", "collides"), SCOPES)
def test_scope_matrix_at_the_same_time(org_a, site, existing_scope, new_scope, collides):
    make_window(org_a, START, END, title="Existing", **scope_kwargs(site, existing_scope))
    if collides:
        with pytest.raises(Conflict, match="Existing"):
            make_window(org_a, START, END, **scope_kwargs(site, new_scope))
    else:
        assert make_window(org_a, START, END, **scope_kwargs(site, new_scope)).pk


def test_cancelled_finished_and_other_organisations_windows_are_ignored(org_a, org_b, site):
    cancelled = make_window(org_a, START, END, title="Cancelled")
    cancel_window(cancelled, reason="Vendor postponed", now=T0, actor=SYSTEM)
    make_window(org_b, START, END, title="Theirs")  # org B's system window: not org A's business
    assert make_window(org_a, START, END, title="New").pk  # system scope, same time: nothing left to collide

    ended_early = make_window(org_a, T0 - H, T0 + 2 * H, title="Ended early")  # running since 09:00
    end_window(ended_early, now=T0 + 10 * M, actor=SYSTEM)
    assert make_window(org_a, T0 + 30 * M, T0 + H, title="In its old slot", now=T0 + 10 * M).pk


def test_an_active_window_collides(org_a, site):
    running = make_window(org_a, T0 - H, T0 + H, title="Running", now=T0)  # due: started at once
    assert running.status == W.Status.ACTIVE
    with pytest.raises(Conflict, match="Running"):
        make_window(org_a, T0 + 30 * M, T0 + 2 * H, **scope_kwargs(site, "assets:pump"))


def test_emergency_with_a_reason_overrides_and_is_audited(org_a, site, manager_a, caplog):
    existing = make_window(org_a, START, END, title="Planned")
    with pytest.raises(InvalidInput) as refused:
        make_window(org_a, START, END, emergency=True, emergency_reason="  ")
    assert "emergency_reason" in refused.value.fields
    emergency = make_window(
        org_a,
        START,
        END,
        title="Hotfix",
        emergency=True,
        emergency_reason="Security patch CVE-2030-1",
        actor=manager_a,
    )
    assert emergency.overridden_conflicts == [existing.pk]
    record = emergency.history.latest()
    assert record.history_user == manager_a
    assert "Emergency override: Security patch CVE-2030-1" in record.history_change_reason
    assert f"#{existing.pk}" in record.history_change_reason
    assert "overrides windows" in caplog.text


def test_a_single_window_collides_with_a_future_occurrence_of_a_series(org_a, site, settings):
    settings.MAINTENANCE_RECURRENCE_DAYS = 14  # occurrences exist as rows two weeks ahead only
    # T0 is Monday 2030-01-07 10:00 UTC = 11:00 in Berlin; weekly on Sundays 03:00-05:00 Berlin time.
    series = make_window(
        org_a,
        T0,
        T0 + 2 * H,
        title="Weekly network",
        recurrence="FREQ=WEEKLY;BYDAY=SU;BYHOUR=3",
        maintenance_type=W.Type.NETWORK,
    )
    assert series.occurrences.count() == 2  # 13 and 20 January
    far = T0 + timedelta(weeks=8)  # Sunday 3 March 2030, 03:00 Berlin = 02:00 UTC
    sunday = far.replace(hour=2) - timedelta(days=1)
    with pytest.raises(Conflict, match="Weekly network") as refused:
        make_window(org_a, sunday - H, sunday + H)
    assert refused.value.extra["conflicting_window"]["id"] == series.pk
    make_window(org_a, sunday + 2 * H, sunday + 3 * H)  # right after the occurrence: fine


def test_a_new_series_collides_with_an_existing_window(org_a, site):
    sunday = T0 + timedelta(days=13)  # Sunday 20 January 2030, 10:00 UTC
    make_window(org_a, sunday, sunday + H, title="One-off")
    with pytest.raises(Conflict, match="One-off"):
        make_window(org_a, T0, T0 + 2 * H, recurrence="FREQ=WEEKLY;BYDAY=SU;BYHOUR=11")  # 11:00 Berlin = 10:00 UTC


# --- bad input ---------------------------------------------------------------------------------------------


def _refused(field, **kwargs):
    options = {"title": "Bad", "starts_at": START, "ends_at": END, "now": T0, **kwargs}
    with pytest.raises(InvalidInput) as refused:
        create_window(options.pop("organization"), actor=SYSTEM, **options)
    assert field in refused.value.fields, refused.value.fields
    return refused.value


def test_end_before_start(org_a):
    error = _refused("ends_at", organization=org_a, ends_at=START - H)
    assert "must be after the start" in error.message
    _refused("ends_at", organization=org_a, ends_at=START)  # zero length


@pytest.mark.parametrize("minutes", [0, -30])
def test_zero_or_negative_duration(org_a, minutes):
    error = _refused("duration_minutes", organization=org_a, ends_at=None, duration_minutes=minutes)
    assert "at least one minute" in error.message


def test_end_and_duration_together_and_neither(org_a):
    _refused("duration_minutes", organization=org_a, duration_minutes=30)
    _refused("ends_at", organization=org_a, ends_at=None)


def test_a_scope_holding_another_organisations_asset(org_a, site, foreign_asset):
    error = _refused("assets", organization=org_a, scope=W.Scope.ASSETS, assets=[site["pump"], foreign_asset])
    assert "B-PUMP" in error.message and "another organisation" in error.message


def test_a_location_of_another_organisation(org_a, org_b):
    from assets import services as asset_services

    theirs = asset_services.create_location(org_b, name="Their site")
    _refused("location", organization=org_a, scope=W.Scope.LOCATION, location=theirs)


def test_scope_and_its_target_must_match(org_a, site):
    _refused("assets", organization=org_a, scope=W.Scope.ASSETS)
    _refused("location", organization=org_a, scope=W.Scope.LOCATION)
    _refused("assets", organization=org_a, scope=W.Scope.SYSTEM, assets=[site["pump"]])
    _refused("location", organization=org_a, scope=W.Scope.ASSETS, assets=[site["pump"]], location=site["hall"])


def test_a_window_already_over_and_a_missing_title(org_a):
    _refused("ends_at", organization=org_a, starts_at=T0 - 2 * H, ends_at=T0 - H)
    _refused("title", organization=org_a, title="  ")


@pytest.mark.parametrize(
    "rule",
    ["FREQ=SOMETIMES", "BYDAY=SU", "FREQ=MINUTELY", "DTSTART:20300101T000000\nRRULE:FREQ=DAILY", "FREQ=DAILY;COUNT=0"],
)
def test_bad_recurrences(org_a, rule):
    _refused("recurrence", organization=org_a, recurrence=rule)


def test_a_recurrence_whose_occurrences_overlap_each_other(org_a):
    error = _refused("recurrence", organization=org_a, ends_at=START + 3 * H, recurrence="FREQ=HOURLY;INTERVAL=2")
    assert "overlap each other" in error.message


def test_a_started_window_cannot_be_deleted(org_a):
    running = make_window(org_a, T0 - H, T0 + H)
    with pytest.raises(Conflict, match="end it early or mark it failed"):
        delete_window(running, actor=SYSTEM)
    scheduled = make_window(org_a, START, END)
    delete_window(scheduled, actor=SYSTEM)
    assert not MaintenanceWindow.objects.filter(pk=scheduled.pk).exists()
