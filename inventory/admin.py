"""The back office for stock: parts (with their stock per location and the available column), locations,
the ledger (read-only, for everyone), reservations (read-only), vendors and purchase orders.

Nothing here writes stock or purchasing rows itself: forms and actions call `inventory.services`, the same
writers as the API, with the signed-in user as the actor. Stock actions ("Receive stock…", "Adjust…",
"Transfer…", "Write off…", and a purchase order's "Receive…" and "Cancel…") are an intermediate form, then
a confirmation page, then one transaction: a refusal (not enough stock, a closed order…) is shown as a
message and nothing of the batch is written.
"""

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import models, transaction
from django.db.models import F, Q
from django.forms.models import BaseInlineFormSet
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from inventory import services
from inventory.models import (
    Part,
    PurchaseOrder,
    PurchaseOrderLine,
    Reservation,
    StockLevel,
    StockLocation,
    StockMovement,
    Vendor,
    VendorPart,
)
from inventory.resources import PartResource
from maintenance_site.errors import DomainError
from maintenance_site.tenancy.admin_base import (
    CsvImportExportMixin,
    ReadOnlyTenantAdmin,
    ReadOnlyTenantInline,
    ServiceAdmin,
    ServiceForm,
    TenantInline,
    adopt,
    request_may,
    submitted,
)
from maintenance_site.tenancy.roles import Action

ACTION_TEMPLATE = "admin/inventory/action_form.html"


# --- helpers ----------------------------------------------------------------------------------------------------


def add_domain_error(form, exc: DomainError):
    """A service's refusal as a form error: its sentence on the first field it names that the form has,
    else on the form."""
    target = next((name for name in exc.fields or {} if name in form.fields), None)
    form.add_error(target, exc.message)


def fmt(value) -> str:
    return f"{Decimal(value).normalize():f}" if value is not None else ""


class ParentAwareFormSet(BaseInlineFormSet):
    """Inline forms know their parent (`form.parent`), saved or not, for checks that need it (the part's
    unit, the order's vendor) before anything is saved."""

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        form.parent = self.instance
        return form


# --- intermediate action pages ------------------------------------------------------------------------------


