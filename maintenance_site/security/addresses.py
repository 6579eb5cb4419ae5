"""The client's address, the same for every rate limit (DRF's throttles, login lockouts, public reports).

Behind TRUSTED_PROXY_COUNT reverse proxies, each of which appends the address it received the request from to
`X-Forwarded-For`, the client is the entry that many places from the right: whatever a client writes into the
header itself stands further left, where nobody looks. With no trusted proxy (the default) the header is ignored
and the socket's address (REMOTE_ADDR) is the client. This is DRF's NUM_PROXIES rule, which settings.py sets
from the same variable, so throttles and lockouts count the same address.
"""

import ipaddress

from django.conf import settings


def client_ip(request) -> str:
    """The client's IP address as the trusted proxies saw it; REMOTE_ADDR when the header is absent or garbled."""
    meta = request.META
    remote = meta.get("REMOTE_ADDR") or ""
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if not proxies or not forwarded:
        return remote
    hops = forwarded.split(",")
    candidate = hops[-min(proxies, len(hops))].strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:  # a proxy short of the configured count let a client's text through: not an address
        return remote
