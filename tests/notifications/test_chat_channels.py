"""Chat channels per organisation (issue 25): Slack, Teams Workflows (Adaptive Card) and generic JSON webhooks,
configured per organisation and routed per notification kind, instead of one platform-wide Slack webhook."""

import pytest

from maintenance_site.errors import InvalidInput
from maintenance_site.notifications import services
from maintenance_site.notifications.models import Channel, ChatChannel, NotificationDelivery

CONTEXT = {"title": "SLA violated on WO-42", "body": "Response time exceeded by 2 h.", "url": "https://x.test/wo/42"}
pytestmark = [pytest.mark.django_db]


def test_each_organisation_posts_to_its_own_channels(org_a, org_b, manager_a, manager_b, http_endpoint, notify_now):
    slack_a, teams_a, json_b = http_endpoint(), http_endpoint(), http_endpoint()
    services.create_chat_channel(org_a, actor=manager_a, name="ops", kind="slack", url=slack_a.url, kinds=["sla:*"])
    services.create_chat_channel(org_a, actor=manager_a, name="teams", kind="teams", url=teams_a.url, kinds=["*"])
    services.create_chat_channel(org_b, actor=manager_b, name="b", kind="webhook", url=json_b.url, kinds=["*"])

    notify_now(org_a, [manager_a], "sla:violation", CONTEXT)

    assert json_b.requests == []  # organisation B's channel never hears of A
    [slack] = slack_a.requests
    assert slack["json"]["text"].startswith("*[Org A] SLA violated on WO-42*")
    [teams] = teams_a.requests
    card = teams["json"]["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard"
    assert card["content"]["actions"][0]["url"] == CONTEXT["url"]
    assert set(NotificationDelivery.objects.filter(channel=Channel.CHAT).values_list("status", flat=True)) == {"sent"}


def test_kinds_not_routed_are_not_posted(org_a, manager_a, http_endpoint, notify_now):
    slack = http_endpoint()
    services.create_chat_channel(org_a, actor=manager_a, name="ops", kind="slack", url=slack.url, kinds=["sla:*"])
    notify_now(org_a, [manager_a], "inventory:low-stock", CONTEXT)
    assert slack.requests == []


def test_without_own_channels_the_platform_slack_webhook_is_the_default(
    org_a, manager_a, http_endpoint, notify_now, settings
):
    platform = http_endpoint()
    settings.SLACK_WEBHOOK_URL = platform.url
    notify_now(org_a, [manager_a], "sla:violation", CONTEXT)
    assert len(platform.requests) == 1


def test_own_channels_replace_the_platform_default(org_a, manager_a, http_endpoint, notify_now, settings):
    platform, own = http_endpoint(), http_endpoint()
    settings.SLACK_WEBHOOK_URL = platform.url
    services.create_chat_channel(org_a, actor=manager_a, name="ops", kind="webhook", url=own.url, kinds=["*"])
    notify_now(org_a, [manager_a], "sla:violation", CONTEXT)
    assert platform.requests == []
    assert own.requests[0]["json"]["kind"] == "sla:violation"


def test_the_url_is_stored_encrypted_and_checked(org_a, manager_a, settings):
    channel = services.create_chat_channel(
        org_a, actor=manager_a, name="ops", kind="slack", url="http://127.0.0.1:9/services/T000/B000/XXXX", kinds=["*"]
    )
    stored = ChatChannel.objects.get(pk=channel.pk)
    assert "XXXX" not in stored.url_encrypted and stored.url_hint.startswith("http://127.0.0.1/services")
    with pytest.raises(InvalidInput) as refused:
        services.create_chat_channel(org_a, actor=manager_a, name="bad", kind="slack", url="ftp://x/y", kinds=["*"])
    assert "url" in refused.value.fields
    with pytest.raises(InvalidInput) as unknown:
        services.create_chat_channel(
            org_a, actor=manager_a, name="bad", kind="slack", url="http://127.0.0.1:9/", kinds=["nothing:*"]
        )
    assert "kinds" in unknown.value.fields
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(InvalidInput):
        services.create_chat_channel(
            org_a, actor=manager_a, name="metadata", kind="webhook", url="http://169.254.169.254/", kinds=["*"]
        )
