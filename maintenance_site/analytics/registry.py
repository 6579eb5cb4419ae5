"""Where each app plugs its figures in, from its `AppConfig.ready()`; this module imports no app.

A **provider** computes some KPIs of `definitions.KPIS` from its own app's data:

    provider(scope, keys, *, interval=None, group_by=None) -> {kpi_key: {key: value}}

- `keys`: the KPIs asked for (a subset of those it registered): compute only those.
- no interval, no group_by: one value per KPI, under the key None;
- `interval` ("day", "week", "month"): one value per bucket of `periods.buckets(scope, interval)`, under the
  bucket's key (a missing key means "nothing": 0 for counts and money, null for ratios);
- `group_by` ("asset", "asset_type", "location"): one value per group id (only for the KPIs that registered it).

A provider runs a bounded number of queries (aggregates in SQL), whatever the size of the data. A **function** is
a named helper another app answers (`location_subtree`, group labels, the failure-code Pareto, committed spend).
"""

from collections.abc import Callable

from maintenance_site.analytics.definitions import KPIS

PROVIDERS: dict[str, tuple[Callable, tuple]] = {}
FUNCTIONS: dict[str, Callable] = {}


class NotProvided(LookupError):
    """A KPI or function no installed app provides."""


def register_provider(keys, provider: Callable, *, group_bys=()) -> Callable:
    """Declare that `provider` computes these KPIs (and can break them down by `group_bys`)."""
    for key in keys:
        if key not in KPIS:
            raise ValueError(f"{key!r} is not a KPI of maintenance_site.analytics.definitions.")
        existing = PROVIDERS.get(key)
        if existing is not None and existing[0] is not provider:
            raise ValueError(f"The KPI {key!r} already has a provider: {existing[0]!r}.")
        PROVIDERS[key] = (provider, tuple(group_bys))
    return provider


def register_function(name: str, function: Callable) -> Callable:
    existing = FUNCTIONS.get(name)
    if existing is not None and existing is not function:
        raise ValueError(f"The analytics function {name!r} is registered twice.")
    FUNCTIONS[name] = function
    return function


def function(name: str) -> Callable:
    try:
        return FUNCTIONS[name]
    except KeyError:
        raise NotProvided(f"No installed app provides the analytics function {name!r}.") from None


def provided(key: str) -> bool:
    return key in PROVIDERS


def compute(scope, keys, *, interval=None, group_by=None) -> dict:
    """Ask each provider once for the KPIs it owns among `keys`: {kpi_key: {key: value}}."""
    by_provider: dict[Callable, set] = {}
    for key in keys:
        if key not in PROVIDERS:
            raise NotProvided(f"No installed app computes the KPI {key!r}.")
        provider, group_bys = PROVIDERS[key]
        if group_by is not None and group_by not in group_bys:
            continue
        by_provider.setdefault(provider, set()).add(key)
    results: dict = {}
    for provider, wanted in by_provider.items():
        answer = provider(scope, frozenset(wanted), interval=interval, group_by=group_by)
        results.update({key: answer.get(key, {}) for key in wanted})
    return results
