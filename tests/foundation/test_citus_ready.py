"""The schema stays ready for Citus (distributed PostgreSQL, `organization_id` as the distribution column; README,
"Scaling out"): on a distributed table, PostgreSQL can only enforce a unique constraint that includes the
distribution column, since each shard checks its own rows. So every unique constraint on a tenant table (a table with
an `organization` column) includes `organization`, except the ones listed here with the reason they may not — each
says what it becomes under Citus. A new constraint without the organisation fails this test until it is widened or
listed with its reason.
"""

import pytest
from django.apps import apps
from django.db import models

from maintenance_site.tenancy.models import Organization

# A globally unique secret, looked up before the organisation is known (a link, a feed, a key): under Citus a
# reference lookup table (token → organisation), the tenant table's constraint widened to (organization, token).
GLOBAL_TOKEN = "global secret looked up before the organisation is known: a reference lookup table under Citus"
# Unique within a parent row that belongs to one organisation: the parent's id determines the organisation, so the
# constraint with `organization` added means the same; widened when the tables are distributed (README).
WITHIN_PARENT = "scoped by a parent row of one organisation: the same constraint with organization added"

EXCEPTIONS = {
    ("assets_asset", ("public_token",)): GLOBAL_TOKEN,
    ("scheduling_calendarfeed", ("token_hash",)): GLOBAL_TOKEN,
    ("scheduling_windowfeedtoken", ("token",)): GLOBAL_TOKEN,
    ("tenancy_organizationapikey", ("prefix",)): GLOBAL_TOKEN,
    ("workorders_attachment", ("token",)): GLOBAL_TOKEN,
    # A finished upload becomes one attachment (a one-to-one link): the attachment is a row of one organisation.
    ("workorders_resumableupload", ("attachment",)): WITHIN_PARENT,
    ("workorders_workrequest", ("token",)): GLOBAL_TOKEN,
    # A key's service user is a user (a reference table), one per key.
    ("tenancy_organizationapikey", ("service_user",)): "one service user per key; users are a reference table",
    # One running timer per technician across all their organisations: a rule over organisations, which Citus
    # cannot enforce across shards; under Citus (organization, technician) and the service checks the others.
    ("workorders_timeentry", ("technician",)): "one running timer per person across organisations (service-checked)",
    ("assets_downtime", ("asset",)): WITHIN_PARENT,
    ("assets_meter", ("asset", "name")): WITHIN_PARENT,
    ("assets_meterreading", ("meter", "read_at")): WITHIN_PARENT,
    ("inventory_reservation", ("work_order", "part", "location")): WITHIN_PARENT,
    ("inventory_stocklevel", ("part", "location")): WITHIN_PARENT,
    ("inventory_vendorpart", ("vendor", "part")): WITHIN_PARENT,
    ("notifications_notificationdelivery", ("notification", "channel")): WITHIN_PARENT,
    ("scheduling_maintenancewindow", ("series", "occurrence_start")): WITHIN_PARENT,
    ("scheduling_preventiveoccurrence", ("schedule", "target_key", "due_at")): WITHIN_PARENT,
    ("scheduling_preventiveoccurrence", ("work_order",)): WITHIN_PARENT,
    ("scheduling_scheduletemplatepart", ("schedule", "part", "stock_location")): WITHIN_PARENT,
    ("scheduling_windowassetstate", ("window", "asset")): WITHIN_PARENT,
    ("sla_holiday", ("calendar", "date")): WITHIN_PARENT,
    ("sla_slaclock", ("work_order",)): WITHIN_PARENT,
    ("sla_slaviolation", ("clock", "kind", "level")): WITHIN_PARENT,
    ("workorders_downtimelink", ("downtime",)): WITHIN_PARENT,
    ("workorders_workrequest", ("work_order",)): WITHIN_PARENT,
    ("workorders_budgetcrossing", ("budget", "threshold")): WITHIN_PARENT,
    ("workorders_assethealth", ("asset",)): WITHIN_PARENT,
    ("workorders_predictivealert", ("asset", "cause")): WITHIN_PARENT,
    ("workorders_predictivealert", ("work_order",)): WITHIN_PARENT,
    ("assets_anomaly", ("series", "detector")): WITHIN_PARENT,
    ("assets_metricdefinition", ("asset", "metric")): WITHIN_PARENT,
    ("assets_metricdefinition", ("asset_type", "metric")): WITHIN_PARENT,
    ("assets_series", ("asset", "metric")): WITHIN_PARENT,
    ("notifications_notificationdelivery", ("notification", "chat_channel")): WITHIN_PARENT,
    ("webhooks_webhookdelivery", ("event", "subscription")): WITHIN_PARENT,
    # The webhook-id receivers deduplicate by: random, unique everywhere; (organization, message_id) under Citus.
    ("webhooks_webhookdelivery", ("message_id",)): "a random message id (webhook-id) unique everywhere",
}


def tenant_models() -> list:
    """Models with a column pointing at the organisation: the tables Citus distributes by organization_id."""
    return [
        model
        for model in apps.get_models(include_auto_created=True)
        if any(
            field.is_relation and field.related_model is Organization and (field.many_to_one or field.one_to_one)
            for field in model._meta.concrete_fields
        )
    ]


def unique_sets(model) -> list[tuple[str, ...]]:
    """Every set of columns the model declares unique: UniqueConstraint (fields, or the columns its expressions
    name), unique_together, and unique=True fields; the primary key aside (see the README)."""
    found = []
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            names = tuple(constraint.fields) or tuple(
                ref for expression in constraint.expressions for ref in _column_refs(expression)
            )
            found.append(names)
    found += [tuple(together) for together in model._meta.unique_together]
    found += [(field.name,) for field in model._meta.concrete_fields if field.unique and not field.primary_key]
    return found


def _column_refs(expression) -> list[str]:
    if isinstance(expression, models.F):
        return [expression.name]
    return [ref for source in expression.get_source_expressions() for ref in _column_refs(source)]


def test_tenant_tables_are_found():
    tables = {model._meta.db_table for model in tenant_models()}
    # Guards the next test against passing because nothing was collected.
    assert {"workorders_workorder", "events_event", "workorders_historicalworkorder", "assets_asset"} <= tables
    assert "tenancy_organization" not in tables and "auth_user" not in tables


def test_every_unique_constraint_on_a_tenant_table_includes_the_organisation():
    missing = sorted(
        (model._meta.db_table, names)
        for model in tenant_models()
        for names in unique_sets(model)
        if not any(name in ("organization", "organization_id") for name in names)
        and (model._meta.db_table, names) not in EXCEPTIONS
    )
    assert not missing, (
        "unique without the organisation on a tenant table (Citus cannot enforce it across shards): add "
        f"`organization` to the constraint, or list it in EXCEPTIONS with its reason: {missing}"
    )


@pytest.mark.parametrize(("table", "names"), sorted(EXCEPTIONS))
def test_every_exception_still_exists(table, names):
    """A constraint widened or removed leaves the list too: the list is what README's Citus mapping names."""
    declared = {(model._meta.db_table, found) for model in tenant_models() for found in unique_sets(model)}
    assert (table, names) in declared
