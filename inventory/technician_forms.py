"""The technician's part-use form (`/t/`, the work-order page's "Parts" section): it only parses input; the
inventory service decides, and its message is what the technician reads when something is refused."""

from django import forms
from django.db.models import Q
from django.utils.formats import sanitize_separators
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from inventory.models import Part, StockLocation
from workorders.technician_forms import ClientIdField, TechnicianForm, new_client_id


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
        label=gettext_lazy("Part (name or SKU)"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}),
    )
    part = forms.IntegerField(required=False, widget=forms.HiddenInput)
    quantity = forms.CharField(
        label=gettext_lazy("Quantity"),
        max_length=20,
        initial="1",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    location = forms.ModelChoiceField(
        label=gettext_lazy("Taken from"), queryset=StockLocation.objects.none(), empty_label=None
    )
    client_id = ClientIdField()
    occurred_at = forms.DateTimeField(required=False)  # offline: when it was used, on the phone's clock
    version = forms.CharField(required=False, max_length=40)  # offline: the order as the phone had it

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

    def clean_quantity(self):
        """ "1,5" in Spanish (the active language's decimal comma) is 1.5; "1.5" is understood in every language."""
        return sanitize_separators((self.cleaned_data.get("quantity") or "").strip())

    def clean(self):
        data = super().clean()
        part_id, query = data.get("part"), (data.get("part_query") or "").strip()
        parts = Part.objects.for_tenant(self.organization).filter(is_active=True)
        if part_id:
            data["part_obj"] = parts.filter(pk=part_id).first()
            if data["part_obj"] is None:
                self.add_error("part_query", _("No such part."))
            return data
        if not query:
            self.add_error("part_query", _("Type a part name or SKU."))
            return data
        exact = parts.filter(sku__iexact=query).first()
        if exact is not None:
            data["part_obj"] = exact
            return data
        self.matches = list(search_parts(self.organization, query))
        if len(self.matches) == 1:
            data["part_obj"] = self.matches[0]
        elif not self.matches:
            self.add_error(
                "part_query", _("No part matches “%(query)s”: try the SKU or another word.") % {"query": query}
            )
        else:
            self.add_error(
                "part_query",
                _("%(count)s parts match “%(query)s”: pick one below.") % {"count": len(self.matches), "query": query},
            )
        return data


def _location_label(location, user) -> str:
    if location.holder_id == user.pk:
        return _("%(van)s (my van)") % {"van": location.name}
    return location.name
