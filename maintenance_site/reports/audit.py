"""The audit report: every change of the period to the organisation's audited models, read from their
simple-history tables — who, when, which object, what (each field before → after), why (the change reason).

Every model with history and an `organization` is audited here, found at run time (`audited_models`), so this module
imports no app and a new audited model appears without a line of code. Filters: the acting user (id), the model
(`app_label.model`, e.g. `workorders.workorder`), the object (its id; with a model), the location subtree (the
records of models that have a location or an asset: a work order, an asset, a downtime; the others are left out
when a location is asked for). Two queries per audited model (the records of the period, each with its predecessor's
id; the predecessors), and one for the users' names, whatever the number of changes.
"""

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import OuterRef, Subquery
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from maintenance_site.errors import InvalidInput
from maintenance_site.i18n import number
from maintenance_site.reports import registry
from maintenance_site.reports.registry import Block

# Bookkeeping that changes with every save: not a change a person made.
IGNORED_FIELDS = {"updated_at", "search_vector", "version", "created_at", "organization"}
LABEL_FIELDS = ("number", "code", "sku", "username", "name", "title", "slug")
EVENTS = {"+": gettext_lazy("created"), "~": gettext_lazy("changed"), "-": gettext_lazy("deleted")}
COLUMNS = [
    gettext_lazy("When"),
    gettext_lazy("Who"),
    gettext_lazy("Model"),
    gettext_lazy("Object id"),
    gettext_lazy("Object"),
    gettext_lazy("Event"),
    gettext_lazy("Changes (before → after)"),
    gettext_lazy("Reason"),
]


def audited_models() -> list[tuple]:
    """(model, its historical model) for every model with simple-history and an organisation, by label."""
    found = []
    for model in apps.get_models():
        manager = getattr(model._meta, "simple_history_manager_attribute", None)
        if manager is None or model._meta.proxy:
            continue
        if not any(f.name == "organization" for f in model._meta.concrete_fields):
            continue
        found.append((model, getattr(model, manager).model))
    return sorted(found, key=lambda pair: pair[0]._meta.label_lower)


def model_choices() -> list[tuple[str, str]]:
    return [(model._meta.label_lower, str(model._meta.verbose_name).capitalize()) for model, _ in audited_models()]


def check_options(options: dict) -> dict:
    """The filters, checked: a 400 naming the one that is wrong."""
    unknown = set(options) - {"user", "model", "object"}
    if unknown:
        raise InvalidInput(
            _("The audit report's filters are user, model and object."),
            fields={name: [_("Unknown filter.")] for name in sorted(unknown)},
        )
    for name in ("user", "object"):
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63):
            raise InvalidInput(
                _("Give %(name)s as an id (a whole number).") % {"name": name}, fields={name: [_("A whole number.")]}
            )
    model = options.get("model") or None
    if model is not None and not isinstance(model, str):
        raise InvalidInput(_("Give model as app_label.model."), fields={"model": [_("A text.")]})
    if model is not None and model not in dict(model_choices()):
        raise InvalidInput(
            _("“%(model)s” is not an audited model; use app_label.model, e.g. workorders.workorder.")
            % {"model": model},
            fields={"model": [_("Not an audited model.")]},
        )
    if options.get("object") is not None and model is None:
        raise InvalidInput(_("Name the model of the object."), fields={"model": [_("Required with object.")]})
    return options


HISTORY_FIELDS = {"history_id", "history_date", "history_type", "history_user", "history_change_reason"}


def _tracked(model, historical) -> list:
    """The fields history keeps (a model may exclude some, e.g. secrets), less bookkeeping."""
    pk = model._meta.pk.name
    return [
        f
        for f in historical._meta.concrete_fields
        if f.name not in IGNORED_FIELDS and f.name not in HISTORY_FIELDS and f.name != pk
    ]


def _display(field, value) -> str:
    if value is None or value == "":
        return _("(none)")
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if field.is_relation:
        return f"#{value}"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "…"