class ActionForm(forms.Form):
    """A form over the selected rows: the fields declared on the class are shared; `row_fields(item)` adds
    one row of fields per item (named `<name>-<item pk>`). `perform(actor)` runs the services and returns the
    success message; `summary()` says what will happen, for the confirmation page."""

    verb = _("apply")
    item_header = _("Part")
    row_headers = ()
    row_names = ()
    required_row = None  # the row field that must be given for the row to count
    required_row_message = _("Enter a quantity for at least one row.")

    def __init__(self, *args, items, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.action_items = list(items)
        self.organization = organization
        for field in self.fields.values():
            if isinstance(field, forms.ModelChoiceField):
                field.queryset = field.queryset.filter(organization=organization)
        self.shared_names = list(self.fields)
        for item in self.action_items:
            for name, field in self.row_fields(item).items():
                self.fields[f"{name}-{item.pk}"] = field

    def row_fields(self, item) -> dict:
        return {}

    def item_label(self, item) -> str:
        return str(item)

    def shared(self):
        return [self[name] for name in self.shared_names]

    def rows(self):
        return [
            (self.item_label(item), [self[f"{name}-{item.pk}"] for name in self.row_names])
            for item in self.action_items
        ]

    def row_value(self, item, name):
        return self.cleaned_data.get(f"{name}-{item.pk}")

    def entries(self):
        """The items whose required row field was given."""
        if self.required_row is None:
            return list(self.action_items)
        return [item for item in self.action_items if self.row_value(item, self.required_row) not in (None, "")]

    def clean(self):
        cleaned = super().clean()
        if self.required_row is not None and not self.errors and not self.entries():
            raise forms.ValidationError(self.required_row_message)
        return cleaned

    def check_quantity(self, item, part, name="quantity", **kwargs):
        raw = self.row_value(item, name)
        if raw in (None, ""):
            return
        try:
            services.parse_quantity(part, raw, field=name, **kwargs)
        except DomainError as exc:
            self.add_error(f"{name}-{item.pk}", exc.message)

    def summary(self) -> list[str]:
        return []

    def perform(self, actor) -> str:
        raise NotImplementedError


def _quantity_field(**kwargs):
    return forms.CharField(required=False, max_length=40, widget=forms.TextInput(attrs={"size": 8}), **kwargs)


def _locations():
    return StockLocation.objects.filter(is_active=True).order_by("name")


def _part_label(part) -> str:
    return _("%(sku)s %(name)s (%(unit)s)") % {"sku": part.sku, "name": part.name, "unit": unit_of(part)}


def unit_of(part) -> str:
    return str(part.get_unit_display()).lower()


class ReceiveStockForm(ActionForm):
    verb = _("receive")
    row_headers = (_("Quantity"), _("Unit cost"))
    row_names = ("quantity", "unit_cost")
    required_row = "quantity"

    location = forms.ModelChoiceField(queryset=_locations(), help_text=_("Where the stock is put."))
    reason = forms.CharField(required=False, max_length=300, help_text=_("E.g. the delivery note number."))

    def row_fields(self, part):
        return {
            "quantity": _quantity_field(),
            "unit_cost": forms.DecimalField(
                required=False,
                min_value=0,
                max_digits=14,
                decimal_places=4,
                initial=part.average_cost,
                widget=forms.NumberInput(attrs={"step": "any", "style": "width: 8em"}),
            ),
        }

    def item_label(self, part):
        return _part_label(part)

    def clean(self):
        cleaned = super().clean()
        for part in self.action_items:
            self.check_quantity(part, part)
        return cleaned

    def _cost(self, part):
        cost = self.row_value(part, "unit_cost")
        return part.average_cost if cost is None else cost

    def summary(self):
        location = self.cleaned_data["location"]
        return [
            _("Receive %(quantity)s %(unit)s of %(sku)s %(name)s at %(location)s (unit cost %(cost)s)")
            % {
                "quantity": fmt(self.row_value(part, "quantity")),
                "unit": unit_of(part),
                "sku": part.sku,
                "name": part.name,
                "location": location,
                "cost": fmt(self._cost(part)),
            }
            for part in self.entries()
        ]

    def perform(self, actor):
        location, reason = self.cleaned_data["location"], self.cleaned_data.get("reason", "")
        for part in self.entries():
            services.receive_stock(
                part, location, self.row_value(part, "quantity"), self._cost(part), actor=actor, reason=reason
            )
        return _("Received %(count)s part(s) at %(location)s.") % {"count": len(self.entries()), "location": location}


class AdjustStockForm(ActionForm):
    verb = _("adjust")
    row_headers = (_("Counted / change"),)
    required_row_message = _("Enter a value for at least one row.")
    row_names = ("value",)
    required_row = "value"

    location = forms.ModelChoiceField(queryset=_locations())
    mode = forms.ChoiceField(
        choices=[("counted", _("Counted: what is really there")), ("change", _("Change: + or − a quantity"))],
        initial="counted",
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(max_length=300, help_text=_("Why the books change (cycle count, found, damaged…)."))

    def row_fields(self, part):
        return {"value": _quantity_field()}

    def item_label(self, part):
        return _part_label(part)

    def clean(self):
        cleaned = super().clean()
        counted = cleaned.get("mode") == "counted"
        for part in self.action_items:
            raw = self.row_value(part, "value")
            if raw in (None, ""):
                continue
            try:
                value = Decimal(str(raw).strip())
            except InvalidOperation:
                self.add_error(f"value-{part.pk}", _("“%(raw)s” is not a quantity.") % {"raw": raw})
                continue
            if counted and value == 0:
                continue  # counted nothing: allowed
            self.check_quantity(part, part, name="value", allow_negative=not counted)
        return cleaned

    def _level(self, part):
        level = StockLevel.objects.filter(part=part, location=self.cleaned_data["location"]).first()
        return level.on_hand if level else Decimal("0")

    def summary(self):
        location, counted = self.cleaned_data["location"], self.cleaned_data["mode"] == "counted"
        lines = []
        for part in self.entries():
            books, value = self._level(part), Decimal(str(self.row_value(part, "value")).strip())
            after = value if counted else books + value
            lines.append(
                _("%(sku)s %(name)s at %(location)s: %(books)s on the books → %(after)s (%(change)s)")
                % {
                    "sku": part.sku,
                    "name": part.name,
                    "location": location,
                    "books": fmt(books),
                    "after": fmt(after),
                    "change": f"{'+' if after >= books else ''}{fmt(after - books)}",
                }
            )
        return lines

    def perform(self, actor):
        location, reason = self.cleaned_data["location"], self.cleaned_data["reason"]
        mode = self.cleaned_data["mode"]
        changed = 0
        for part in self.entries():
            movement = services.adjust_stock(
                part, location, reason=reason, actor=actor, **{mode: str(self.row_value(part, "value")).strip()}
            )
            changed += movement is not None
        if changed == len(self.entries()):
            return _("Adjusted %(count)s part(s) at %(location)s.") % {"count": changed, "location": location}
        return _("Adjusted %(count)s part(s) at %(location)s; %(matched)s matched the books.") % {
            "count": changed,
            "location": location,
            "matched": len(self.entries()) - changed,
        }


class TransferStockForm(ActionForm):
    verb = _("transfer")
    row_headers = (_("Quantity"),)
    row_names = ("quantity",)
    required_row = "quantity"

    source = forms.ModelChoiceField(queryset=_locations())
    destination = forms.ModelChoiceField(queryset=_locations())
    reason = forms.CharField(required=False, max_length=300)

    def row_fields(self, part):
        return {"quantity": _quantity_field()}

    def item_label(self, part):
        return _part_label(part)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("source") and cleaned.get("source") == cleaned.get("destination"):
            self.add_error("destination", _("Choose another location than the source."))
        for part in self.action_items:
            self.check_quantity(part, part)
        return cleaned

    def summary(self):
        source, destination = self.cleaned_data["source"], self.cleaned_data["destination"]
        return [
            _("Move %(quantity)s %(unit)s of %(sku)s %(name)s from %(source)s to %(destination)s")
            % {
                "quantity": fmt(self.row_value(part, "quantity")),
                "unit": unit_of(part),
                "sku": part.sku,
                "name": part.name,
                "source": source,
                "destination": destination,
            }
            for part in self.entries()
        ]

    def perform(self, actor):
        source, destination = self.cleaned_data["source"], self.cleaned_data["destination"]
        for part in self.entries():
            services.transfer_stock(
                part,
                source,
                destination,
                self.row_value(part, "quantity"),
                actor=actor,
                reason=self.cleaned_data.get("reason", ""),
            )
        return _("Transferred %(count)s part(s) from %(source)s to %(destination)s.") % {
            "count": len(self.entries()),
            "source": source,
            "destination": destination,
        }


class WriteOffForm(ActionForm):
    verb = _("write off")
    row_headers = (_("Quantity"),)
    row_names = ("quantity",)
    required_row = "quantity"

    location = forms.ModelChoiceField(queryset=_locations())
    reason = forms.CharField(max_length=300, help_text=_("Damaged, expired, lost…"))

    def row_fields(self, part):
        return {"quantity": _quantity_field()}

    def item_label(self, part):
        return _part_label(part)

    def clean(self):
        cleaned = super().clean()
        for part in self.action_items:
            self.check_quantity(part, part)
        return cleaned

    def summary(self):
        location = self.cleaned_data["location"]
        return [
            _("Write off %(quantity)s %(unit)s of %(sku)s %(name)s at %(location)s (%(reason)s)")
            % {
                "quantity": fmt(self.row_value(part, "quantity")),
                "unit": unit_of(part),
                "sku": part.sku,
                "name": part.name,
                "location": location,
                "reason": self.cleaned_data["reason"],
            }
            for part in self.entries()
        ]

    def perform(self, actor):
        location = self.cleaned_data["location"]
        for part in self.entries():
            services.write_off(
                part, location, self.row_value(part, "quantity"), reason=self.cleaned_data["reason"], actor=actor
            )
        return _("Wrote off %(count)s part(s) at %(location)s.") % {"count": len(self.entries()), "location": location}


class ReceivePurchaseOrderForm(ActionForm):
    verb = _("receive")
    item_header = _("Line")
    row_headers = (_("Received now"),)
    row_names = ("quantity",)
    required_row = "quantity"

    location = forms.ModelChoiceField(queryset=_locations(), help_text=_("Where the delivery is put."))

    def __init__(self, *args, order, **kwargs):
        self.order = order
        super().__init__(*args, **kwargs)

    def row_fields(self, line):
        return {"quantity": _quantity_field(initial=fmt(line.outstanding))}

    def item_label(self, line):
        return _("%(sku)s %(name)s: %(received)s of %(ordered)s received, %(outstanding)s outstanding") % {
            "sku": line.part.sku,
            "name": line.part.name,
            "received": fmt(line.received_quantity),
            "ordered": fmt(line.quantity),
            "outstanding": fmt(line.outstanding),
        }

    def clean(self):
        cleaned = super().clean()
        for line in self.action_items:
            self.check_quantity(line, line.part)
        return cleaned

    def summary(self):
        location = self.cleaned_data["location"]
        return [
            _("%(number)s: receive %(quantity)s × %(sku)s at %(location)s (unit cost %(cost)s)")
            % {
                "number": self.order.number,
                "quantity": fmt(self.row_value(line, "quantity")),
                "sku": line.part.sku,
                "location": location,
                "cost": fmt(line.unit_price),
            }
            for line in self.entries()
        ]

    def perform(self, actor):
        quantities = {line.pk: self.row_value(line, "quantity") for line in self.entries()}
        order = services.receive_purchase_order(
            self.order, location=self.cleaned_data["location"], quantities=quantities, actor=actor
        )
        return _("%(number)s: received (%(status)s).") % {
            "number": order.number,
            "status": str(order.get_status_display()).lower(),
        }


class CancelPurchaseOrdersForm(ActionForm):
    verb = _("cancel the orders")
    item_header = _("Purchase order")
    reason = forms.CharField(max_length=500, help_text=_("Why the orders are cancelled (the vendor sees nothing)."))

    def summary(self):
        return [
            _("Cancel %(number)s (%(vendor)s, %(status)s)")
            % {"number": order.number, "vendor": order.vendor, "status": str(order.get_status_display()).lower()}
            for order in self.action_items
        ]

    def perform(self, actor):
        for order in self.action_items:
            services.cancel_purchase_order(order, reason=self.cleaned_data["reason"], actor=actor)
        return _("Cancelled %(numbers)s.") % {"numbers": ", ".join(order.number for order in self.action_items)}


def run_action_form(modeladmin, request, form_class, items, *, title, **form_kwargs):
    """Form → confirmation → one transaction. Returns a response to render, or None when done (the admin
    then goes back to the changelist, where the message is shown)."""
    items = list(items)
    organizations = {item.organization_id for item in items}
    if len(organizations) != 1:
        modeladmin.message_user(request, _("Select rows of one organisation at a time."), messages.ERROR)
        return None
    organization = items[0].organization
    step = request.POST.get("step", "")
    bound = step in ("review", "confirm", "edit")
    form = form_class(request.POST if bound else None, items=items, organization=organization, **form_kwargs)
    confirming = False
    if step in ("review", "confirm"):
        if form.is_valid():
            if step == "confirm":
                try:
                    with transaction.atomic():
                        done = form.perform(request.user)
                except DomainError as exc:
                    modeladmin.message_user(
                        request, _("Nothing was changed: %(reason)s") % {"reason": exc.message}, messages.ERROR
                    )
                else:
                    modeladmin.message_user(request, done, messages.SUCCESS)
                    return None
            else:
                confirming = True
        else:
            modeladmin.message_user(request, _("Please correct the errors below."), messages.ERROR)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": modeladmin.model._meta,
        "form": form,
        "confirming": confirming,
        "action_name": request.POST.get("action", ""),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, ACTION_TEMPLATE, context)


# --- parts --------------------------------------------------------------------------------------------------------


class LowStockFilter(admin.SimpleListFilter):
    title = _("stock")
    parameter_name = "stock"

    def lookups(self, request, model_admin):
        return [("low", _("Low: at or below the reorder point")), ("ok", _("Above the reorder point"))]

    def queryset(self, request, queryset):
        low = Q(available__lte=F("reorder_point"))
        if self.value() == "low":
            return queryset.filter(low)
        if self.value() == "ok":
            return queryset.exclude(low)
        return queryset


class PartForm(ServiceForm):
    def clean(self):
        cleaned = super().clean()
        unit = cleaned.get("unit")
        # At clean() time the instance still holds the stored values.
        if self.instance.pk and unit and unit != self.instance.unit and self.instance.movements.exists():
            self.add_error(
                "unit",
                _("%(sku)s already has stock movements: its unit can no longer change.") % {"sku": self.instance.sku},
            )
        return cleaned


class StockLevelForm(forms.ModelForm):
    parent = None  # the part (set by ParentAwareFormSet)

    class Meta:
        model = StockLevel
        fields = ["location", "min_quantity", "max_quantity"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["location"].disabled = True  # an existing row's location is what it is

    def clean(self):
        cleaned = super().clean()
        part = self.parent
        if part is not None and not self.errors:
            try:
                services.check_stock_limits(part, cleaned.get("min_quantity"), cleaned.get("max_quantity"))
            except DomainError as exc:
                add_domain_error(self, exc)
        return cleaned


class StockLevelInline(TenantInline):
    """Stock of the part per location: on hand and reserved come from the ledger (read-only); the minimum
    and maximum kept there are set through the service."""

    model = StockLevel
    form = StockLevelForm
    formset = ParentAwareFormSet
    fields = ["location", "on_hand", "reserved", "available", "min_quantity", "max_quantity"]
    readonly_fields = ["on_hand", "reserved", "available"]
    write_action = Action.ADJUST_STOCK
    can_delete = False
    verbose_name = _("stock at a location")
    verbose_name_plural = _("stock per location")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("location").order_by("location__name")

    @admin.display(description=_("available"))
    def available(self, level):
        return fmt(level.available) if level.pk else "–"


class VendorOfferInline(ReadOnlyTenantInline):
    """Who sells the part (read-only here: edit offers on the vendor's page)."""

    model = VendorPart
    fk_name = "part"
    fields = ["vendor", "vendor_sku", "price", "lead_time_days"]
    verbose_name_plural = _("vendors (edit on the vendor's page)")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("vendor")


@admin.register(Part)
class PartAdmin(CsvImportExportMixin, ServiceAdmin):
    write_action = Action.ADJUST_STOCK
    form = PartForm
    list_display = [
        "sku",
        "name",
        "category",
        "unit",
        "on_hand_display",
        "reserved_display",
        "available_display",
        "reorder_point",
        "preferred_vendor",
        "is_active",
    ]
    list_filter = [LowStockFilter, "is_active", "unit", "category", "preferred_vendor"]
    list_select_related = ["preferred_vendor"]
    search_fields = ["sku", "name", "manufacturer_part_number", "manufacturer"]
    readonly_fields = ["average_cost"]
    filter_horizontal = ["compatible_asset_types"]
    show_full_result_count = False
    inlines = [StockLevelInline, VendorOfferInline]
    actions = ["receive_stock", "adjust_stock", "transfer_stock", "write_off"]
    fieldsets = [
        (None, {"fields": ["sku", "name", "description", "category", "unit", "is_active"]}),
        (
            _("Supply"),
            {
                "fields": [
                    "manufacturer",
                    "manufacturer_part_number",
                    "preferred_vendor",
                    "average_cost",
                    "reorder_point",
                    "reorder_quantity",
                    "lead_time_days",
                    "compatible_asset_types",
                ]
            },
        ),
    ]

    # CSV import / export (django-import-export, once "import_export" is in INSTALLED_APPS).
    resource_classes = [PartResource]
    import_export_change_list_template = "admin/inventory/part/change_list.html"

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser and obj is None:
            fieldsets = [(None, {"fields": ["organization", *fieldsets[0][1]["fields"]]}), *fieldsets[1:]]
        return fieldsets

    def get_queryset(self, request):
        return services.parts_with_stock(super().get_queryset(request))

    @admin.display(description=_("on hand"), ordering="on_hand")
    def on_hand_display(self, part):
        return fmt(part.on_hand)

    @admin.display(description=_("reserved"), ordering="reserved")
    def reserved_display(self, part):
        return fmt(part.reserved)

    @admin.display(description=_("available"), ordering="available")
    def available_display(self, part):
        return fmt(part.available)

    # --- writes through the services -------------------------------------------------------------------
    def save_model(self, request, obj, form, change):
        fields = submitted(form, services.PART_FIELDS)
        types = form.cleaned_data.get("compatible_asset_types")
        if change:
            saved = services.update_part(obj, actor=request.user, compatible_asset_types=types, **fields)
        else:
            organization = self.new_organization(request, form)
            saved = services.create_part(
                organization,
                actor=request.user,
                compatible_asset_types=list(types or ()),
                **fields,
            )
        adopt(obj, saved)

    def delete_model(self, request, obj):
        services.delete_part(obj, actor=request.user)

    def save_formset(self, request, form, formset, change):
        if formset.model is not StockLevel:
            return super().save_formset(request, form, formset, change)
        formset.save(commit=False)  # only to fill new/changed_objects for the change message
        part = form.instance
        for level_form in formset.forms:
            if not level_form.has_changed() or not level_form.cleaned_data:
                continue
            location = level_form.instance.location if level_form.instance.pk else level_form.cleaned_data["location"]
            services.set_stock_limits(
                part,
                location,
                actor=request.user,
                min_quantity=level_form.cleaned_data.get("min_quantity"),
                max_quantity=level_form.cleaned_data.get("max_quantity"),
            )

    # --- stock actions ---------------------------------------------------------------------------------
    def _parts(self, queryset):
        return queryset.select_related("organization").order_by("sku")

    @admin.action(description=_("Receive stock…"), permissions=["change"])
    def receive_stock(self, request, queryset):
        return run_action_form(self, request, ReceiveStockForm, self._parts(queryset), title=_("Receive stock"))

    @admin.action(description=_("Adjust…"), permissions=["change"])
    def adjust_stock(self, request, queryset):
        return run_action_form(self, request, AdjustStockForm, self._parts(queryset), title=_("Adjust stock"))

    @admin.action(description=_("Transfer…"), permissions=["change"])
    def transfer_stock(self, request, queryset):
        return run_action_form(self, request, TransferStockForm, self._parts(queryset), title=_("Transfer stock"))

    @admin.action(description=_("Write off…"), permissions=["change"])
    def write_off(self, request, queryset):
        return run_action_form(self, request, WriteOffForm, self._parts(queryset), title=_("Write off stock"))

    # --- CSV: rows written through the services, as the signed-in user ----------------------------------------
    def get_import_resource_kwargs(self, request, **kwargs):
        kwargs = super().get_import_resource_kwargs(request, **kwargs)
        return {**kwargs, "actor": request.user}


# --- locations ------------------------------------------------------------------------------------------------


@admin.register(StockLocation)
class StockLocationAdmin(ServiceAdmin):
    write_action = Action.ADJUST_STOCK
    list_display = ["name", "kind", "site", "holder", "is_active"]
    list_filter = ["kind", "is_active"]
    list_select_related = ["site", "holder"]
    search_fields = ["name"]

    def save_model(self, request, obj, form, change):
        fields = submitted(form, services.LOCATION_FIELDS)
        if change:
            saved = services.update_stock_location(obj, actor=request.user, **fields)
        else:
            organization = self.new_organization(request, form)
            saved = services.create_stock_location(organization, actor=request.user, **fields)
        adopt(obj, saved)

    def delete_model(self, request, obj):
        services.delete_stock_location(obj, actor=request.user)


# --- the ledger and reservations (read-only) ---------------------------------------------------------------------


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyTenantAdmin):
    """The append-only ledger: nobody adds, edits or deletes a line, superusers included."""

    list_display = [
        "created_at",
        "kind",
        "part",
        "location",
        "quantity",
        "unit_cost",
        "value",
        "user",
        "work_order",
        "purchase_order",
        "reason",
    ]
    list_filter = ["kind", "location"]
    list_select_related = ["part", "location", "user", "work_order", "purchase_order__vendor"]
    # What the columns read: the linked rows' names (a purchase order shows its vendor's), not their whole rows.
    list_columns = ["created_at", "kind", "quantity", "unit_cost", "reason", "organization_id", "part__sku"]
    list_columns += ["part__name", "location__name", "user__username", "work_order__number", "work_order__title"]
    list_columns += ["purchase_order__number", "purchase_order__vendor__name"]
    search_fields = ["part__sku", "part__name", "reason", "client_id"]
    show_full_result_count = False
    ordering = ["-created_at", "-id"]

    def get_actions(self, request):
        return {}


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyTenantAdmin):
    """Parts held for open work orders (reserved and released by the services)."""

    list_display = ["work_order", "part", "location", "quantity", "status", "created_at"]
    list_filter = ["status", "location"]
    list_select_related = ["work_order", "part", "location"]
    search_fields = ["part__sku", "work_order__number"]
    show_full_result_count = False


