"""Public problem reports, without logging in: the organisation's form (`/report/<org_token>/`), the form of one
asset reached from its QR label (`/report/a/<asset_token>/`) and the requester's status page
(`/report/status/<request_token>/`).

Submissions are rate limited per client address and per organisation in the shared cache (every process counts
together): `PUBLIC_REPORT_RATE` (default 5 per 10 minutes per address) and `PUBLIC_REPORT_ORGANIZATION_RATE`
(default 60 per 10 minutes per organisation, whichever of its forms is used), each written NUMBER/SECONDS
("5/600") or NUMBER/PERIOD ("5/10m", "100/h").
"""

import hashlib
import ipaddress
import logging
import math
import re
import time

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from assets.models import Asset
from maintenance_site.errors import InvalidInput, NotFound
from maintenance_site.security.addresses import client_ip
from maintenance_site.tenancy.models import Organization
from workorders import services
from workorders.forms import ProblemReportForm, location_paths
from workorders.models import WorkRequest

logger = logging.getLogger(__name__)

KEPT_ON_REFUSAL = ("description", "asset", "location", "contact_name", "contact_email", "contact_phone")

_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]*)\s*$")


# --- rate limiting --------------------------------------------------------------------------------------


def parse_rate(name: str, raw: str) -> tuple[int, int]:
    """(allowed submissions, period in seconds) from "5/600", "5/10m", "5/min", "100/h"."""
    match = _RATE.match(str(raw).lower())
    unit = match and (_UNITS.get(match[3]) if match[3] else 1)
    if not match or not unit or int(match[1]) < 1 or (match[2] and int(match[2]) < 1):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a rate: write NUMBER/SECONDS such as 5/600, or 5/10m.")
    return int(match[1]), int(match[2] or 1) * unit


def client_address(request) -> str:
    """The client's address as the rate limit counts it: IPv6 by /64, which one subscriber usually has whole.

    Behind reverse proxies, TRUSTED_PROXY_COUNT says which X-Forwarded-For entry is the browser's
    (`maintenance_site.security.addresses`).
    """
    raw = client_ip(request) or "unknown"
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw[:64]
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _hit(bucket: str, limit: int, period: int) -> int:
    """Count one submission in the bucket's current window; 0 when allowed, else seconds until it reopens."""
    now = time.time()
    window = int(now // period)
    key = f"public-report:{hashlib.sha256(bucket.encode()).hexdigest()[:32]}:{period}:{window}"
    if cache.add(key, 1, timeout=period + 60):
        count = 1
    else:
        try:
            count = cache.incr(key)  # atomic in Redis
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=period + 60)
            count = 1
        # Backends that implement incr as get + set reset the expiry to their default: set it again.
        cache.touch(key, timeout=period + 60)
    if count <= limit:
        return 0
    return max(1, math.ceil((window + 1) * period - now))


def rate_limited(request, organization) -> int:
    """Count a submission from this client to this organisation; seconds to wait when over either limit.

    Fails open: with the cache unreachable a problem can still be reported (it may be about the outage).
    """
    per_address = parse_rate("PUBLIC_REPORT_RATE", settings.PUBLIC_REPORT_RATE)
    per_organization = parse_rate("PUBLIC_REPORT_ORGANIZATION_RATE", settings.PUBLIC_REPORT_ORGANIZATION_RATE)
    address = client_address(request)
    try:
        wait = _hit(f"address:{address}", *per_address)
        if wait:
            return wait  # a refused client does not use up the organisation's allowance
        return _hit(f"organization:{organization.pk}", *per_organization)
    except Exception:  # the cache backend's own errors (Redis down, full disk): count nothing, let it through
        logger.warning("Public report rate limit not applied: the cache is unavailable.", exc_info=True)
        return 0


# --- views ----------------------------------------------------------------------------------------------


def _private(response):
    """Nothing here may be cached by a shared cache, nor indexed."""
    add_never_cache_headers(response)
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
def report_for_organization(request, org_token: str):
    organization = get_object_or_404(Organization, request_form_token=org_token)
    return _report(request, organization)


@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
def report_for_asset(request, asset_token: str):
    asset = get_object_or_404(
        Asset.objects.in_service().select_related("organization", "location"), public_token=asset_token
    )
    return _report(request, asset.organization, asset=asset)


def _asset_location(asset) -> str:
    if asset.location_id is None:
        return ""
    return dict(location_paths(asset.organization)).get(asset.location_id, asset.location.name)


def _report(request, organization, asset=None):
    status, wait = 200, 0
    if request.method == "POST":
        wait = rate_limited(request, organization)
        if wait:
            kept = {name: request.POST.get(name) for name in KEPT_ON_REFUSAL if request.POST.get(name)}
            form = ProblemReportForm(initial=kept, organization=organization, asset=asset)
            status = 429
        else:
            form = ProblemReportForm(request.POST, request.FILES, organization=organization, asset=asset)
            if form.is_valid():
                try:
                    work_request = services.submit_request(organization, **form.submit_kwargs())
                except InvalidInput as exc:
                    form.add_service_errors(exc)
                except NotFound:
                    form.add_error(
                        "asset" if "asset" in form.fields else None, gettext("Choose equipment from the list.")
                    )
                else:
                    return redirect("public-report-status", request_token=work_request.token)
            status = 400
    else:
        form = ProblemReportForm(organization=organization, asset=asset)
    context = {
        "form": form,
        "organization": organization,
        "asset": asset,
        "asset_location": _asset_location(asset) if asset is not None else "",
        "rate_limited": bool(wait),
        "files_dropped": request.method == "POST" and bool(request.FILES),
        "retry_minutes": math.ceil(wait / 60) if wait else 0,
    }
    response = render(request, "public/report_form.html", context, status=status)
    if wait:
        response["Retry-After"] = str(wait)
    return _private(response)


@require_GET
def report_status(request, request_token: str):
    """The requester's link: the request's status and nothing else of the organisation."""
    work_request = get_object_or_404(
        WorkRequest.objects.select_related("organization", "work_order"), token=request_token
    )
    context = {
        "work_request": work_request,
        "work_order": work_request.work_order if work_request.status == WorkRequest.Status.APPROVED else None,
        "time_zone": work_request.organization.time_zone,
    }
    response = render(request, "public/report_status.html", context)
    response["Referrer-Policy"] = "no-referrer"
    return _private(response)
