"""The technician's parts (`/t/`, wired by `maintenance_site/urls.py`): recording a part used on a work order
(a form post, or JSON from the phone, at once or replayed from its offline queue), searching parts, the van's
parts kept for offline use (the `technician_offline_urls` hook point), and the "Parts" section of the
work-order page (the `technician_order_page` hook point).
Same rules as the rest of the technician's view (`workorders.technician_views`): a signed-in member, the
session's organisation, the service's refusal shown next to the form."""

from django.db.models import OuterRef, Subquery
from django.http import JsonResponse
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from inventory import services as inventory_services
from inventory.models import MovementKind, Reservation, StockLevel, StockLocation, StockMovement
from inventory.technician_forms import PartUseForm, search_parts
from maintenance_site.errors import DomainError
from workorders.technician_api import form_error, json_endpoint, ok
from workorders.technician_views import done, order_or_404, refused, render_order, technician_view


def order_page_parts(request, work_order) -> dict:
    """The work-order page's parts: reserved (`planned`), issued and returned (`used`), and the part-use form."""
    return {
        "planned": list(
            Reservation.objects.filter(work_order=work_order, status=Reservation.Status.ACTIVE).select_related(
                "part", "location"
            )
        ),
        "used": list(
            StockMovement.objects.filter(
                work_order=work_order, kind__in=(MovementKind.ISSUE, MovementKind.RETURN)
            ).select_related("part", "location", "user")
        ),
        "forms": {"part": PartUseForm(organization=request.organization, user=request.user)},
    }


@require_POST
@technician_view
def use_part(request, pk):
    """Record a part used: taken from a stock location (my van by default) for this order."""
    work_order = order_or_404(request, pk)
    form = PartUseForm(request.POST, organization=request.organization, user=request.user)
    if not form.is_valid():
        return render_order(
            request,
            work_order,
            status=400,
            forms={"part": form},
            error_form="part",
            error=_("Say which part you used."),
        )
    data = form.cleaned_data
    part = data["part_obj"]
    try:
        movement = inventory_services.issue_to_work_order(
            work_order, part, data["location"], data["quantity"], actor=request.user, client_id=data["client_id"]
        )
    except DomainError as exc:
        return refused(request, pk, exc, form_name="part", forms={"part": form})
    quantity = number_format(-movement.quantity.normalize())
    message = _("%(quantity)s × %(sku)s %(part)s from %(location)s.") % {
        "quantity": quantity,
        "sku": part.sku,
        "part": part.name,
        "location": data["location"].name,
    }
    return done(request, work_order, message, anchor="parts")


@never_cache
@require_GET
@technician_view
def part_search(request):
    """Parts matching `q` (SKU or name) in the organisation, with how many are in my van."""
    van = StockLocation.objects.for_tenant(request.organization).filter(holder=request.user, is_active=True).first()
    parts = search_parts(request.organization, request.GET.get("q", ""))
    if van is not None:
        parts = parts.annotate(
            in_van=Subquery(StockLevel.objects.filter(part=OuterRef("pk"), location=van).values("on_hand")[:1])
        )
    results = [
        {
            "id": part.pk,
            "sku": part.sku,
            "name": part.name,
            "unit": part.get_unit_display().lower(),
            "in_van": None if van is None or part.in_van is None else f"{part.in_van.normalize():f}",
        }
        for part in parts
    ]
    return JsonResponse({"results": results, "van": van.name if van else None})


@json_endpoint
def use_part_json(request, payload, pk):
    """The phone's part used (`part` id, `quantity`, `location`, `client_id`; from the offline queue also
    `occurred_at`, the device's time, and `version`, the order as the phone had it): applied once per client id
    by the inventory service, so a replayed queue issues it once; a refusal (not enough left in the van, the order
    closed, or changed by somebody else since) is the service's sentence, shown in the phone's "Not applied"
    list."""
    work_order = order_or_404(request, pk)
    form = PartUseForm(payload, organization=request.organization, user=request.user)
    if not form.is_valid():
        return form_error(form)
    data = form.cleaned_data
    part = data["part_obj"]
    movement = inventory_services.issue_to_work_order(
        work_order,
        part,
        data["location"],
        data["quantity"],
        actor=request.user,
        client_id=data["client_id"],
        occurred_at=data["occurred_at"],
        version=data["version"],
    )
    line = f"{number_format(-movement.quantity.normalize())} × {part.sku} {part.name} · {data['location'].name}"
    if getattr(movement, "replayed", False):
        return ok(_("Already recorded: %(line)s.") % {"line": line}, line=line)
    return ok(_("Recorded: %(line)s.") % {"line": line}, status=201, line=line)


def _my_van(request):
    return StockLocation.objects.for_tenant(request.organization).filter(holder=request.user, is_active=True).first()


@never_cache
@require_GET
@technician_view
def van_parts(request):
    """The parts in my van with how many are there (JSON), saved by the phone for a day offline: the part-use
    form finds parts in it when the search cannot reach the server. One query."""
    van = _my_van(request)
    levels = []
    if van is not None:
        levels = (
            StockLevel.objects.filter(location=van, on_hand__gt=0, part__is_active=True)
            .select_related("part")
            .order_by("part__sku")
        )
    return JsonResponse(
        {
            "van": {"id": van.pk, "name": van.name} if van else None,
            "parts": [
                {
                    "id": level.part_id,
                    "sku": level.part.sku,
                    "name": level.part.name,
                    "unit": level.part.get_unit_display().lower(),
                    "in_van": f"{level.on_hand.normalize():f}",
                }
                for level in levels
            ],
        }
    )


def offline_urls(request) -> list[str]:
    """What the phone keeps of the inventory for a day offline: the van's parts."""
    return [reverse("technician:van-parts")]
