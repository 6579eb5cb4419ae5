"""The only writers of notifications, their deliveries and people's notification preferences.

Other apps call `notify(organization, recipients, kind, context)` inside their own transaction. It writes
one Notification per recipient and one NotificationDelivery per channel that recipient gets, all pending;
after commit one Celery task fans out into a task per delivery, which claims its row with a conditional
UPDATE, sends, and records the outcome. Nothing is sent when the caller's transaction rolls back, and no
sending ever happens inside it. A broker outage at commit leaves the rows pending: the sweep
(`requeue_stuck_deliveries`, task `sweep_deliveries`) sends them later.
"""

import fnmatch
import json
import logging
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from maintenance_site import audit
from maintenance_site.errors import InvalidInput, PermissionDeniedError
from maintenance_site.events.services import publish
from maintenance_site.i18n import languages_for
from maintenance_site.notifications import (
    quiet,
    tasks,  # tasks call these services, and these services queue tasks
)
from maintenance_site.notifications.kinds import (
    all_kinds,
    enabled_channels,
    get_kind,
    is_registered,
    ordered_channels,
)
from maintenance_site.notifications.models import (
    Channel,
    ChatChannel,
    Notification,
    NotificationDelivery,
    NotificationPreference,
    NotificationProfile,
    WebPushSubscription,
)
from maintenance_site.notifications.senders import SENDERS as OUTSIDE_SENDERS
from maintenance_site.notifications.senders import DeliveryFailed, DeliverySkipped, send_chat, send_digest_email
from maintenance_site.notifications.webpush import send_webpush
from maintenance_site.security import encryption
from maintenance_site.security.outbound import TargetRefused, resolve_target
from maintenance_site.tenancy.actors import check_actor
from maintenance_site.tenancy.models import Membership, Organization
from maintenance_site.tenancy.roles import Role
from maintenance_site.validation import validated

SENDERS = {**OUTSIDE_SENDERS, Channel.WEBPUSH: send_webpush}

logger = logging.getLogger(__name__)

Status = NotificationDelivery.Status
CONTEXT_FIELDS = ("title", "body", "url")
TITLE_MAX_LENGTH = Notification._meta.get_field("title").max_length
BODY_MAX_LENGTH = 5000
URL_MAX_LENGTH = Notification._meta.get_field("url").max_length
# A claim older than this belongs to a worker that died mid-send; another run may take the delivery over.
CLAIM_LEASE = timedelta(minutes=5)
# A delivery still pending this long after it was written (or reset) lost its task: the sweep requeues it.
PENDING_GRACE = timedelta(minutes=2)


# --- notify ---------------------------------------------------------------------------------------------


def resolve_recipients(organization: Organization, recipients) -> list:
    """The active members of `organization` named by `recipients`: users (or user ids), roles (a tenancy
    `Role` or its value, meaning every active member with that role), or an iterable mixing them.
    Deduplicated, ordered by user id; anyone who is not an active member of the organisation is dropped."""
    user_model = get_user_model()
    if recipients is None:
        return []
    items = [recipients] if isinstance(recipients, str | int | user_model) else list(recipients)
    user_ids, roles = set(), set()
    for item in items:
        if isinstance(item, user_model):
            user_ids.add(item.pk)
        elif isinstance(item, str):
            if item not in Role.values:
                raise ValueError(f"{item!r} is not a role; recipients are users, user ids or roles ({Role.values}).")
            roles.add(str(item))
        elif isinstance(item, int) and not isinstance(item, bool):
            user_ids.add(item)
        else:
            raise TypeError(f"A recipient must be a user, a user id or a role, not {type(item).__name__}.")
    if not user_ids and not roles:
        return []
    memberships = (
        Membership.objects.active()
        .filter(organization=organization)
        .filter(Q(user_id__in=user_ids) | Q(role__in=roles))
        .select_related("user")
        .order_by("user_id")
    )
    return [membership.user for membership in memberships]  # one membership per user and organisation


