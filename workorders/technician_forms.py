"""Forms of the technician's view (`/t/`). They only parse input: the services decide, and their messages are
what the technician reads when something is refused. The JSON endpoints under `/t/api/` reuse them, so a
queued offline entry is checked exactly like a form post."""

import uuid

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from maintenance_site.analytics.definitions import REACTIVE_TYPES
from maintenance_site.validation import REASON_MAX_LENGTH
from workorders.models import FailureCode

CLIENT_ID_MAX = 64


def new_client_id() -> str:
    return str(uuid.uuid4())


class ClientIdField(forms.CharField):
    """The id an offline client gives an entry so that a replay applies once (also set on plain forms, so a
    double tap on a slow connection records one entry)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", CLIENT_ID_MAX)
        kwargs.setdefault("widget", forms.HiddenInput)
        super().__init__(**kwargs)


class TechnicianForm(forms.Form):
    """Labelled inputs (Django renders a <label> per field). Several forms share the order page, so each
    form's ids carry its own prefix (`note_body`, `time_minutes`); the field names stay plain."""

    id_prefix = "form"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", f"{self.id_prefix}_%s")
        super().__init__(*args, **kwargs)


class HoldForm(TechnicianForm):
    id_prefix = "hold"
    # Not required here: the service refuses an empty reason with its own sentence.
    reason = forms.CharField(
        label=_("Why are you putting it on hold?"),
        required=False,
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": _("e.g. waiting for a part")}),
    )


class CompleteForm(TechnicianForm):
    """Completion notes and, on corrective and emergency work, the failure codes: the organisation's active codes of
    each kind, for any asset or for this order's asset type (required or not: the service says)."""

    id_prefix = "complete"
    notes = forms.CharField(
        label=_("Completion notes (optional)"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    CODE_FIELDS = (
        ("problem_code", "problem", _("What was wrong?")),
        ("cause_code", "cause", _("Why did it fail?")),
        ("remedy_code", "remedy", _("What fixed it?")),
    )

    def __init__(self, *args, work_order=None, **kwargs):
        super().__init__(*args, **kwargs)
        if work_order is None or work_order.type not in REACTIVE_TYPES:
            return
        asset_type = work_order.asset.asset_type_id if work_order.asset_id else None
        codes = FailureCode.objects.filter(organization_id=work_order.organization_id, is_active=True).filter(
            Q(asset_type__isnull=True) | Q(asset_type_id=asset_type)
        )
        for name, kind, label in self.CODE_FIELDS:
            self.fields[name] = forms.ModelChoiceField(
                queryset=codes.filter(kind=kind),
                label=label,
                required=False,
                initial=getattr(work_order, f"{name}_id"),
            )
            if work_order.organization.require_failure_codes:
                # Asked for on the phone before it is sent (also offline, where the service cannot say it yet).
                self.fields[name].widget.attrs["required"] = True

    def failure_codes(self) -> dict:
        return {
            name: self.cleaned_data.get(name) for name, _kind, _label in self.CODE_FIELDS if self.cleaned_data.get(name)
        }


YES_NO = (("1", _("Yes")), ("0", _("No")))


def _flag(value: str):
    return {"1": True, "true": True, "0": False, "false": False}.get(str(value).lower())


class ChecklistResultForm(TechnicianForm):
    """One item's result; which field counts depends on the item's kind (the service checks it)."""

    id_prefix = "item"

    done = forms.CharField(required=False, widget=forms.HiddenInput)
    passed = forms.CharField(required=False, widget=forms.HiddenInput)
    number_value = forms.CharField(required=False, max_length=40, label=_("Value"))
    text_value = forms.CharField(required=False, max_length=2000, label=_("Answer"), widget=forms.Textarea)
    client_id = ClientIdField()
    occurred_at = forms.DateTimeField(required=False)  # the device's time, set by the page's script
    version = forms.CharField(required=False, max_length=40)  # the order as the phone had it (offline queue)

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        kwargs = {"client_id": data.get("client_id") or ""}
        kwargs.update(occurred_at=data.get("occurred_at"), version=data.get("version"))
        if data.get("done") not in (None, ""):
            kwargs["done"] = _flag(data["done"])
        if data.get("passed") not in (None, ""):
            kwargs["passed"] = _flag(data["passed"])
        if data.get("number_value") not in (None, ""):
            kwargs["number_value"] = data["number_value"].strip().replace(",", ".")
        if data.get("text_value") not in (None, ""):
            kwargs["text_value"] = data["text_value"]
        return kwargs


class NoteForm(TechnicianForm):
    id_prefix = "note"
    body = forms.CharField(label=_("Note"), max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))
    client_id = ClientIdField()
    occurred_at = forms.DateTimeField(required=False)


class TimeForm(TechnicianForm):
    id_prefix = "time"
    minutes = forms.IntegerField(
        label=_("Minutes worked"),
        min_value=1,
        max_value=24 * 60,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 1, "max": 1440}),
    )
    note = forms.CharField(label=_("What you did (optional)"), required=False, max_length=300)
    client_id = ClientIdField()
    occurred_at = forms.DateTimeField(required=False)


class PhotoForm(TechnicianForm):
    id_prefix = "photo"
    photo = forms.FileField(
        label=_("Take a photo"),
        widget=forms.FileInput(attrs={"accept": "image/*", "capture": "environment"}),
    )


class MeterReadingForm(TechnicianForm):
    id_prefix = "meter"
    value = forms.DecimalField(
        label=_("Reading"),
        max_digits=18,
        decimal_places=4,
        localize=True,  # "2,5" with Spanish's decimal comma; "2.5" is understood in every language
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    # When it was read (ISO 8601), set by the page's script: a queued reading keeps the moment it was entered,
    # and the meter service ignores a repeat of the same meter, moment and value.
    read_at = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)
    client_id = ClientIdField()


class OfflineStepForm(TechnicianForm):
    """A lifecycle step sent by the phone (at once, or replayed from its offline queue): its client id, when it
    happened on the device, and the hold reason or completion notes. The service checks the time's bounds."""

    id_prefix = "step"
    client_id = ClientIdField(required=True)
    occurred_at = forms.DateTimeField(required=False)
    version = forms.CharField(required=False, max_length=40)
    reason = forms.CharField(required=False, max_length=REASON_MAX_LENGTH)
    notes = forms.CharField(required=False, max_length=5000)


class PlanForm(TechnicianForm):
    """When the technician plans to start the order (local time of the organisation; empty: not planned)."""

    id_prefix = "plan"
    scheduled_start = forms.DateTimeField(
        label=_("Planned start"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )
