"""Run the readiness checks from the command line, e.g. as a container healthcheck.

`manage.py healthcheck` prints a table and exits 1 when a check fails; `--json` prints the same as JSON
on stdout; `--check NAME` (repeatable) runs only those checks, e.g. database and broker for a worker.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from maintenance_site.ops import health


class Command(BaseCommand):
    help = "Check the database, cache, broker and beat heartbeat; print the results and exit 1 if any fails."
    # Fast and independent of the project's own state: a healthcheck runs every few seconds.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json", help="print JSON instead of a table")
        parser.add_argument(
            "--check",
            action="append",
            choices=list(health.CHECKS),
            dest="checks",
            metavar="NAME",
            help=f"run only this check (repeatable; one of: {', '.join(health.CHECKS)})",
        )

    def handle(self, *args, as_json=False, checks=None, **options):
        results = health.run_checks(list(dict.fromkeys(checks)) if checks else None)
        down = [r.name for r in results if not r.ok]
        if as_json:
            self._write_json(results, down)
        else:
            self._write_table(results)
        if down:
            raise CommandError(f"unhealthy: {', '.join(down)}", returncode=1)

    def _write_json(self, results, down):
        body = {"status": "ok" if not down else "unavailable", "down": down, "checks": health.as_dict(results)}
        self.stdout.write(json.dumps(body, indent=2))

    def _write_table(self, results):
        header = ("CHECK", "STATUS", "LATENCY", "DETAIL")
        rows = [(r.name, "ok" if r.ok else "FAIL", f"{r.latency_ms:.1f} ms", r.detail) for r in results]
        name_width, status_width, latency_width = (max(len(row[i]) for row in (header, *rows)) for i in range(3))
        self.stdout.write(
            f"{header[0]:<{name_width}}  {header[1]:<{status_width}}  {header[2]:>{latency_width}}  {header[3]}"
        )
        for name, status, latency, detail in rows:
            style = self.style.SUCCESS if status == "ok" else self.style.ERROR
            self.stdout.write(
                f"{name:<{name_width}}  {style(f'{status:<{status_width}}')}  {latency:>{latency_width}}  {detail}"
            )