# --- vendors ------------------------------------------------------------------------------------------------------


class VendorPartInline(TenantInline):
    model = VendorPart
    fk_name = "vendor"
    fields = ["part", "vendor_sku", "price", "lead_time_days"]
    write_action = Action.MANAGE_PURCHASING

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("part")


@admin.register(Vendor)
class VendorAdmin(ServiceAdmin):
    write_action = Action.MANAGE_PURCHASING
    list_display = ["name", "contact_name", "email", "phone", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "contact_name", "email"]
    inlines = [VendorPartInline]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.URLField):
            kwargs.setdefault("assume_scheme", "https")  # Django 6's default, without the warning
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        fields = submitted(form, services.VENDOR_FIELDS)
        if change:
            saved = services.update_vendor(obj, actor=request.user, **fields)
        else:
            organization = self.new_organization(request, form)
            saved = services.create_vendor(organization, actor=request.user, **fields)
        adopt(obj, saved)

    def delete_model(self, request, obj):
        services.delete_vendor(obj, actor=request.user)

    def save_formset(self, request, form, formset, change):
        if formset.model is not VendorPart:
            return super().save_formset(request, form, formset, change)
        vendor = form.instance
        actor = request.user
        formset.save(commit=False)
        for offer in formset.deleted_objects:
            services.delete_vendor_part(offer, actor=actor)
        for offer_form in formset.forms:
            data = offer_form.cleaned_data
            if not data or data.get("DELETE") or not offer_form.has_changed():
                continue
            fields = {name: data[name] for name in ("part", "vendor_sku", "price", "lead_time_days") if name in data}
            if offer_form.instance.pk:
                services.update_vendor_part(offer_form.instance, actor=actor, **fields)
            else:
                services.create_vendor_part(vendor.organization, vendor=vendor, actor=actor, **fields)


