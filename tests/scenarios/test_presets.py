"""Presets: the five built-in ones on this platform's scenarios, applied in one transaction (one refusal leaves
nothing half-applied); saved from the current state; exported and imported as validated JSON; and preset
windows applied at their cron time and restored at their end."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from maintenance_site.errors import Conflict, InvalidInput, NotFound
from maintenance_site.tenancy import SYSTEM
from scenarios import presets, services
from scenarios.models import Preset, PresetSchedule, Scenario, ScenarioActivity
from tests.scenarios.conftest import INTERNAL_KEYS, fresh


def active_keys():
    return set(Scenario.objects.active().values_list("key", flat=True))


def test_the_five_builtin_presets(synced):
    builtin = {p.key: presets.preset_keys(p) for p in Preset.objects.filter(builtin=True)}
    assert builtin == {
        "full": INTERNAL_KEYS,
        "security": ["security-audit", "backup-manager"],
        "performance": ["performance-monitor", "cache-optimizer", "query-analyzer"],
        "off-hours": ["database-vacuum", "log-rotation", "backup-manager"],
        "minimal": ["health-checker", "log-cleanup"],
    }


def test_applying_a_preset_makes_exactly_its_scenarios_active(synced, operator):
    services.activate_scenario("security-audit", duration_minutes=120, actor=SYSTEM)
    changes = presets.apply_preset("minimal", actor=operator, reason="quiet week")
    assert active_keys() == {"health-checker", "log-cleanup"}
    assert changes == {
        "activated": ["health-checker", "log-cleanup"],
        "extended": [],
        "deactivated": ["security-audit"],
    }
    entry = ScenarioActivity.objects.get(action="preset-apply")
    assert (entry.actor, entry.subject, entry.reason, entry.result) == (operator, "minimal", "quiet week", "ok")
    presets.apply_preset("full", actor=SYSTEM)
    assert active_keys() == set(INTERNAL_KEYS)


def test_a_scenario_already_active_keeps_its_timer(synced):
    kept = services.activate_scenario("health-checker", duration_minutes=15, actor=SYSTEM)
    presets.apply_preset("minimal", duration_minutes=600, actor=SYSTEM)
    assert fresh("health-checker").active_until == kept.active_until
    assert fresh("log-cleanup").active_until > timezone.now() + timedelta(minutes=590)


def test_one_refusal_leaves_nothing_half_applied(synced, settings):
    settings.SCENARIOS_MAX_HEAVY = 2
    services.activate_scenario("health-checker", actor=SYSTEM)
    before = active_keys()
    with pytest.raises(Conflict, match="At most 2 heavy"):
        presets.apply_preset("full", actor=SYSTEM)
    assert active_keys() == before  # not one scenario of the preset was switched on, none switched off
    assert ScenarioActivity.objects.filter(action="preset-apply", result="refused").count() == 1


def test_a_preset_respects_conflicts_atomically(test_scenarios):
    test_scenarios.add("test-a", conflicts=["test-b"])
    test_scenarios.add("test-b")
    test_scenarios.sync()
    presets.define_preset("clash", scenario_keys=["health-checker", "test-a", "test-b"], actor=SYSTEM)
    with pytest.raises(Conflict, match="test-a conflicts with test-b, also being activated"):
        presets.apply_preset("clash", actor=SYSTEM)
    assert active_keys() == set()


def test_the_load_ceiling_refuses_a_preset(synced, load):
    load.cpu = 99.0
    with pytest.raises(Conflict, match="busy"):
        presets.apply_preset("minimal", actor=SYSTEM)
    assert active_keys() == set()


def test_save_the_current_state_as_a_preset(synced, operator):
    services.activate_scenario("health-checker", actor=SYSTEM)
    services.activate_scenario("query-analyzer", actor=SYSTEM)
    preset = presets.save_preset("my-preset", name="Mine", actor=operator)
    assert preset.scenario_keys == ["health-checker", "query-analyzer"] and not preset.builtin
    assert preset.created_by == operator
    with pytest.raises(Conflict, match="already exists"):
        presets.save_preset("my-preset", actor=SYSTEM)
    with pytest.raises(Conflict, match="built-in preset"):
        presets.save_preset("minimal", replace=True, actor=SYSTEM)
    services.stop_all(actor=SYSTEM)
    presets.apply_preset("my-preset", actor=SYSTEM)
    assert active_keys() == {"health-checker", "query-analyzer"}


def test_export_then_import_round_trip(synced):
    presets.define_preset("night", scenario_keys=["log-cleanup", "backup-manager"], name="Night", actor=SYSTEM)
    exported = presets.export_preset("night")
    assert exported == {
        "format": "maintenance-preset/1",
        "key": "night",
        "name": "Night",
        "description": "",
        "scenarios": ["log-cleanup", "backup-manager"],
    }
    presets.delete_preset("night", actor=SYSTEM)
    imported = presets.import_preset(json.dumps(exported), actor=SYSTEM)
    assert (imported.key, imported.scenario_keys) == ("night", ["log-cleanup", "backup-manager"])


@pytest.mark.parametrize(
    ("document", "field", "message"),
    [
        ("{not json", "document", "Invalid JSON: Expecting property name enclosed in double quotes (line 1, column 2)"),
        ("[]", "document", "Expected a JSON object."),
        ({"scenarios": ["log-cleanup"]}, "key", "Required"),
        ({"key": "Bad Key!", "scenarios": []}, "key", "cannot name a preset"),
        ({"key": "x", "scenarios": "log-cleanup"}, "scenarios", "a list of scenario keys"),
        ({"key": "x", "scenarios": ["log-cleanup", "nope"]}, "scenarios", "No such scenario here: nope"),
        ({"key": "x", "scenarios": ["log-cleanup", "log-cleanup"]}, "scenarios", "Listed twice: log-cleanup"),
        ({"key": "x", "scenarios": [], "format": "other/9"}, "format", "Expected “maintenance-preset/1”"),
        ({"key": "x", "scenarios": [], "colour": "red"}, "document", "Unknown field(s): colour"),
        ({"key": "x", "scenarios": [], "all": True}, "all", "Only the built-in “full” preset"),
    ],
)
def test_invalid_imports_say_what_is_wrong(synced, document, field, message):
    with pytest.raises(InvalidInput) as refused:
        presets.import_preset(document, actor=SYSTEM)
    assert any(message in text for text in refused.value.fields[field]), refused.value.fields
    assert refused.value.message.startswith(
        ("The preset cannot be imported", "The preset is not valid JSON", "A preset")
    )
    assert not Preset.objects.filter(key="x").exists()


def test_builtin_presets_cannot_be_deleted_nor_scheduled_ones(synced):
    with pytest.raises(Conflict, match="built-in"):
        presets.delete_preset("full", actor=SYSTEM)
    presets.define_preset("night", scenario_keys=["log-cleanup"], actor=SYSTEM)
    presets.create_schedule("night", cron="0 1 * * *", duration="1h", actor=SYSTEM)
    with pytest.raises(Conflict, match="window schedule"):
        presets.delete_preset("night", actor=SYSTEM)
    with pytest.raises(NotFound, match="no preset “ghost”"):
        presets.apply_preset("ghost", actor=SYSTEM)


def test_full_includes_only_external_services_that_can_be_toggled(synced):
    Scenario.objects.create(
        key="remote-ok",
        name="ok",
        kind="external",
        activate_url="http://x/a",
        deactivate_url="http://x/d",
        can_toggle=True,
        last_polled_at=timezone.now(),
    )
    Scenario.objects.create(
        key="remote-down",
        name="down",
        kind="external",
        can_toggle=True,
        last_error="refused",
        last_polled_at=timezone.now(),
    )
    keys = presets.preset_keys(Preset.objects.get(key="full"))
    assert "remote-ok" in keys and "remote-down" not in keys


# --- preset windows ------------------------------------------------------------------------------------


def test_durations_and_schedules_are_validated(synced):
    assert [presets.parse_duration(value) for value in ("2h", "90m", "1h30m", "45", "2 h")] == [120, 90, 90, 45, 120]
    with pytest.raises(InvalidInput, match="not a duration"):
        presets.parse_duration("two hours")
    with pytest.raises(InvalidInput, match="cron"):
        presets.create_schedule("security", cron="every sunday", duration="2h", actor=SYSTEM)
    with pytest.raises(InvalidInput, match="time zone"):
        presets.create_schedule("security", cron="0 2 * * 0", duration="2h", time_zone="Mars/Olympus", actor=SYSTEM)
    with pytest.raises(InvalidInput, match="would overlap the next one"):
        presets.create_schedule("security", cron="0 * * * *", duration="90m", actor=SYSTEM)
    presets.create_schedule("security", cron="0 * * * *", duration="60m", actor=SYSTEM)  # back to back is fine


def test_a_time_that_happens_twice_when_clocks_go_back_counts_once():
    from scenarios.models import cron_next, cron_previous

    # Sunday 31 October 2027, Berlin: 02:00 CEST (00:00 UTC), then clocks go back and 02:00 comes again.
    upcoming = cron_next("0 2 * * 0", "Europe/Berlin", datetime(2027, 10, 30, 12, 0, tzinfo=UTC), 2)
    assert upcoming == [datetime(2027, 10, 31, 0, 0, tzinfo=UTC), datetime(2027, 11, 7, 1, 0, tzinfo=UTC)]
    latest = cron_previous("0 2 * * 0", "Europe/Berlin", datetime(2027, 10, 31, 1, 30, tzinfo=UTC))
    assert latest == datetime(2027, 10, 31, 0, 0, tzinfo=UTC)


def test_a_scheduled_preset_is_applied_at_its_start_and_the_state_restored_at_its_end(synced, operator):
    services.activate_scenario("health-checker", actor=operator)
    services.activate_scenario("log-cleanup", actor=operator, duration_minutes=24 * 60)
    log_cleanup_until = fresh("log-cleanup").active_until
    schedule = presets.create_schedule(
        "security", cron="0 2 * * 0", duration="2h", time_zone="Europe/Berlin", actor=operator
    )
    # Sunday 5 July 2026, 02:00 in Berlin is 00:00 UTC.
    start = datetime(2026, 7, 5, 0, 0, tzinfo=UTC)
    PresetSchedule.objects.filter(pk=schedule.pk).update(last_occurrence=start - timedelta(days=7))
    assert presets.tick_windows(start - timedelta(minutes=1)) == {"opened": [], "closed": []}

    assert presets.tick_windows(start + timedelta(seconds=20))["opened"] == [schedule.pk]
    assert active_keys() == {"security-audit", "backup-manager"}
    schedule.refresh_from_db()
    assert schedule.window_end == start + timedelta(hours=2)
    assert set(schedule.snapshot["active"]) == {"health-checker", "log-cleanup"}
    assert presets.tick_windows(start + timedelta(minutes=1)) == {"opened": [], "closed": []}  # idempotent

    assert presets.tick_windows(start + timedelta(hours=2, seconds=5))["closed"] == [schedule.pk]
    assert active_keys() == {"health-checker", "log-cleanup"}
    assert fresh("log-cleanup").active_until == log_cleanup_until  # its timer restored too
    schedule.refresh_from_db()
    assert not schedule.is_open and schedule.last_occurrence == start
    assert presets.tick_windows(start + timedelta(hours=2, minutes=1)) == {"opened": [], "closed": []}
    actions = list(ScenarioActivity.objects.filter(action__startswith="window").values_list("action", "result"))
    assert actions == [("window-end", "ok"), ("window-start", "ok")]


def test_with_the_calendar_off_no_window_opens_and_an_open_one_still_closes(synced, operator, settings):
    schedule = presets.create_schedule("security", cron="0 2 * * 0", duration="2h", actor=operator)
    start = datetime(2026, 7, 5, 2, 0, tzinfo=UTC)
    PresetSchedule.objects.filter(pk=schedule.pk).update(last_occurrence=start - timedelta(days=7))
    settings.ENABLE_CALENDAR = False
    assert presets.tick_windows(start + timedelta(seconds=20)) == {"opened": [], "closed": []}
    assert active_keys() == set()
    settings.ENABLE_CALENDAR = True
    assert presets.tick_windows(start + timedelta(seconds=30))["opened"] == [schedule.pk]
    settings.ENABLE_CALENDAR = False
    assert presets.tick_windows(start + timedelta(hours=2, seconds=5))["closed"] == [schedule.pk]
    assert active_keys() == set()


def test_a_window_that_cannot_be_applied_is_recorded_and_not_retried(synced, load):
    schedule = presets.create_schedule("minimal", cron="0 3 * * *", duration="1h", actor=SYSTEM)
    start = presets.next_occurrence(schedule)
    load.cpu = 99.0
    presets.tick_windows(start + timedelta(minutes=1))
    schedule.refresh_from_db()
    assert not schedule.is_open and "not applied" in schedule.last_result and "busy" in schedule.last_result
    load.cpu = 5.0
    presets.tick_windows(start + timedelta(minutes=2))
    assert active_keys() == set()  # that occurrence was handled; the next one will be tried


def test_a_window_missed_entirely_is_skipped(synced):
    schedule = presets.create_schedule("minimal", cron="0 3 * * *", duration="1h", actor=SYSTEM)
    start = presets.next_occurrence(schedule)
    presets.tick_windows(start + timedelta(hours=1, minutes=5))
    schedule.refresh_from_db()
    assert "missed" in schedule.last_result and active_keys() == set()


def test_stop_all_closes_an_open_window_without_restoring(synced):
    services.activate_scenario("health-checker", actor=SYSTEM)
    schedule = presets.create_schedule("minimal", cron="0 3 * * *", duration="1h", actor=SYSTEM)
    start = presets.next_occurrence(schedule)
    presets.tick_windows(start + timedelta(seconds=10))
    assert active_keys() == {"health-checker", "log-cleanup"}
    services.stop_all(reason="incident", actor=SYSTEM)
    schedule.refresh_from_db()
    assert not schedule.is_open and "stop-all" in schedule.last_result
    presets.tick_windows(start + timedelta(hours=2))
    assert active_keys() == set()


def test_the_scheduler_tick_drives_windows(synced):
    from scenarios.tasks import scheduler_tick

    schedule = presets.create_schedule("minimal", cron="* * * * *", duration=1, actor=SYSTEM)
    PresetSchedule.objects.filter(pk=schedule.pk).update(last_occurrence=timezone.now() - timedelta(minutes=5))
    result = scheduler_tick.delay().get()
    assert result["windows"]["opened"] == [schedule.pk]
    assert active_keys() == {"health-checker", "log-cleanup"}