def _records(model, historical, scope, options):
    """The history records of the period for this model, filtered; None when the filters exclude the model."""
    pk = model._meta.pk.attname
    records = historical.objects.filter(
        organization_id=scope.organization.pk, history_date__gte=scope.start, history_date__lt=scope.end
    )
    if options.get("user") is not None:
        records = records.filter(history_user_id=options["user"])
    if options.get("object") is not None:
        records = records.filter(**{pk: options["object"]})
    if scope.location_ids is not None:
        names = {f.name: f for f in historical._meta.fields}
        if "location" in names:
            records = records.filter(location_id__in=scope.location_ids)
        elif "asset" in names and names["asset"].is_relation:
            assets = names["asset"].related_model.objects.filter(location_id__in=scope.location_ids)
            records = records.filter(asset_id__in=assets.values("pk"))
        else:
            return None
    predecessor = historical.objects.filter(**{pk: OuterRef(pk)}, history_id__lt=OuterRef("history_id"))
    return records.annotate(previous_id=Subquery(predecessor.order_by("-history_id").values("history_id")[:1]))


def audit_rows(scope, options) -> list[list]:
    """The rows of the audit report, oldest first, in the active language, except what was stored as written: the
    objects' own values and the change reason (a person's words, or a service's note)."""
    wanted_model = options.get("model") or None
    entries = []
    for model, historical in audited_models():
        if wanted_model and model._meta.label_lower != wanted_model:
            continue
        records = _records(model, historical, scope, options)
        if records is None:
            continue
        fields = _tracked(model, historical)
        label_field = next((name for name in LABEL_FIELDS if any(f.name == name for f in fields)), None)
        columns = [f.attname for f in fields]
        base = ["history_id", "history_date", "history_type", "history_user_id", "history_change_reason"]
        pk = model._meta.pk.attname
        rows = list(records.order_by("history_id").values(*base, pk, "previous_id", *columns))
        previous = {
            row["history_id"]: row
            for row in historical.objects.filter(history_id__in=records.values("previous_id")).values(
                "history_id", *columns
            )
        }
        name = str(model._meta.verbose_name).capitalize()
        for row in rows:
            before = previous.get(row["previous_id"])
            if row["history_type"] == "~" and before is not None:
                changes = [
                    f"{f.verbose_name}: {_display(f, before[f.attname])} → {_display(f, row[f.attname])}"
                    for f in fields
                    if before[f.attname] != row[f.attname]
                ]
            elif row["history_type"] == "-":
                changes = []
            else:
                changes = [
                    f"{f.verbose_name}: {_display(f, row[f.attname])}"
                    for f in fields
                    if row[f.attname] not in (None, "")
                ]
            entries.append(
                [
                    row["history_date"],
                    row["history_user_id"],
                    name,
                    row[pk],
                    str(row[label_field]) if label_field and row[label_field] is not None else f"#{row[pk]}",
                    str(EVENTS.get(row["history_type"], row["history_type"])),
                    "; ".join(changes)
                    if changes
                    else (_("(deleted)") if row["history_type"] == "-" else _("(no field)")),
                    row["history_change_reason"] or "",
                ]
            )
    entries.sort(key=lambda entry: entry[0])
    user_ids = {entry[1] for entry in entries if entry[1] is not None}
    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username")) if user_ids else {}
    for entry in entries:
        entry[1] = names.get(entry[1], f"#{entry[1]}") if entry[1] is not None else _("(unknown)")
    return entries


@registry.section("audit", "changes", title="Changes", order=10)
def changes(scope, options):
    rows = audit_rows(scope, options)
    note = _("Every change recorded in the period, oldest first, from the history of every audited model.")
    if scope.location_ids is not None:
        note += " " + _("With a location: only the records of models that have a location or an asset.")
    title = ngettext("%(count)s change", "%(count)s changes", len(rows)) % {"count": number(len(rows))}
    return Block(title, [str(column) for column in COLUMNS], rows, note=note)