# --- purchase orders ------------------------------------------------------------------------------------------


class PurchaseOrderLineForm(forms.ModelForm):
    parent = None  # the purchase order (set by ParentAwareFormSet)
    unit_price = forms.DecimalField(
        required=False, min_value=0, max_digits=14, decimal_places=4, help_text=_("Empty: the vendor's price.")
    )

    class Meta:
        model = PurchaseOrderLine
        fields = ["part", "quantity", "unit_price"]

    def clean(self):
        cleaned = super().clean()
        part, quantity = cleaned.get("part"), cleaned.get("quantity")
        if part is not None and quantity is not None:
            try:
                services.parse_quantity(part, quantity)
            except DomainError as exc:
                self.add_error("quantity", exc.message)
        if part is not None and cleaned.get("unit_price") is None:
            vendor = self.parent.vendor if self.parent is not None and self.parent.vendor_id else None
            offer = VendorPart.objects.filter(vendor=vendor, part=part).first() if vendor else None
            cleaned["unit_price"] = offer.price if offer else part.average_cost
        return cleaned


class PurchaseOrderLineFormSet(ParentAwareFormSet):
    def clean(self):
        super().clean()
        if not self.instance.pk or self.instance.status == PurchaseOrder.Status.DRAFT:
            kept = [
                form
                for form in self.forms
                if form.cleaned_data and not form.cleaned_data.get("DELETE") and form.cleaned_data.get("part")
            ]
            if not kept:
                raise forms.ValidationError(_("A purchase order needs at least one line."))


