"""The sections of the four reports. An app registers its own from `AppConfig.ready()` (the direction of
`maintenance_site.dashboard` and `maintenance_site.hooks`: this module imports no app):

    from maintenance_site.reports import registry

    @registry.section("status", "open_work", title="Open work", order=10)
    def open_work(scope, options) -> registry.Block:
        ...a bounded number of queries, whatever the size of the data...

`scope` is `maintenance_site.analytics.periods.Scope` (organisation, period in local days, location subtree);
`options` the report's other parameters (the audit report's user, model and object filters). A section answers a
`Block` or a list of them, in a number of queries that does not grow with the data (tests compare a small and a
large organisation).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy

# Lazy: each report, page and form names them in the language it is written in.
KINDS = {
    "status": gettext_lazy("Status report"),
    "performance": gettext_lazy("Performance report"),
    "quality": gettext_lazy("Quality report"),
    "audit": gettext_lazy("Audit report"),
}


@dataclass
class Block:
    """A part of a report: a table (`columns`, `rows` of plain values), an optional chart drawn by the admin's
    chart component (`chart`: {"kind": "bar"|"line", "labels": [...], "datasets": [{"label", "data"}]}), a note."""

    title: str
    columns: list[str]
    rows: list[list]
    chart: dict | None = None
    note: str = ""
    key: str = ""


@dataclass(frozen=True)
class Section:
    kind: str
    key: str
    title: str
    order: int
    compute: Callable = field(compare=False)


SECTIONS: dict[tuple[str, str], Section] = {}


def section(kind: str, key: str, *, title: str, order: int):
    """Register `function(scope, options) -> Block | list[Block]` as a section of the `kind` report."""
    if kind not in KINDS:
        raise ValueError(f"{kind!r} is not a report; one of {', '.join(KINDS)}.")

    def register(function):
        existing = SECTIONS.get((kind, key))
        if existing is not None and existing.compute is not function:
            raise ValueError(f"The {kind} report already has a section {key!r}.")
        SECTIONS[(kind, key)] = Section(kind, key, title, order, function)
        return function

    return register


def sections(kind: str) -> list[Section]:
    return sorted((s for s in SECTIONS.values() if s.kind == kind), key=lambda s: (s.order, s.key))