def channels_for(organization: Organization, users: list, kind: str) -> dict[int, list[str]]:
    """Per user id, the channels a notification of `kind` goes through: the user's preference for the kind
    (else its default channels), always in_app, limited to the channels this deployment has configured."""
    default = get_kind(kind).default_channels
    enabled = set(enabled_channels())
    chosen = dict(
        NotificationPreference.objects.filter(
            organization=organization, kind=kind, user_id__in=[user.pk for user in users]
        ).values_list("user_id", "channels")
    )
    return {user.pk: ordered_channels({Channel.IN_APP, *chosen.get(user.pk, default)} & enabled) for user in users}


def _texts(context: dict) -> tuple[str, str]:
    """The title and body in the active language: a caller passes lazy texts (`gettext_lazy`, `format_lazy`,
    `maintenance_site.i18n.lazy_date_time`) so that each recipient reads them in their own language."""
    title = str(context.get("title") or "").strip()
    body = str(context.get("body") or "").strip()
    if len(title) > TITLE_MAX_LENGTH:
        title = title[: TITLE_MAX_LENGTH - 1] + "…"
    if len(body) > BODY_MAX_LENGTH:
        body = body[: BODY_MAX_LENGTH - 1] + "…"
    return title, body


def _parse_context(context: dict) -> tuple[str, str, str, dict]:
    if not isinstance(context, dict):
        raise TypeError("The context of a notification is a dict with at least 'title' and 'body'.")
    title, body = _texts(context)
    if not title or not body:
        raise ValueError("The context of a notification needs a non-empty 'title' and 'body'.")
    url = str(context.get("url") or "").strip()
    if len(url) > URL_MAX_LENGTH:
        raise ValueError(f"The notification's url is longer than {URL_MAX_LENGTH} characters.")
    extra = {key: value for key, value in context.items() if key not in CONTEXT_FIELDS}
    data = json.loads(json.dumps(extra, cls=DjangoJSONEncoder))
    return title, body, url, data


def notify(organization: Organization, recipients, kind: str, context: dict) -> list[Notification]:
    """Notify people of `organization` about something of `kind` ("sla:violation", "work-order:assigned"...).

    `recipients`: users, user ids, roles (`Role.MANAGER` → the organisation's active managers) or a mix;
    people who are not active members of the organisation are ignored. `context`: "title" and "body"
    (required), "url" (optional) and anything else, kept as the notification's `data`. Each notification is
    written in its recipient's language (maintenance_site.i18n: theirs, else the organisation's), never the
    actor's: pass lazy texts (`gettext_lazy`, `format_lazy`) for the title and body.

    Runs in the caller's transaction and only writes rows; the channels are used after commit.
    Returns the notifications created, one per recipient.
    """
    get_kind(kind)  # unknown kinds fail loudly
    title, body, url, data = _parse_context(context)
    with transaction.atomic():
        users = resolve_recipients(organization, recipients)
        if not users:
            return []
        channels = channels_for(organization, users, kind)
        languages = languages_for(users, organization)
        texts = {}
        for language in set(languages.values()):
            with translation.override(language):
                texts[language] = _texts(context)
        notifications = Notification.objects.bulk_create(
            [
                Notification(
                    organization=organization,
                    recipient=user,
                    kind=kind,
                    title=texts[languages[user.pk]][0] or title,
                    body=texts[languages[user.pk]][1] or body,
                    url=url,
                    data=data,
                )
                for user in users
            ]
        )
        deliveries, slack_posted = [], False
        for notification in notifications:
            for channel in channels[notification.recipient_id]:
                if channel == Channel.SLACK:
                    # The webhook posts to one shared channel: once per notify(), however many recipients
                    # chose Slack. The row hangs on the first of them.
                    if slack_posted:
                        continue
                    slack_posted = True
                deliveries.append(
                    NotificationDelivery(organization=organization, notification=notification, channel=channel)
                )
        chat_channels = routed_chat_channels(organization, kind)
        if chat_channels:
            # The organisation's own chat channels replace the platform's Slack webhook for it: once per notify().
            deliveries = [delivery for delivery in deliveries if delivery.channel != Channel.SLACK]
            deliveries += [
                NotificationDelivery(
                    organization=organization, notification=notifications[0], channel=Channel.CHAT, chat_channel=chat
                )
                for chat in chat_channels
            ]
        if not (get_kind(kind).urgent or context.get("urgent")):
            hold_for_quiet_hours_and_digest(organization, notifications, deliveries)
        NotificationDelivery.objects.bulk_create(deliveries)
        enqueue_after_commit([delivery.pk for delivery in deliveries if delivery.not_before is None])
    return notifications


