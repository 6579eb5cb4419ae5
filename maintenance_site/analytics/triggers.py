"""The triggers that record which rolled-up days a change touches (`models.RollupDirty`, `rollups`).

One trigger function for every source table of the rollups' sums (and the assets, whose type and location decide
the group of their downtime and of their work orders' costs in the breakdowns): it finds the moments of the change
that the sums depend on (per table, below), and if the organisation has rollups and the earliest of them is before
the end of its last rolled-up day, records the range (an asset's new type or location: one record per downtime and
cost moment of it). It first takes the organisation's advisory lock (`rollups.LOCK_KEY`, id)
shared, held to the end of the writer's transaction, so a refresh moving the horizon (taking it exclusive) waits for
the writers that read the old one. Installed after every `migrate` (post_migrate of this app, idempotent): the
tables belong to apps above this one, so no migration of this app may depend on theirs. PostgreSQL only: elsewhere
the rollups are off and every figure is computed live.
"""

from django.db import connections

TABLES = (
    "assets_asset",
    "assets_downtime",
    "workorders_downtimelink",
    "workorders_workorder",
    "workorders_timeentry",
    "workorders_costline",
    "inventory_stockmovement",
    "sla_slaclock",
    "scheduling_preventiveoccurrence",
)

FUNCTION = r"""
CREATE OR REPLACE FUNCTION analytics_rollup_mark() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE
  org bigint;
  horizon timestamptz;
  lo timestamptz;
  hi timestamptz;
  a timestamptz;
  b timestamptz;
  row_id bigint;
BEGIN
  IF TG_OP = 'DELETE' THEN org := OLD.organization_id; ELSE org := NEW.organization_id; END IF;
  -- held to the end of the writer's transaction: a refresh moving the horizon waits for it (rollups.LOCK_KEY)
  PERFORM pg_advisory_xact_lock_shared(7321, org::integer);
  SELECT rolled_until INTO horizon FROM analytics_rollupstate WHERE organization_id = org;
  IF horizon IS NULL THEN
    RETURN NULL;
  END IF;

  IF TG_TABLE_NAME = 'assets_asset' THEN
    -- the breakdowns by asset type and location: its downtime and the costs of its work orders change group
    IF TG_OP <> 'UPDATE' OR (OLD.asset_type_id IS NOT DISTINCT FROM NEW.asset_type_id
                             AND OLD.location_id IS NOT DISTINCT FROM NEW.location_id) THEN
      RETURN NULL;
    END IF;
    -- one record per downtime and per cost moment (not their whole span): only those days are recomputed
    INSERT INTO analytics_rollupdirty (organization_id, since, until)
    SELECT org, d.started_at, LEAST(COALESCE(d.ended_at, 'infinity'), horizon) FROM assets_downtime d
    WHERE d.asset_id = NEW.id AND d.started_at < horizon
    UNION ALL
    SELECT org, m, m FROM (
      SELECT COALESCE(t.started_at, t.created_at) AS m FROM workorders_timeentry t
      WHERE t.work_order_id IN (SELECT id FROM workorders_workorder WHERE asset_id = NEW.id)
      UNION ALL SELECT c.created_at FROM workorders_costline c
      WHERE c.work_order_id IN (SELECT id FROM workorders_workorder WHERE asset_id = NEW.id)
      UNION ALL SELECT s.created_at FROM inventory_stockmovement s
      WHERE s.work_order_id IN (SELECT id FROM workorders_workorder WHERE asset_id = NEW.id)) costs
    WHERE m < horizon;
    RETURN NULL;

  ELSIF TG_TABLE_NAME = 'assets_downtime' THEN
    IF TG_OP = 'UPDATE' AND OLD.started_at = NEW.started_at AND OLD.asset_id = NEW.asset_id THEN
      IF OLD.ended_at IS NOT DISTINCT FROM NEW.ended_at THEN
        RETURN NULL;
      ELSIF OLD.ended_at IS NULL THEN
        -- closing an open downtime: the days before its end counted it up to their own end already
        lo := NEW.ended_at; hi := 'infinity';
      END IF;
    END IF;
    IF lo IS NULL THEN
      IF TG_OP <> 'INSERT' THEN lo := OLD.started_at; hi := COALESCE(OLD.ended_at, 'infinity'); END IF;
      IF TG_OP <> 'DELETE' THEN
        lo := LEAST(lo, NEW.started_at); hi := GREATEST(hi, COALESCE(NEW.ended_at, 'infinity'));
      END IF;
    END IF;

  ELSIF TG_TABLE_NAME = 'workorders_downtimelink' THEN
    IF TG_OP = 'UPDATE' AND OLD.downtime_id = NEW.downtime_id
       AND OLD.caused_by_id IS NOT DISTINCT FROM NEW.caused_by_id THEN
      RETURN NULL;
    END IF;
    SELECT MIN(started_at), MAX(COALESCE(ended_at, 'infinity')) INTO lo, hi FROM assets_downtime
    WHERE id IN (CASE WHEN TG_OP <> 'INSERT' THEN OLD.downtime_id END,
                 CASE WHEN TG_OP <> 'DELETE' THEN NEW.downtime_id END);

  ELSIF TG_TABLE_NAME = 'workorders_workorder' THEN
    IF TG_OP = 'UPDATE' AND OLD.status IS NOT DISTINCT FROM NEW.status AND OLD.type IS NOT DISTINCT FROM NEW.type
       AND OLD.completed_at IS NOT DISTINCT FROM NEW.completed_at
       AND OLD.cancelled_at IS NOT DISTINCT FROM NEW.cancelled_at
       AND OLD.estimated_minutes IS NOT DISTINCT FROM NEW.estimated_minutes
       AND OLD.parent_id IS NOT DISTINCT FROM NEW.parent_id AND OLD.created_at = NEW.created_at
       AND OLD.priority IS NOT DISTINCT FROM NEW.priority AND OLD.asset_id IS NOT DISTINCT FROM NEW.asset_id
       AND OLD.location_id IS NOT DISTINCT FROM NEW.location_id
       AND OLD.cause_code_id IS NOT DISTINCT FROM NEW.cause_code_id
       AND OLD.problem_code_id IS NOT DISTINCT FROM NEW.problem_code_id
       AND OLD.remedy_code_id IS NOT DISTINCT FROM NEW.remedy_code_id THEN
      RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN row_id := OLD.id; ELSE row_id := NEW.id; END IF;
    IF TG_OP <> 'INSERT' THEN lo := OLD.completed_at; hi := OLD.completed_at; END IF;
    IF TG_OP <> 'DELETE' THEN lo := LEAST(lo, NEW.completed_at); hi := GREATEST(hi, NEW.completed_at); END IF;
    -- a follow-up: its parent's completion day (rework)
    IF TG_OP <> 'UPDATE' OR OLD.parent_id IS DISTINCT FROM NEW.parent_id OR OLD.created_at <> NEW.created_at THEN
      SELECT MIN(completed_at), MAX(completed_at) INTO a, b FROM workorders_workorder
      WHERE id IN (CASE WHEN TG_OP <> 'INSERT' THEN OLD.parent_id END,
                   CASE WHEN TG_OP <> 'DELETE' THEN NEW.parent_id END);
      lo := LEAST(lo, a); hi := GREATEST(hi, b);
    END IF;
    -- its SLA clocks (cancelled orders are left out) and PM occurrences (on time, cancelled): on a new status
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND (OLD.status IS DISTINCT FROM NEW.status
        OR OLD.completed_at IS DISTINCT FROM NEW.completed_at
        OR OLD.cancelled_at IS DISTINCT FROM NEW.cancelled_at OR OLD.priority IS DISTINCT FROM NEW.priority)) THEN
      SELECT MIN(started_at), MAX(started_at) INTO a, b FROM sla_slaclock WHERE work_order_id = row_id;
      lo := LEAST(lo, a); hi := GREATEST(hi, b);
      SELECT MIN(due_at), MAX(due_at) INTO a, b FROM scheduling_preventiveoccurrence WHERE work_order_id = row_id;
      lo := LEAST(lo, a); hi := GREATEST(hi, b);
    END IF;
    -- its costs, kept per asset type and location (of its asset, its location): on a new asset or location
    IF TG_OP = 'UPDATE' AND (OLD.asset_id IS DISTINCT FROM NEW.asset_id
        OR OLD.location_id IS DISTINCT FROM NEW.location_id) THEN
      INSERT INTO analytics_rollupdirty (organization_id, since, until)
      SELECT org, m, m FROM (
        SELECT COALESCE(t.started_at, t.created_at) AS m FROM workorders_timeentry t WHERE t.work_order_id = row_id
        UNION ALL SELECT c.created_at FROM workorders_costline c WHERE c.work_order_id = row_id
        UNION ALL SELECT s.created_at FROM inventory_stockmovement s WHERE s.work_order_id = row_id) costs
      WHERE m < horizon;
    END IF;
    -- the downtime it caused (scheduled or not, from its type): on a new type
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.type IS DISTINCT FROM NEW.type) THEN
      SELECT MIN(d.started_at), MAX(COALESCE(d.ended_at, 'infinity')) INTO a, b
      FROM workorders_downtimelink l JOIN assets_downtime d ON d.id = l.downtime_id WHERE l.caused_by_id = row_id;
      lo := LEAST(lo, a); hi := GREATEST(hi, b);
    END IF;

  ELSIF TG_TABLE_NAME = 'workorders_timeentry' THEN
    IF TG_OP = 'UPDATE' AND OLD.minutes IS NOT DISTINCT FROM NEW.minutes
       AND OLD.hourly_rate IS NOT DISTINCT FROM NEW.hourly_rate
       AND OLD.started_at IS NOT DISTINCT FROM NEW.started_at AND OLD.created_at = NEW.created_at
       AND OLD.work_order_id = NEW.work_order_id THEN
      RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN lo := COALESCE(OLD.started_at, OLD.created_at); hi := lo; END IF;
    IF TG_OP <> 'DELETE' THEN
      lo := LEAST(lo, COALESCE(NEW.started_at, NEW.created_at));
      hi := GREATEST(hi, COALESCE(NEW.started_at, NEW.created_at));
    END IF;
    -- wrench time: the day its order was completed
    SELECT MIN(completed_at), MAX(completed_at) INTO a, b FROM workorders_workorder
    WHERE id IN (CASE WHEN TG_OP <> 'INSERT' THEN OLD.work_order_id END,
                 CASE WHEN TG_OP <> 'DELETE' THEN NEW.work_order_id END);
    lo := LEAST(lo, a); hi := GREATEST(hi, b);

  ELSIF TG_TABLE_NAME IN ('workorders_costline', 'inventory_stockmovement') THEN
    IF TG_OP <> 'INSERT' THEN lo := OLD.created_at; hi := lo; END IF;
    IF TG_OP <> 'DELETE' THEN lo := LEAST(lo, NEW.created_at); hi := GREATEST(hi, NEW.created_at); END IF;

  ELSIF TG_TABLE_NAME = 'sla_slaclock' THEN
    IF TG_OP = 'UPDATE' AND OLD.started_at = NEW.started_at AND OLD.work_order_id = NEW.work_order_id
       AND OLD.response_state = NEW.response_state AND OLD.resolution_state = NEW.resolution_state THEN
      RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN lo := OLD.started_at; hi := lo; END IF;
    IF TG_OP <> 'DELETE' THEN lo := LEAST(lo, NEW.started_at); hi := GREATEST(hi, NEW.started_at); END IF;

  ELSIF TG_TABLE_NAME = 'scheduling_preventiveoccurrence' THEN
    IF TG_OP = 'UPDATE' AND OLD.due_at = NEW.due_at AND OLD.status = NEW.status
       AND OLD.work_order_id IS NOT DISTINCT FROM NEW.work_order_id THEN
      RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN lo := OLD.due_at; hi := lo; END IF;
    IF TG_OP <> 'DELETE' THEN lo := LEAST(lo, NEW.due_at); hi := GREATEST(hi, NEW.due_at); END IF;
  END IF;

  IF lo IS NULL OR lo >= horizon THEN
    RETURN NULL;
  END IF;
  INSERT INTO analytics_rollupdirty (organization_id, since, until) VALUES (org, lo, LEAST(COALESCE(hi, lo), horizon));
  RETURN NULL;
END
$f$;
"""


def install(sender=None, using="default", **kwargs) -> None:
    """(Re)create the function and a trigger on each source table that exists (post_migrate receiver)."""
    db = connections[using]
    if db.vendor != "postgresql":
        return
    with db.cursor() as cursor:
        cursor.execute(FUNCTION)
        for table in TABLES:
            cursor.execute("SELECT to_regclass(%s)", [table])
            if cursor.fetchone()[0] is None:
                continue
            cursor.execute(f"DROP TRIGGER IF EXISTS analytics_rollup_mark ON {table}")
            cursor.execute(
                f"CREATE TRIGGER analytics_rollup_mark AFTER INSERT OR UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION analytics_rollup_mark()"
            )
