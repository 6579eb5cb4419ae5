"""Forms of the public problem-report pages (no login): what anyone may send about an organisation's equipment."""

from django import forms
from django.core.validators import RegexValidator
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from assets.models import Asset, Location
from maintenance_site.errors import InvalidInput
from workorders import services

MAX_PHOTOS = 5
MAX_DESCRIPTION = 5000


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class PhotosField(forms.FileField):
    """Zero or more uploaded files, each checked against the service's rules (type, size) before anything is
    stored, so that a bad second photo does not leave the first one on disk."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*", "capture": "environment"}))
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data]
        files = [super(PhotosField, self).clean(item, initial) for item in files if item]
        if self.required and not files:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        if len(files) > MAX_PHOTOS:
            raise forms.ValidationError(
                gettext("Send at most %(limit)s photos.") % {"limit": MAX_PHOTOS}, code="too_many"
            )
        problems = []
        for uploaded in files:
            try:
                services.check_upload(uploaded)
            except InvalidInput as exc:
                problems.append(
                    gettext("%(file)s: %(problem)s") % {"file": uploaded.name, "problem": exc.message}
                    if len(files) > 1
                    else exc.message
                )
        if problems:
            raise forms.ValidationError(problems, code="invalid_file")
        return files


def location_paths(organization) -> list[tuple[int, str]]:
    """The organisation's locations as (id, "Site › Building › Area"), sorted by path; one query."""
    queryset = Location.objects.for_tenant(organization).values_list("pk", "name", "parent_id")
    rows = {pk: (name, parent) for pk, name, parent in queryset}

    def path(pk):
        parts, seen = [], set()
        while pk is not None and pk in rows and pk not in seen:
            seen.add(pk)
            name, pk = rows[pk]
            parts.append(name)
        return " › ".join(reversed(parts))

    return sorted(((pk, path(pk)) for pk in rows), key=lambda item: item[1].casefold())


class ProblemReportForm(forms.Form):
    """The public form. With `asset` given (a QR label) the asset is fixed and asset and location are not asked."""

    description = forms.CharField(
        label=_("What is the problem?"),
        max_length=MAX_DESCRIPTION,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("What you saw or heard, and where exactly."),
    )
    asset = forms.ModelChoiceField(
        label=_("Equipment"), queryset=Asset.objects.none(), required=False, empty_label=_("Not sure / not listed")
    )
    location = forms.TypedChoiceField(label=_("Location"), required=False, coerce=int, empty_value=None)
    contact_name = forms.CharField(
        label=_("Your name"), max_length=120, required=False, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    contact_email = forms.EmailField(
        label=_("Your e-mail"),
        max_length=254,
        required=False,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    contact_phone = forms.CharField(
        label=_("Your phone"),
        max_length=40,
        required=False,
        validators=[
            RegexValidator(
                r"^\+?[0-9 ()./-]{3,40}$", _("Use digits, spaces and + ( ) - . / only, e.g. +44 20 7946 0000.")
            )
        ],
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
    )
    photos = PhotosField(
        label=_("Photos"),
        required=False,
        help_text=format_lazy(
            _("Up to {count} photos, {size} MB each."), count=MAX_PHOTOS, size=services.ATTACHMENT_MAX_BYTES // 2**20
        ),
    )

    def __init__(self, *args, organization, asset=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fixed_asset = asset
        if asset is not None:
            del self.fields["asset"]
            del self.fields["location"]
            return
        self.fields["asset"].queryset = Asset.objects.for_tenant(organization).in_service().order_by("code")
        self.fields["location"].choices = [("", _("Not sure")), *location_paths(organization)]

    def clean_description(self):
        return self.cleaned_data["description"].strip()

    def clean_location(self):
        pk = self.cleaned_data.get("location")
        if pk is None:
            return None
        location = Location.objects.for_tenant(self.organization).filter(pk=pk).first()
        if location is None:  # gone since the form was shown
            raise forms.ValidationError(gettext("Choose a location from the list."), code="invalid_choice")
        return location

    def submit_kwargs(self) -> dict:
        """The keyword arguments of `services.submit_request` for the cleaned form."""
        data = self.cleaned_data
        return {
            "description": data["description"],
            "asset": self.fixed_asset or data.get("asset"),
            "location": data.get("location"),
            "contact_name": data["contact_name"].strip(),
            "contact_email": data["contact_email"],
            "contact_phone": data["contact_phone"].strip(),
            "files": data["photos"],
        }

    def add_service_errors(self, exc: InvalidInput) -> None:
        """Show a refusal of `submit_request` next to the field it concerns (the service calls files `file`)."""
        fields = exc.fields or {}
        placed = False
        for name in fields:
            target = "photos" if name == "file" else name
            if target in self.fields:
                self.add_error(target, exc.message)
                placed = True
        if not placed:
            self.add_error(None, exc.message)
