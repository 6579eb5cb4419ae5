"""Client ids: an entry that an offline phone or an integration sends with a `client_id` is applied once.

A client id belongs to one author in one organisation for one kind of record (a comment, a time entry, a stock
movement of a kind): each of those tables has a unique constraint on (organisation, author, [kind,] client id).
Sending an id again is a replay when the content is what the client sent the first time (the same fields): the
stored record comes back, marked `replayed`, and nothing is written. The same id with other content is a
Conflict naming the record that has the id — never a silent success with another record. Two submits of one
entry at the same moment store one record: the loser of the insert race finds the winner's and answers as a
replay (or a Conflict).
"""

from collections.abc import Callable
from typing import TypeVar

from django.db import IntegrityError, transaction
from django.utils.translation import gettext

from maintenance_site.errors import Conflict

Record = TypeVar("Record")


def apply_once(
    model,
    *,
    client_id: str,
    scope: dict,
    sent: dict,
    create: Callable[[], Record],
    describe: Callable[[Record], dict],
) -> Record:
    """Run `create()` unless the author's `client_id` (looked up within `scope`: organisation, author, kind) is
    already used. `sent`: the fields of the stored record that the client's entry sets, as they would be stored;
    `describe(record)`: the record as the Conflict names it ({"kind", "id", "label", …})."""
    if not client_id:
        return create()
    existing = model.objects.filter(client_id=client_id, **scope).first()
    if existing is None:
        try:
            with transaction.atomic():  # a savepoint: a lost insert race leaves nothing of this attempt
                return create()
        except IntegrityError:
            existing = model.objects.filter(client_id=client_id, **scope).first()
            if existing is None:  # another constraint: not ours to explain
                raise
    return replayed(existing, client_id=client_id, sent=sent, describe=describe)


def replayed(existing: Record, *, client_id: str, sent: dict, describe: Callable[[Record], dict]) -> Record:
    """`existing` when it holds what was sent (a replay); otherwise a Conflict naming it."""
    differing = sorted(field for field, value in sent.items() if getattr(existing, field) != value)
    if differing:
        named = describe(existing)
        raise Conflict(
            gettext(
                "The client id “%(client_id)s” is already used by your %(entry)s, which differs in %(fields)s: "
                "send this entry with a new client id."
            )
            % {
                "client_id": client_id,
                "entry": named["label"],
                "fields": ", ".join(name.removesuffix("_id").replace("_", " ") for name in differing),
            },
            code="client_id_reused",
            existing=named,
        )
    existing.replayed = True
    return existing


def was_replayed(record) -> bool:
    """Whether `apply_once` returned a record stored by an earlier submit (the API answers 200, not 201)."""
    return getattr(record, "replayed", False)