HELD_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.PUSH)  # what reaches a person outside the platform


def hold_for_quiet_hours_and_digest(organization, notifications, deliveries) -> None:
    """A non-urgent notification's e-mail, SMS and push wait for the end of the recipient's quiet hours (in their
    time zone), and with a daily digest its e-mail waits for the digest. In-app and chat channels never wait."""
    recipients = {notification.pk: notification.recipient_id for notification in notifications}
    profiles = {
        profile.user_id: profile
        for profile in NotificationProfile.objects.filter(user_id__in=set(recipients.values())).exclude(
            quiet_hours_start__isnull=True, daily_digest=False
        )
    }
    if not profiles:
        return
    now = timezone.now()
    for delivery in deliveries:
        profile = profiles.get(recipients.get(delivery.notification_id))
        if profile is None or delivery.channel not in HELD_CHANNELS:
            continue
        zone = quiet.zone_of(profile, organization)
        if profile.daily_digest and delivery.channel == Channel.EMAIL:
            delivery.digest, delivery.not_before = True, quiet.next_digest(profile, zone, now)
        else:
            delivery.not_before = quiet.quiet_until(profile, zone, now)


def routed_chat_channels(organization: Organization, kind: str) -> list[ChatChannel]:
    """The organisation's active chat channels whose kinds cover `kind` (`sla:*`, `*`, or the kind itself)."""
    channels = ChatChannel.objects.filter(organization=organization, is_active=True).order_by("pk")
    return [chat for chat in channels if any(fnmatch.fnmatchcase(kind, pattern) for pattern in chat.kinds)]


def enqueue_after_commit(delivery_ids: list[int]) -> None:
    """Queue the deliveries once the current transaction commits; forgotten if it rolls back. Robust: a
    broker failure is logged and leaves them pending for the sweep, the caller never sees it."""

    def enqueue_deliveries_after_commit():  # a named function: Django logs robust failures by __qualname__
        enqueue_deliveries(delivery_ids)

    transaction.on_commit(enqueue_deliveries_after_commit, robust=True)


def enqueue_deliveries(delivery_ids: list[int]) -> None:
    """Queue the sending of these deliveries: one message, fanned out by the worker (so a broker outage
    costs the committing request one failed publish, not one per delivery)."""
    if not delivery_ids:
        return
    tasks.send_deliveries.delay(list(delivery_ids))


# --- sending (Celery tasks call these) -----------------------------------------------------------------


def _claimable(now) -> Q:
    due = Q(digest=False) & (Q(not_before__isnull=True) | Q(not_before__lte=now))
    return due & (
        Q(status__in=[Status.PENDING, Status.FAILED]) | Q(status=Status.SENDING, claimed_at__lt=now - CLAIM_LEASE)
    )


def _in_app_message(notification: Notification) -> dict:
    """The event's payload: no title, body or url, because every member of the organisation may receive
    the event (org stream, catch-up API). The recipient's client, seeing its own user id on the event,
    fetches `/api/v1/notifications/{id}`, which is a 404 for anyone else."""
    kind = get_kind(notification.kind) if is_registered(notification.kind) else None
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "kind_label": kind.label if kind else notification.kind,
        "created_at": notification.created_at,
    }


def _deliver_in_app(delivery: NotificationDelivery) -> str | None:
    """Claim and publish in one transaction: the event exists exactly once, whatever runs twice."""
    notification = delivery.notification
    with transaction.atomic():
        now = timezone.now()
        claimed = NotificationDelivery.objects.filter(
            pk=delivery.pk, status__in=[Status.PENDING, Status.FAILED]
        ).update(status=Status.SENT, attempts=F("attempts") + 1, claimed_at=now, sent_at=now, updated_at=now)
        if not claimed:
            return None
        publish(
            notification.organization,
            "notification:created",
            _in_app_message(notification),
            user=notification.recipient,
        )
    return Status.SENT


