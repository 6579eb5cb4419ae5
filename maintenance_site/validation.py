"""Shared helpers for services: validate with the model's own rules, refuse deletes that would orphan."""

import re

from django.core.exceptions import ValidationError
from django.db.models import ProtectedError, RestrictedError
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from maintenance_site.errors import Conflict, InvalidInput

# The longest reason (hold, cancel, reject, reopen, a rejected request, a paused schedule…) a person may give:
# stored in text columns, so this is a limit on what a person is asked to read, not on what the database holds.
REASON_MAX_LENGTH = 2000


def checked_reason(reason: str | None, field: str = "reason") -> str:
    """The reason stripped; longer than REASON_MAX_LENGTH is refused (every edge gets the same sentence)."""
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX_LENGTH:
        raise InvalidInput(
            _("Keep the reason under %(limit)s characters (it has %(length)s).")
            % {"limit": REASON_MAX_LENGTH, "length": len(reason)},
            fields={field: [_("At most %(limit)s characters.") % {"limit": REASON_MAX_LENGTH}]},
        )
    return reason


def assign_editable(instance, changes: dict, editable, what: str):
    """Set the fields `changes` names on `instance`; one that is not in `editable` is an InvalidInput naming it
    ("A meter has no editable field(s) …")."""
    unknown = set(changes) - set(editable)
    if unknown:
        raise InvalidInput(
            _("%(what)s has no editable field(s) %(fields)s.") % {"what": what, "fields": ", ".join(sorted(unknown))},
            fields={name: [_("Not editable.")] for name in unknown},
        )
    for name, value in changes.items():
        setattr(instance, name, value)
    return instance


def validated(instance, *, exclude=None):
    """Run the model's field validation and `clean()`; a failure is an InvalidInput keyed by field."""
    try:
        instance.full_clean(exclude=exclude, validate_unique=True, validate_constraints=True)
    except ValidationError as exc:
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        summary = "; ".join(
            (" ".join(messages) if field == "__all__" else f"{field}: {' '.join(messages)}")
            for field, messages in fields.items()
        )
        raise InvalidInput(summary, fields=fields) from None
    return instance


def delete_or_conflict(instance, what: str):
    """Delete, or explain what still refers to the row (409)."""
    try:
        instance.delete()
    except (ProtectedError, RestrictedError) as exc:
        blocking = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
        blockers = sorted({str(obj._meta.verbose_name_plural) for obj in blocking if obj is not None})
        raise Conflict(
            _("This %(what)s is still used by %(users)s; remove or reassign those first (or retire it instead).")
            % {"what": what, "users": ", ".join(blockers)},
            code="in_use",
        ) from None


def validated_rows(model, fields, rows, *, what: str = "row") -> None:
    """Validate rows bound for a bulk insert (tuples of the values of `fields`) with the model's own field rules,
    as `full_clean()` does per instance (type, choices, blank and null, max_length and the other validators), each
    distinct value of a column once. Relations are not looked up here: the bulk service checks them in sets. The
    first failure is an InvalidInput naming the row (`<index>.<field>`, counted from 0) and what was wrong."""
    for position, name in enumerate(fields):
        field = model._meta.get_field(name)
        if field.is_relation:
            continue
        first_row: dict = {}
        for index, row in enumerate(rows):
            first_row.setdefault(row[position], index)
        for value, index in first_row.items():
            try:
                field.clean(value, None)
            except ValidationError as exc:
                messages = exc.messages
                raise InvalidInput(
                    f"{capfirst(what)} {index + 1}: {name}: {' '.join(messages)}",
                    fields={f"{index}.{name}": messages},
                ) from None


def parse_duration(value) -> int:
    """“2h”, “90m”, “1h30m”, “120” (minutes) → minutes."""
    text = str(value).strip().lower()
    match = re.fullmatch(r"(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?", text) if text else None
    if text.isdigit():
        minutes = int(text)
    elif match and any(match.groups()):
        minutes = int(match.group(1) or 0) * 60 + int(match.group(2) or 0)
    else:
        raise InvalidInput(
            _("“%(value)s” is not a duration: write minutes (120) or hours and minutes (2h, 90m, 1h30m).")
            % {"value": value},
            fields={"duration": [_("Such as 2h, 90m or 120.")]},
        )
    return minutes
