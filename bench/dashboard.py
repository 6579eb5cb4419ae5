"""Benchmark: the manager's dashboard (the admin's home, maintenance_site.dashboard) on the shared dataset's big
organisation (300,000 work orders at 1M, `bench/dataset.py`).

    DATABASE_URL=postgres://…/maint_bench1m python bench/dashboard.py [--repeat 5] [--json FILE]

It measures, in-process and server-side (no network, no browser), the median of --repeat runs after a warm-up:
each tile and each chart on its own (time and query count), and the whole home page as the admin serves it (the
theme's context, the sidebar, every figure, the template). The target is ≤ 500 ms for the page. The database is
only read: the session is set read-only (`default_transaction_read_only`) before anything runs, and the request is
built by hand (no login, no session row), so it can run against a dataset others use.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench import dataset  # noqa: E402  (sets Django up)
from maintenance_site import dashboard, progress  # noqa: E402
from maintenance_site.tenancy.models import Membership, Organization  # noqa: E402
from maintenance_site.tenancy.roles import Role  # noqa: E402
from workorders.models import WorkOrder  # noqa: E402

# Pages render without `collectstatic` (the manifest storage wants it): static URLs as DEBUG resolves them.
settings.STORAGES = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

TARGET_MS = 500


def read_only() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET default_transaction_read_only = on")


def manager_request(organization: Organization):
    membership = (
        Membership.objects.filter(organization=organization, role=Role.MANAGER, is_active=True)
        .select_related("user")
        .first()
    )
    if membership is None:
        raise SystemExit(f"{organization.slug} has no manager")
    request = RequestFactory().get("/admin/")
    request.user = membership.user
    request.user.is_staff = True  # in memory only: the admin's gate; nothing is saved
    request.membership = membership
    request.organization = organization
    request.session = {}
    return request


def timed(function, repeat: int) -> tuple[float, int]:
    """(median milliseconds, queries of one run), after one warm-up run."""
    function()
    samples, queries = [], 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            function()
            samples.append((time.perf_counter() - started) * 1000)
        queries = len(captured.captured_queries)
    return statistics.median(samples), queries


def render_home(request) -> None:
    from django.contrib import admin

    response = admin.site.index(request)
    response.render()
    assert response.status_code == 200, response.status_code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--slug", default=dataset.BIG_SLUG)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    read_only()
    organization = Organization.objects.filter(slug=args.slug).first()
    if organization is None:
        print(f"No organisation {args.slug}: build the dataset first (bench/dataset.py).", file=sys.stderr)
        return 2
    orders = WorkOrder.objects.filter(organization=organization).count()
    request = manager_request(organization)
    figures = []
    parts = [("tile", tile) for tile in sorted(dashboard.TILES.values(), key=lambda t: t.order)]
    parts += [("chart", chart) for chart in sorted(dashboard.CHARTS.values(), key=lambda c: c.order)]
    with progress.bars() as bars, bars.step("dashboard figures", total=len(parts) + 1) as bar:
        for kind, part in parts:
            # a fresh period each call: figures that share a query (open work) must not be served from its memo
            ms, queries = timed(
                lambda part=part: part.compute(organization, dashboard.Period(now=timezone.now())), args.repeat
            )
            figures.append({"what": f"{kind} {part.key}", "ms": round(ms, 1), "queries": queries})
            bar.advance()
        ms, queries = timed(lambda: render_home(request), args.repeat)
        figures.append({"what": "home page (whole)", "ms": round(ms, 1), "queries": queries})
        bar.advance()

    page = figures[-1]
    print(f"\nManager's dashboard, {organization.slug} ({orders:,} work orders), median of {args.repeat}:")
    print(f"{'':2}{'what':32}{'ms':>10}{'queries':>10}")
    for row in figures:
        print(f"{'':2}{row['what']:32}{row['ms']:>10.1f}{row['queries']:>10}")
    verdict = "meets" if page["ms"] <= TARGET_MS else "misses"
    print(f"\nThe page: {page['ms']:.0f} ms server time, {page['queries']} queries: {verdict} the ≤ {TARGET_MS} ms.")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"organization": organization.slug, "orders": orders, "figures": figures})
        )
    return 0 if page["ms"] <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
