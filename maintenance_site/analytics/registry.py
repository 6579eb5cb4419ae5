"""Where each app plugs its figures in, from its `AppConfig.ready()`; this module imports no app.

A **provider** computes some KPIs of `definitions.KPIS` from its own app's data:

    provider(scope, keys, *, interval=None, group_by=None) -> {kpi_key: {key: value}}

- `keys`: the KPIs asked for (a subset of those it registered): compute only those.
- no interval, no group_by: one value per KPI, under the key None;
- `interval` ("day", "week", "month"): one value per bucket of `periods.buckets(scope, interval)`, under the
  bucket's key (a missing key means "nothing": 0 for counts and money, null for ratios);
- `group_by` ("asset", "asset_type", "location"): one value per group id (only for the KPIs that registered it).

A provider runs a bounded number of queries (aggregates in SQL), whatever the size of the data. A provider may
also give `rollup=(name, measures, finish)`: `measures(scope, keys, *, interval=None)` returns its additive sums
per bucket ({bucket: {measure: int or Decimal}}, adding up over disjoint periods) and `finish(scope, keys, sums)`
the figures of a whole period from them ({kpi_key: {None: value}}); `rollups.py` keeps the sums per local day, so
an organisation-wide figure reads a year as ~365 stored rows plus the days not rolled up yet. With
`rollup_breakdowns` (some of its `group_bys`), `measures(scope, keys, interval=..., group_by=g)` returns the sums
per bucket and group ({bucket: {group: {measure: value}}}; a list value is a sample: the sorted values of a
figure that does not add up, `rollups.samples`) and `finish(scope, keys, sums, group_by=g, group=id)` the figures
of one group: the rollups keep them per day and group, so a breakdown reads them too. A **function** is
a named helper another app answers (`location_subtree`, group labels, the failure-code Pareto, committed spend).
"""

from collections.abc import Callable

from maintenance_site.analytics.definitions import KPIS

PROVIDERS: dict[str, tuple[Callable, tuple]] = {}
FUNCTIONS: dict[str, Callable] = {}
# name → (keys, measures, finish), and each such provider's name.
ROLLUPS: dict[str, tuple[tuple, Callable, Callable]] = {}
ROLLUP_OF: dict[Callable, str] = {}
# name → the breakdowns (group_bys) its sums are also kept by.
ROLLUP_BREAKDOWNS: dict[str, tuple] = {}
# Reads what it can of a whole-period figure from the rollups (`rollups.compute`, set by the analytics app's ready()).
READER: Callable | None = None


class NotProvided(LookupError):
    """A KPI or function no installed app provides."""


def register_provider(keys, provider: Callable, *, group_bys=(), rollup=None, rollup_breakdowns=()) -> Callable:
    """Declare that `provider` computes these KPIs (and can break them down by `group_bys`; `rollup` and
    `rollup_breakdowns`: see above)."""
    for key in keys:
        if key not in KPIS:
            raise ValueError(f"{key!r} is not a KPI of maintenance_site.analytics.definitions.")
        existing = PROVIDERS.get(key)
        if existing is not None and existing[0] is not provider:
            raise ValueError(f"The KPI {key!r} already has a provider: {existing[0]!r}.")
        PROVIDERS[key] = (provider, tuple(group_bys))
    if rollup is not None:
        name, measures, finish = rollup
        existing = ROLLUPS.get(name)
        if existing is not None and existing[1] is not measures:
            raise ValueError(f"The analytics rollup {name!r} is registered twice.")
        ROLLUPS[name] = (tuple(keys), measures, finish)
        ROLLUP_OF[provider] = name
        ROLLUP_BREAKDOWNS[name] = tuple(rollup_breakdowns)
    return provider


def register_rollup(name: str, measures: Callable, finish: Callable, *, breakdowns=()) -> None:
    """Keep `measures` per day (and per group of `breakdowns`) in the rollups without a KPI of its own: for a
    function another app answers from them (`rollups.grouped`), such as the failure-code Pareto."""
    existing = ROLLUPS.get(name)
    if existing is not None and existing[1] is not measures:
        raise ValueError(f"The analytics rollup {name!r} is registered twice.")
    ROLLUPS[name] = ((), measures, finish)
    ROLLUP_BREAKDOWNS[name] = tuple(breakdowns)


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
    if READER is not None and (group_by is None or interval is None):
        by_provider = READER(scope, by_provider, results, interval, group_by)
    for provider, wanted in by_provider.items():
        answer = provider(scope, frozenset(wanted), interval=interval, group_by=group_by)
        results.update({key: answer.get(key, {}) for key in wanted})
    return results
