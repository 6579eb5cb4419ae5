"""Forms of the technician's view (`/t/`). They only parse input: the services decide, and their messages are
what the technician reads when something is refused. The JSON endpoints under `/t/api/` reuse them, so a
queued offline entry is checked exactly like a form post."""

import uuid

from django import forms
from django.db.models import Q

from inventory.models import Part, StockLocation
from workorders.models import REASON_MAX_LENGTH

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
        label="Why are you putting it on hold?",
        required=False,
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "e.g. waiting for a part"}),
    )


class CompleteForm(TechnicianForm):
    id_prefix = "complete"
    notes = forms.CharField(
        label="Completion notes (optional)", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


YES_NO = (("1", "Yes"), ("0", "No"))


def _flag(value: str):
    return {"1": True, "true": True, "0": False, "false": False}.get(str(value).lower())


class ChecklistResultForm(TechnicianForm):
    """One item's result; which field counts depends on the item's kind (the service checks it)."""

    id_prefix = "item"

    done = forms.CharField(required=False, widget=forms.HiddenInput)
    passed = forms.CharField(required=False, widget=forms.HiddenInput)
    number_value = forms.CharField(required=False, max_length=40, label="Value")
    text_value = forms.CharField(required=False, max_length=2000, label="Answer", widget=forms.Textarea)
    client_id = ClientIdField()

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        kwargs = {"client_id": data.get("client_id") or ""}
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
    body = forms.CharField(label="Note", max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))
    client_id = ClientIdField()


class TimeForm(TechnicianForm):
    id_prefix = "time"
    minutes = forms.IntegerField(
        label="Minutes worked",
        min_value=1,
        max_value=24 * 60,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 1, "max": 1440}),
    )
    note = forms.CharField(label="What you did (optional)", required=False, max_length=300)
    client_id = ClientIdField()


class PhotoForm(TechnicianForm):
    id_prefix = "photo"
    photo = forms.FileField(
        label="Take a photo",
        widget=forms.FileInput(attrs={"accept": "image/*", "capture": "environment"}),
    )


class MeterReadingForm(TechnicianForm):
    id_prefix = "meter"
    value = forms.DecimalField(
        label="Reading", max_digits=18, decimal_places=4, widget=forms.TextInput(attrs={"inputmode": "decimal"})
    )
    # When it was read (ISO 8601), set by the page's script: a queued reading keeps the moment it was entered,
    # and the meter service ignores a repeat of the same meter, moment and value.
    read_at = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)
    client_id = ClientIdField()


def search_parts(organization, query: str, *, limit: int = 10):
    """Active parts of the organisation whose SKU or name contains `query`, exact SKU first."""
    query = (query or "").strip()
    if not query:
        return Part.objects.none()
    return (
        Part.objects.for_tenant(organization)
        .filter(is_active=True)
        .filter(Q(sku__icontains=query) | Q(name__icontains=query))
        .order_by("sku")[:limit]
    )


class PartUseForm(TechnicianForm):
    """A part used on the order: found by SKU or name (the page's search fills `part` in; without JavaScript
    an exact SKU, or a text that matches one part only, is enough), a quantity, and where it was taken from
    (the technician's van unless they say otherwise)."""

    id_prefix = "part"

    part_query = forms.CharField(
        label="Part (name or SKU)",
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}),
    )
    part = forms.IntegerField(required=False, widget=forms.HiddenInput)
    quantity = forms.CharField(
        label="Quantity", max_length=20, initial="1", widget=forms.TextInput(attrs={"inputmode": "decimal"})
    )
    location = forms.ModelChoiceField(label="Taken from", queryset=StockLocation.objects.none(), empty_label=None)
    client_id = ClientIdField()

    def __init__(self, *args, organization, user, **kwargs):
        self.organization = organization
        locations = list(StockLocation.objects.for_tenant(organization).filter(is_active=True).order_by("kind", "name"))
        # My van first, then the rest alphabetically.
        locations.sort(key=lambda location: (location.holder_id != user.pk, location.name.lower()))
        self.van = next((location for location in locations if location.holder_id == user.pk), None)
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("client_id", new_client_id())
        if self.van is not None:
            kwargs["initial"].setdefault("location", self.van.pk)
        super().__init__(*args, **kwargs)
        field = self.fields["location"]
        field.queryset = StockLocation.objects.for_tenant(organization).filter(is_active=True)
        field.choices = [(location.pk, _location_label(location, user)) for location in locations]
        self.matches: list[Part] = []

    def clean(self):
        data = super().clean()
        part_id, query = data.get("part"), (data.get("part_query") or "").strip()
        parts = Part.objects.for_tenant(self.organization).filter(is_active=True)
        if part_id:
            data["part_obj"] = parts.filter(pk=part_id).first()
            if data["part_obj"] is None:
                self.add_error("part_query", "No such part.")
            return data
        if not query:
            self.add_error("part_query", "Type a part name or SKU.")
            return data
        exact = parts.filter(sku__iexact=query).first()
        if exact is not None:
            data["part_obj"] = exact
            return data
        self.matches = list(search_parts(self.organization, query))
        if len(self.matches) == 1:
            data["part_obj"] = self.matches[0]
        elif not self.matches:
            self.add_error("part_query", f"No part matches “{query}”: try the SKU or another word.")
        else:
            self.add_error("part_query", f"{len(self.matches)} parts match “{query}”: pick one below.")
        return data


def _location_label(location, user) -> str:
    if location.holder_id == user.pk:
        return f"{location.name} (my van)"
    return location.name
