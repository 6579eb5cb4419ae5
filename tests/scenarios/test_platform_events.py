"""Scenario events on the platform stream (maintenance_site/events/platform.py): published in the transaction of the
change and delivered only after it commits (nothing after a rollback or a refusal), to the superusers' group and
socket `/ws/platform/` only: never to an organisation's group, stream, Socket.IO room or webhooks."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.db import transaction

from maintenance_site.errors import Conflict
from maintenance_site.events import platform
from maintenance_site.events import services as event_services
from maintenance_site.events.models import Event, PlatformEvent
from maintenance_site.events.tasks import dispatch_platform_events, prune_events
from maintenance_site.tenancy import SYSTEM
from scenarios import presets, runner, services
from scenarios.models import ScenarioRun
from tests.events.support import connected, expect_refusal, next_event, session_cookie, socket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sent(monkeypatch):
    """Every group_send of the channel layer, and every Socket.IO emit, as (group, message)."""
    calls = []
    layer = get_channel_layer()

    async def record(group, message):
        calls.append((group, message))

    monkeypatch.setattr(layer, "group_send", record)
    monkeypatch.setattr(event_services, "emit_to_socketio", lambda message: calls.append(("socketio", message)))
    return calls


def types(calls) -> list[str]:
    return [message["event"]["type"] for _, message in calls]


def test_an_activation_is_published_after_commit_to_the_platform_group_only(synced, operator, manager_a, sent):
    with transaction.atomic():
        services.activate_scenario("health-checker", actor=operator, reason="checking")
        assert sent == []  # not before the commit
        assert PlatformEvent.objects.get().sequence is None
    assert [group for group, _ in sent] == ["platform"]
    event = sent[0][1]["event"]
    assert (event["type"], event["scope"], event["sequence"]) == ("scenario:activated", "platform", 1)
    payload = event["payload"]
    assert (payload["scenario"], payload["state"], payload["actor"], payload["reason"]) == (
        "health-checker",
        "active",
        operator.username,
        "checking",
    )
    assert "organization" not in event
    assert Event.objects.count() == 0  # the tenants' outbox never hears of it: no stream, no webhook

    services.deactivate_scenario("health-checker", actor=SYSTEM)
    assert types(sent) == ["scenario:activated", "scenario:deactivated"]
    assert sent[1][1]["event"]["payload"]["actor"] == "system"
    assert PlatformEvent.objects.filter(dispatched_at__isnull=True).count() == 0


def test_nothing_is_published_when_the_change_rolls_back_or_is_refused(synced, operator, load, sent):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.activate_scenario("health-checker", actor=operator)
        raise RuntimeError("the caller's transaction fails after the service")
    load.cpu = 99.0  # the load ceiling refuses the activation
    with pytest.raises(Conflict):
        services.activate_scenario("log-cleanup", actor=operator)
    assert PlatformEvent.objects.count() == 0 and sent == []
    assert dispatch_platform_events() == {"numbered": 0, "delivered": 0, "failed": 0}  # the sweep
    assert sent == []


def test_a_preset_and_stop_all_publish_one_event_per_scenario_changed(synced, operator, sent):
    presets.apply_preset("minimal", actor=operator)
    keys = sorted(message["event"]["payload"]["scenario"] for _, message in sent)
    assert set(types(sent)) == {"scenario:activated"} and keys == ["health-checker", "log-cleanup"]
    services.activate_scenario("health-checker", actor=operator, duration_minutes=30)  # only its timer changes
    assert types(sent)[-1] == "scenario:updated"
    sent.clear()
    services.stop_all(actor=operator)
    assert types(sent) == ["scenario:deactivated", "scenario:deactivated"]
    assert [e["sequence"] for e in (m["event"] for _, m in sent)] == [4, 5]  # one gap-free platform sequence


def test_a_run_that_starts_and_finishes_is_published(test_scenarios, sent):
    test_scenarios.add("test-job")
    test_scenarios.sync()
    run = runner.run_now(services.request_run("test-job", actor=SYSTEM))
    assert run.status == ScenarioRun.Status.SUCCEEDED
    assert types(sent) == ["scenario:run-started", "scenario:run-finished"]
    finished = sent[1][1]["event"]["payload"]
    assert (finished["run"], finished["scenario"], finished["status"], finished["summary"]) == (
        run.pk,
        "test-job",
        "succeeded",
        "test-job ran",
    )
    pending = services.request_run("test-job", actor=SYSTEM)
    services.cancel_run(pending, actor=SYSTEM)
    assert types(sent)[-1] == "scenario:run-finished" and sent[-1][1]["event"]["payload"]["status"] == "cancelled"


def test_a_failed_delivery_is_left_for_the_sweep_and_pruned_once_delivered(synced, operator, monkeypatch):
    def down(event):
        raise OSError("the channel layer is unreachable")

    monkeypatch.setattr(platform, "deliver", down)
    services.activate_scenario("health-checker", actor=operator)
    event = PlatformEvent.objects.get()
    assert (event.sequence, event.dispatched_at, event.delivery_attempts) == (1, None, 1)
    assert "unreachable" in event.last_error
    monkeypatch.undo()
    assert dispatch_platform_events()["delivered"] == 1  # the sweep (core: platform event sweep)
    PlatformEvent.objects.update(created_at=event.created_at.replace(year=2000))
    assert prune_events() == 1 and not PlatformEvent.objects.exists()


# --- the socket -------------------------------------------------------------------------------------------


def activate(key):
    services.activate_scenario(key, actor=SYSTEM)


aactivate = database_sync_to_async(activate)


def test_a_superuser_socket_gets_scenario_events_live_and_catches_up(synced, operator):
    cookie = session_cookie(operator)  # a platform administrator with no organisation at all

    async def scenario():
        ws = await connected(socket("/ws/platform/", cookie=cookie))
        await aactivate("health-checker")
        event = await next_event(ws)
        assert (event["type"], event["payload"]["scenario"], event["sequence"]) == (
            "scenario:activated",
            "health-checker",
            1,
        )
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from() == {"type": "pong"}
        await ws.send_to(text_data="not json")
        assert (await ws.receive_json_from())["code"] == "unknown_type"  # answered, still open
        assert await ws.receive_nothing(timeout=0.3)  # once, however it came (group or database)
        await ws.disconnect()

        await aactivate("log-cleanup")  # while the board was away
        again = await connected(socket("/ws/platform/?after=1", cookie=cookie))
        assert (await next_event(again))["payload"]["scenario"] == "log-cleanup"
        await again.disconnect()

    async_to_sync(scenario)()


def test_no_one_but_a_superuser_hears_platform_events(synced, operator, manager_a, settings):
    settings.EVENTS_PERMISSION_RECHECK_SECONDS = 0
    staff = get_user_model().objects.create_user("staff-only", is_staff=True)
    cookies = {user.username: session_cookie(user) for user in (manager_a, staff, operator)}

    async def scenario():
        for user in (manager_a, staff):
            await expect_refusal(socket("/ws/platform/", cookie=cookies[user.username]), 4403, "platform_only")
        await expect_refusal(socket("/ws/platform/"), 4401, "not_authenticated")
        tenant = await connected(socket(cookie=cookies[manager_a.username]))  # the organisation's own stream
        admin = await connected(socket("/ws/platform/", cookie=cookies[operator.username]))
        await aactivate("health-checker")
        assert (await next_event(admin))["type"] == "scenario:activated"
        assert await tenant.receive_nothing(timeout=0.5)
        await tenant.disconnect()

        # No longer a platform administrator: the next event closes the socket instead of reaching it.
        await database_sync_to_async(get_user_model().objects.filter(pk=operator.pk).update)(is_superuser=False)
        await aactivate("log-cleanup")
        message = await admin.receive_json_from(timeout=10)
        assert (message["type"], message["code"]) == ("error", "platform_only")
        output = await admin.receive_output(timeout=10)
        assert (output["type"], output.get("code")) == ("websocket.close", 4403)

    async_to_sync(scenario)()