class PurchaseOrderLineInline(TenantInline):
    """The lines: editable while the order is a draft, read-only once it is ordered."""

    model = PurchaseOrderLine
    form = PurchaseOrderLineForm
    formset = PurchaseOrderLineFormSet
    fields = ["part", "quantity", "unit_price", "received_quantity", "outstanding"]
    readonly_fields = ["received_quantity", "outstanding"]
    write_action = Action.MANAGE_PURCHASING

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("part")

    def get_extra(self, request, obj=None, **kwargs):
        return 1 if obj is None else 0

    def _draft(self, obj):
        return obj is None or obj.status == PurchaseOrder.Status.DRAFT

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and self._draft(obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._draft(obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._draft(obj)

    @admin.display(description=_("outstanding"))
    def outstanding(self, line):
        return fmt(line.outstanding) if line.pk else "–"


@admin.register(PurchaseOrder)
class PurchaseOrderAdmin(ServiceAdmin):
    write_action = Action.MANAGE_PURCHASING
    list_display = ["number", "vendor", "status", "ordered_at", "expected_at", "received_at", "created_by"]
    list_filter = ["status", "vendor"]
    list_select_related = ["vendor", "created_by"]
    search_fields = ["number", "vendor__name", "notes"]
    readonly_fields = ["number", "status", "ordered_at", "received_at", "created_by"]
    show_full_result_count = False
    inlines = [PurchaseOrderLineInline]
    actions = ["place_orders", "receive_order", "cancel_orders"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.status != PurchaseOrder.Status.DRAFT:
            fields.append("vendor")
        if obj is not None and obj.status in (PurchaseOrder.Status.RECEIVED, PurchaseOrder.Status.CANCELLED):
            fields += ["expected_at", "notes"]
        return fields

    def save_model(self, request, obj, form, change):
        """Saved with its lines in save_related: the service creates an order and its lines together."""

    def save_related(self, request, form, formsets, change):
        order = form.instance
        lines = None
        for formset in formsets:
            if formset.model is not PurchaseOrderLine:
                continue
            formset.save(commit=False)  # only to fill new/changed/deleted_objects for the change message
            if not change or formset.has_changed():
                lines = [
                    {
                        "part": line_form.cleaned_data["part"],
                        "quantity": line_form.cleaned_data["quantity"],
                        "unit_price": line_form.cleaned_data["unit_price"],
                    }
                    for line_form in formset.forms
                    if line_form.cleaned_data
                    and not line_form.cleaned_data.get("DELETE")
                    and line_form.cleaned_data.get("part")
                ]
        fields = {name: form.cleaned_data[name] for name in services.PURCHASE_ORDER_FIELDS if name in form.cleaned_data}
        if change:
            stored = PurchaseOrder.objects.get(pk=order.pk)
            if fields.get("vendor") == stored.vendor:
                fields.pop("vendor")
            if lines is not None and stored.status != PurchaseOrder.Status.DRAFT:
                lines = None
            saved = services.update_purchase_order(stored, actor=request.user, lines=lines, **fields)
        else:
            organization = self.new_organization(request, form)
            saved = services.create_purchase_order(organization, actor=request.user, lines=lines or [], **fields)
        adopt(order, saved)

    def delete_model(self, request, obj):
        services.delete_purchase_order(obj, actor=request.user)

    # --- actions ---------------------------------------------------------------------------------------
    @admin.action(description=_("Place (send to the vendor)"), permissions=["change"])
    def place_orders(self, request, queryset):
        orders = list(queryset.select_related("organization").order_by("number"))
        try:
            with transaction.atomic():
                for order in orders:
                    services.place_purchase_order(order, actor=request.user)
        except DomainError as exc:
            self.message_user(request, _("Nothing was placed: %(reason)s") % {"reason": exc.message}, messages.ERROR)
            return
        self.message_user(
            request, _("Placed %(orders)s.") % {"orders": ", ".join(order.number for order in orders)}, messages.SUCCESS
        )

    @admin.action(description=_("Receive…"), permissions=["receive"])
    def receive_order(self, request, queryset):
        orders = list(queryset.select_related("organization", "vendor")[:2])
        if len(orders) != 1:
            self.message_user(request, _("Receive one purchase order at a time."), messages.ERROR)
            return None
        order = orders[0]
        if order.status not in (PurchaseOrder.Status.ORDERED, PurchaseOrder.Status.PARTLY_RECEIVED):
            self.message_user(
                request,
                _("%(number)s is %(status)s: only an ordered purchase order can be received.")
                % {"number": order.number, "status": str(order.get_status_display()).lower()},
                messages.ERROR,
            )
            return None
        lines = [line for line in order.lines.select_related("part", "organization") if line.outstanding > 0]
        return run_action_form(
            self,
            request,
            ReceivePurchaseOrderForm,
            lines,
            order=order,
            title=_("Receive %(number)s from %(vendor)s") % {"number": order.number, "vendor": order.vendor},
        )

    def has_receive_permission(self, request):
        """Receiving puts stock on the shelves: the storekeeper's `adjust_stock`."""
        return request_may(request, Action.ADJUST_STOCK)

    @admin.action(description=_("Cancel…"), permissions=["change"])
    def cancel_orders(self, request, queryset):
        orders = queryset.select_related("organization", "vendor").order_by("number")
        return run_action_form(self, request, CancelPurchaseOrdersForm, orders, title=_("Cancel purchase orders"))
