"""DRF's content negotiation, with the answer to the common Accept headers kept per set of renderers.

DRF parses the Accept header into media types and matches them against each renderer's, every request: ~80 µs of a
short API answer's CPU. For a request without `?format=` (or a format suffix) whose Accept header is absent or one of
`COMMON` (what API clients, curl and browsers' fetch send), the choice depends only on the view's renderers' classes,
in order (their media types are class attributes): it is worked out by DRF once per process and per renderer list,
then reused. Any other request (another Accept header, a format asked for) is negotiated by DRF as before, and nothing
a client sends grows what is kept (DRF keeps no process-wide cache of client input on purpose).
"""

import threading

from django.core.signals import setting_changed
from rest_framework.negotiation import DefaultContentNegotiation

COMMON = frozenset({None, "*/*", "application/json"})

_chosen: dict = {}
_lock = threading.Lock()


class ContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT")
        if (
            format_suffix
            or accept not in COMMON
            or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE) is not None
        ):
            return super().select_renderer(request, renderers, format_suffix)
        key = (accept, *map(type, renderers))
        chosen = _chosen.get(key)
        if chosen is None:
            renderer, media_type = super().select_renderer(request, renderers, format_suffix)
            chosen = (next(index for index, candidate in enumerate(renderers) if candidate is renderer), media_type)
            with _lock:
                _chosen[key] = chosen
            return renderer, media_type
        return renderers[chosen[0]], chosen[1]


def _forget(**kwargs) -> None:
    with _lock:
        _chosen.clear()


setting_changed.connect(_forget, dispatch_uid="maintenance_site.api.negotiation.forget")