def _finish(delivery_id: int, claimed_at, **changes) -> bool:
    """Record the outcome, if this run still holds the claim."""
    return bool(
        NotificationDelivery.objects.filter(pk=delivery_id, status=Status.SENDING, claimed_at=claimed_at).update(
            updated_at=timezone.now(), **changes
        )
    )


def send_delivery(delivery_id: int) -> str | None:
    """Send one delivery if nobody has: claim it (conditional UPDATE), send outside any transaction,
    record sent / skipped / failed. Returns the new status, or None when there was nothing to do.

    Raises DeliveryFailed when the attempt failed and another is allowed (attempts below
    NOTIFICATION_MAX_ATTEMPTS and not a permanent refusal): the task retries with backoff.
    """
    delivery = (
        NotificationDelivery.objects.select_related(
            "notification__organization", "notification__recipient", "chat_channel"
        )
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        return None
    if delivery.channel == Channel.IN_APP:
        return _deliver_in_app(delivery)

    now = timezone.now()
    claimed = NotificationDelivery.objects.filter(_claimable(now), pk=delivery_id).update(
        status=Status.SENDING, claimed_at=now, attempts=F("attempts") + 1, updated_at=now
    )
    if not claimed:
        return None  # sent, skipped, or being sent by another run
    attempt = NotificationDelivery.objects.values_list("attempts", flat=True).get(pk=delivery_id)
    try:
        if delivery.channel == Channel.CHAT:
            send_chat(delivery.notification, delivery.chat_channel)
        else:
            SENDERS[delivery.channel](delivery.notification)
    except DeliverySkipped as exc:
        _finish(delivery_id, now, status=Status.SKIPPED, last_error=str(exc))
        return Status.SKIPPED
    except DeliveryFailed as exc:
        _finish(delivery_id, now, status=Status.FAILED, last_error=str(exc)[:2000])
        if exc.permanent or attempt >= settings.NOTIFICATION_MAX_ATTEMPTS:
            logger.warning("notification delivery %s (%s) failed for good: %s", delivery_id, delivery.channel, exc)
            return Status.FAILED
        logger.info("notification delivery %s (%s) attempt %s failed: %s", delivery_id, delivery.channel, attempt, exc)
        raise
    except Exception as exc:  # a bug: recorded so the row does not stay "sending", then surfaced
        _finish(delivery_id, now, status=Status.FAILED, last_error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    _finish(delivery_id, now, status=Status.SENT, sent_at=timezone.now())
    return Status.SENT


def retry_deliveries(deliveries) -> int:
    """Give failed deliveries a fresh round of attempts (the admin's action). Returns how many."""
    with transaction.atomic():
        ids = list(
            NotificationDelivery.objects.select_for_update()
            .filter(pk__in=[d.pk for d in deliveries], status=Status.FAILED)
            .values_list("pk", flat=True)
        )
        NotificationDelivery.objects.filter(pk__in=ids).update(
            status=Status.PENDING, attempts=0, claimed_at=None, updated_at=timezone.now()
        )
        enqueue_after_commit(ids)
    return len(ids)


def requeue_stuck_deliveries(limit: int = 1000) -> int:
    """The sweep: queue deliveries whose task was lost (pending too long, or claimed by a dead worker)."""
    now = timezone.now()
    due = Q(digest=False) & (Q(not_before__isnull=True) | Q(not_before__lte=now))  # held ones wait their time
    stuck = due & (
        Q(status=Status.PENDING, updated_at__lt=now - PENDING_GRACE)
        | Q(status=Status.SENDING, claimed_at__lt=now - CLAIM_LEASE)
    )
    ids = list(NotificationDelivery.objects.filter(stuck).order_by("id").values_list("pk", flat=True)[:limit])
    enqueue_deliveries(ids)
    return len(ids)


def send_due_digests(limit: int = 500) -> int:
    """The digest job: for each person with digest deliveries due, one e-mail listing them; each delivery claimed
    first (conditional UPDATE), so two runs never send a notification twice. Returns how many e-mails went."""
    now = timezone.now()
    due = NotificationDelivery.objects.filter(digest=True, status=Status.PENDING, not_before__lte=now)
    groups = sorted(set(due.values_list("organization_id", "notification__recipient_id")[:limit]))
    sent = 0
    for organization_id, recipient_id in groups:
        ids = list(
            due.filter(organization_id=organization_id, notification__recipient_id=recipient_id).values_list(
                "pk", flat=True
            )
        )
        claimed_at = timezone.now()
        NotificationDelivery.objects.filter(pk__in=ids, status=Status.PENDING).update(
            status=Status.SENDING, claimed_at=claimed_at, attempts=F("attempts") + 1, updated_at=claimed_at
        )
        mine = NotificationDelivery.objects.filter(pk__in=ids, status=Status.SENDING, claimed_at=claimed_at)
        notifications = [
            delivery.notification
            for delivery in mine.select_related("notification__organization", "notification__recipient").order_by(
                "notification__created_at"
            )
        ]
        if not notifications:
            continue
        try:
            send_digest_email(notifications)
        except (DeliveryFailed, DeliverySkipped) as exc:
            retry_at = timezone.now() + timedelta(minutes=15)
            status = Status.SKIPPED if isinstance(exc, DeliverySkipped) else Status.PENDING
            mine.update(status=status, last_error=str(exc)[:2000], not_before=retry_at, updated_at=timezone.now())
            continue
        mine.update(status=Status.SENT, sent_at=timezone.now(), updated_at=timezone.now())
        sent += 1
    return sent


# --- the in-app list -------------------------------------------------------------------------------------


def mark_read(notification: Notification) -> Notification:
    """Mark one notification read (again is harmless: the first read time stays)."""
    now = timezone.now()
    Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now, updated_at=now)
    notification.refresh_from_db(fields=["read_at", "updated_at"])
    return notification


def mark_all_read(organization: Organization, user) -> int:
    """Mark all of the user's unread notifications in the organisation read; returns how many."""
    now = timezone.now()
    return (
        Notification.objects.for_tenant(organization).for_recipient(user).unread().update(read_at=now, updated_at=now)
    )


def unread_count(organization: Organization, user) -> int:
    return Notification.objects.for_tenant(organization).for_recipient(user).unread().count()


# --- preferences --------------------------------------------------------------------------------------


def preferences_of(organization: Organization, user) -> list[dict]:
    """Per registered kind: its label, the channels the user gets, the defaults, and whether they chose."""
    chosen = dict(
        NotificationPreference.objects.filter(organization=organization, user=user).values_list("kind", "channels")
    )
    return [
        {
            "kind": kind.name,
            "label": kind.label,
            "channels": ordered_channels([Channel.IN_APP, *chosen[kind.name]])
            if kind.name in chosen
            else list(kind.default_channels),
            "default_channels": list(kind.default_channels),
            "customised": kind.name in chosen,
        }
        for kind in all_kinds()
    ]


def phone_number_of(user) -> str:
    return NotificationProfile.objects.filter(user=user).values_list("phone_number", flat=True).first() or ""


@transaction.atomic
def set_preferences(organization: Organization, user, kinds: dict[str, list[str] | None]) -> None:
    """Choose channels per kind: `{"sla:violation": ["email", "sms"], "inventory:low-stock": None}`.
    in_app is always added; None goes back to the kind's defaults. Kinds not named keep their choice."""
    unknown = sorted(kind for kind in kinds if not is_registered(kind))
    if unknown:
        raise InvalidInput(
            _("Unknown notification kind(s) %(kinds)s.") % {"kinds": ", ".join(unknown)},
            fields={"kinds": [_("Unknown: %(kinds)s") % {"kinds": ", ".join(unknown)}]},
        )
    existing = {
        preference.kind: preference
        for preference in NotificationPreference.objects.select_for_update().filter(
            organization=organization, user=user, kind__in=list(kinds)
        )
    }
    for kind, channels in kinds.items():
        preference = existing.get(kind)
        if channels is None:
            if preference is not None:
                preference.delete()
            continue
        bad = sorted(set(channels) - set(Channel.values))
        if bad:
            raise InvalidInput(
                _("Unknown channel(s) %(channels)s for %(kind)s; choose from %(choices)s.")
                % {"channels": ", ".join(bad), "kind": kind, "choices": ", ".join(Channel.values)},
                fields={
                    "kinds": [
                        _("%(kind)s: unknown channel(s) %(channels)s") % {"kind": kind, "channels": ", ".join(bad)}
                    ]
                },
            )
        wanted = ordered_channels([Channel.IN_APP, *channels])
        if preference is None:
            preference = NotificationPreference(organization=organization, user=user, kind=kind)
        elif preference.channels == wanted:
            continue
        preference.channels = wanted
        validated(preference).save()


@transaction.atomic
def set_phone_number(user, phone_number: str) -> NotificationProfile:
    """The number SMS notifications go to, in international form; empty to stop SMS."""
    profile, _created = NotificationProfile.objects.select_for_update().get_or_create(user=user)
    if profile.phone_number != phone_number:
        profile.phone_number = phone_number.strip()
        validated(profile, exclude=["user"]).save()
    return profile


# The kinds a phone that subscribes to Web Push opts in to (the issue's "new assignment, an urgent order for my
# team, SLA about to breach on my order").
WEBPUSH_KINDS = ("work-order:assigned", "work-order:urgent", "sla:warning")


# --- the organisation's chat channels ----------------------------------------------------------------------

CHAT_CHANNEL_FIELDS = ("name", "kind", "url", "kinds", "is_active")


def _check_chat_url(url: str) -> None:
    try:
        resolve_target(url)
    except TargetRefused as exc:
        raise InvalidInput(
            _("This URL cannot receive notifications: %(reason)s") % {"reason": exc}, fields={"url": [str(exc)]}
        ) from None


def _clean_kinds(kinds) -> list[str]:
    if not isinstance(kinds, list) or not kinds or not all(isinstance(item, str) for item in kinds):
        raise InvalidInput(_("Route at least one notification kind (or “*”)."), fields={"kinds": [_("At least one.")]})
    known = [kind.name for kind in all_kinds()]
    cleaned = []
    for pattern in (item.strip() for item in kinds):
        if not any(fnmatch.fnmatchcase(name, pattern) for name in known):
            message = _("“%(pattern)s” matches no notification kind; the kinds are: %(kinds)s.") % {
                "pattern": pattern[:80],
                "kinds": ", ".join(known),
            }
            raise InvalidInput(message, fields={"kinds": [message]})
        if pattern not in cleaned:
            cleaned.append(pattern)
    return cleaned


def _url_hint(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{parts.path[:12]}…"[:120]


@audit.attributed
@transaction.atomic
def subscribe_webpush(
    organization: Organization, *, actor, endpoint: str, p256dh: str, auth: str, user_agent: str = ""
) -> WebPushSubscription:
    """This phone of `actor` receives Web Push in `organization`, and the actor opts in to the `webpush`
    channel for WEBPUSH_KINDS (added to their preferences, the other channels kept). The same endpoint again
    updates its keys (the browser renewed them); an endpoint another member had is theirs no more (the
    phone changed hands)."""
    check_actor(actor)
    if not actor_is_member(organization, actor):
        raise PermissionDeniedError(_("Only a member of the organisation can receive its notifications."))
    subscription = (
        WebPushSubscription.objects.select_for_update().filter(organization=organization, endpoint=endpoint).first()
    )
    if subscription is None:
        subscription = WebPushSubscription(organization=organization, endpoint=endpoint)
    subscription.user = actor
    subscription.p256dh, subscription.auth, subscription.user_agent = p256dh, auth, (user_agent or "")[:300]
    validated(subscription, exclude=["organization", "user"]).save()
    current = {row["kind"]: row["channels"] for row in preferences_of(organization, actor)}
    set_preferences(
        organization,
        actor,
        {kind: [*current.get(kind, get_kind(kind).default_channels), Channel.WEBPUSH] for kind in WEBPUSH_KINDS},
    )
    return subscription


@audit.attributed
@transaction.atomic
def create_chat_channel(
    organization: Organization, *, actor, name: str, kind: str, url: str, kinds, is_active: bool = True
) -> ChatChannel:
    """A chat channel of the organisation; its URL is checked like a webhook target and stored encrypted."""
    _check_chat_url(url)
    channel = ChatChannel(
        organization=organization,
        name=name,
        kind=kind,
        url_encrypted=encryption.encrypt(url),
        url_hint=_url_hint(url),
        kinds=_clean_kinds(kinds),
        is_active=is_active,
    )
    validated(channel).save()
    return channel


@audit.attributed
@transaction.atomic
def unsubscribe_webpush(organization: Organization, *, actor, endpoint: str) -> int:
    """This phone of `actor` receives no more Web Push; how many subscriptions were removed (0 or 1)."""
    check_actor(actor)
    deleted, _rows = WebPushSubscription.objects.filter(
        organization=organization, user=actor, endpoint=endpoint
    ).delete()
    return deleted


def actor_is_member(organization: Organization, user) -> bool:
    return Membership.objects.filter(organization=organization, user=user, is_active=True).exists()


@audit.attributed
@transaction.atomic
def update_chat_channel(channel: ChatChannel, *, actor, **changes) -> ChatChannel:
    """Change a chat channel (a new `url` replaces the stored one)."""
    unknown = set(changes) - set(CHAT_CHANNEL_FIELDS)
    if unknown:
        raise TypeError(f"update_chat_channel() got unknown fields {sorted(unknown)}")
    channel = ChatChannel.objects.select_for_update().get(pk=channel.pk)
    url = changes.pop("url", None)
    if url:
        _check_chat_url(url)
        channel.url_encrypted, channel.url_hint = encryption.encrypt(url), _url_hint(url)
    if "kinds" in changes:
        changes["kinds"] = _clean_kinds(changes["kinds"])
    for name, value in changes.items():
        setattr(channel, name, value)
    validated(channel).save()
    return channel


@audit.attributed
@transaction.atomic
def delete_chat_channel(channel: ChatChannel, *, actor) -> None:
    """Remove a chat channel (its past deliveries go with it)."""
    ChatChannel.objects.filter(pk=channel.pk).delete()


DELIVERY_TIME_FIELDS = ("time_zone", "quiet_hours_start", "quiet_hours_end", "daily_digest", "digest_time")


@transaction.atomic
def set_delivery_times(user, **fields) -> NotificationProfile:
    """A person's quiet hours (both ends, or neither), time zone and daily digest, the same in every organisation."""
    unknown = set(fields) - set(DELIVERY_TIME_FIELDS)
    if unknown:
        raise TypeError(f"set_delivery_times() got unknown fields {sorted(unknown)}")
    profile, _created = NotificationProfile.objects.select_for_update().get_or_create(user=user)
    for name, value in fields.items():
        setattr(profile, name, value)
    if (profile.quiet_hours_start is None) != (profile.quiet_hours_end is None):
        raise InvalidInput(
            _("Give both ends of the quiet hours, or neither."),
            fields={"quiet_hours_end" if profile.quiet_hours_end is None else "quiet_hours_start": [_("Required.")]},
        )
    validated(profile, exclude=["user"]).save()
    return profile


def delivery_times_of(user) -> dict:
    profile = NotificationProfile.objects.filter(user=user).first() or NotificationProfile(user=user)
    return {name: getattr(profile, name) for name in DELIVERY_TIME_FIELDS}


__all__ = [
    "subscribe_webpush",
    "unsubscribe_webpush",
    "channels_for",
    "mark_all_read",
    "mark_read",
    "notify",
    "preferences_of",
    "requeue_stuck_deliveries",
    "resolve_recipients",
    "retry_deliveries",
    "send_delivery",
    "set_phone_number",
    "set_preferences",
    "unread_count",
]
