"""Every route of the URL conf as a concrete path, for tests that must cover each one (a new route is covered
without anyone listing it)."""

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404

# Values tried, in order, for each captured group: the first the group's own pattern accepts is used.
SAMPLES = ("999999", "nothing-here", "x")


@dataclass(frozen=True)
class Route:
    path: str
    callback: object

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/v1/")

    def allowed_methods(self) -> set[str] | None:
        """The methods the view serves, when it says (DRF views and viewsets, class-based views)."""
        actions = getattr(self.callback, "actions", None)
        if actions:
            return {method.upper() for method in actions} | {"OPTIONS"} | ({"HEAD"} if "get" in actions else set())
        view_class = getattr(self.callback, "cls", None) or getattr(self.callback, "view_class", None)
        if view_class is None:
            return None
        methods = {m.upper() for m in view_class.http_method_names if m != "trace" and hasattr(view_class, m)}
        return methods or None


def _fill_groups(regex: str) -> str | None:
    """The regex with each named group replaced by a sample value it matches (None if none does)."""
    out, index = [], 0
    while index < len(regex):
        if regex.startswith("(?P<", index):
            depth, end = 0, index
            while True:
                if regex[end] == "(" and regex[end - 1 : end] != "\\":
                    depth += 1
                elif regex[end] == ")" and regex[end - 1 : end] != "\\":
                    depth -= 1
                    if depth == 0:
                        break
                end += 1
            name = regex[index + 4 : regex.index(">", index)]
            if name == "format":
                return None  # DRF's `.json` format suffixes: the same views again
            inner = regex[regex.index(">", index) + 1 : end]
            sample = next((s for s in SAMPLES if re.fullmatch(inner, s)), None)
            if sample is None:
                return None
            out.append(sample)
            index = end + 1
        else:
            out.append(regex[index])
            index += 1
    return "".join(out)


def _to_path(regex: str) -> str | None:
    filled = _fill_groups(regex)
    if filled is None or "(" in filled or "[" in filled:
        return None  # optional or unnamed groups, format suffixes: not a route of its own
    path = filled.replace("^", "").replace("\\Z", "").replace("$", "").replace("/?", "/")
    path = re.sub(r"\\(.)", r"\1", path)
    return "/" + path


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        regex = prefix + pattern.pattern.regex.pattern.lstrip("^")
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, regex)
        elif isinstance(pattern, URLPattern):
            yield regex, pattern.callback


def all_routes() -> list[Route]:
    routes = {}
    for regex, callback in _walk(get_resolver().url_patterns):
        path = _to_path(regex)
        if path is None or path in routes:
            continue
        try:
            match = resolve(path)
        except Resolver404:
            continue
        if match.func is callback:
            routes[path] = Route(path, callback)
    return list(routes.values())
