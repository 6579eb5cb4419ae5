"""Analytics: every KPI's definition in one place, and the registry through which each app computes its own.

- `definitions.py` says what each figure means (formula, what counts, unit, edge cases); the API publishes it
  (`/api/v1/analytics/definitions`, and the OpenAPI descriptions) and every place that shows a figure names it.
- `periods.py` turns a request's period into the organisation's local days (time zone, DST) and its buckets.
- `registry.py` is where the apps plug in: each app computes the KPIs about its own data in its own `analytics`
  module, with aggregates in SQL, and registers them in its `AppConfig.ready()` (as hook receivers do; this
  package imports no app). `services.py` composes them for the API and the back-office dashboard.
"""
