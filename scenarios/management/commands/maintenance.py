"""`manage.py maintenance`: the maintenance orchestrator on the command line.

    maintenance list [--json]
    maintenance activate KEY [--duration 30|2h | --until 2026-01-31T18:00Z] [--reason TEXT]
    maintenance deactivate KEY [--reason TEXT]
    maintenance status [--json]                 (--json prints what GET /api/v1/status shows as "scenarios")
    maintenance stop-all [--reason TEXT]
    maintenance run KEY [--wait]
    maintenance preset list | apply KEY | create KEY | import FILE | export KEY [--output FILE] | delete KEY
    maintenance schedule create --preset KEY --cron "0 2 * * 0" --duration 2h [--time-zone Europe/Berlin]
    maintenance schedule list | delete ID
    maintenance logs [--filter TEXT] [--limit N] [--json]
    maintenance runs [--scenario KEY] [--limit N]
    maintenance discover | tick
    maintenance scheduler-start [--no-reset]    (run before beat: every scenario starts inactive)
    maintenance start [--daemon] | stop [--timeout S]   (the worker with beat; a pid file under VAR_DIR)
    maintenance register-workspace KEY PATH | list-workspaces | create-default-tasks --workspace KEY
    maintenance list-tasks | create-task | schedule-task | run-task | history | metrics | list-rollbacks |
                rollback | analyze-priority | cleanup          (the automated-task runner)

A refusal prints its reason and exits non-zero (2 for bad input, 1 otherwise).
"""

import getpass
import json
import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import slugify

from maintenance_site.commands import AuditedCommand
from maintenance_site.errors import InvalidInput, NotFound
from maintenance_site.tenancy import SYSTEM
from scenarios import daemon, discovery, metrics, presets, rollback, runner, services, sync, tasks, workspaces
from scenarios.choices import DEFAULT_EXECUTORS
from scenarios.models import Preset, PresetSchedule, Scenario, ScenarioActivity, ScenarioRun, Workspace
from scenarios.priority import analyze_priority

VIA = ScenarioActivity.Via.CLI


def _when(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else "-"


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def _until(raw: str | None):
    if not raw:
        return None
    value = parse_datetime(raw.strip().replace(" ", "T").replace("Z", "+00:00"))
    if value is None:
        raise InvalidInput(f"“{raw}” is not a date and time: write e.g. 2026-01-31T18:00Z.")
    return value


class Command(AuditedCommand):
    help = "Maintenance scenarios: list, activate, deactivate, status, stop-all, presets, windows, logs."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="command", required=True, metavar="command")

        listing = commands.add_parser("list", help="every scenario and its state")
        listing.add_argument("--json", action="store_true")

        activate = commands.add_parser("activate", help="switch a scenario on")
        activate.add_argument("key")
        activate.add_argument("--duration", help="auto-deactivate after this long: minutes, or 2h, 90m")
        activate.add_argument("--until", help="auto-deactivate at this moment (ISO 8601)")
        activate.add_argument("--reason", default="")

        deactivate = commands.add_parser("deactivate", help="switch a scenario off")
        deactivate.add_argument("key")
        deactivate.add_argument("--reason", default="")

        status = commands.add_parser("status", help="what is active, limits and load")
        status.add_argument("--json", action="store_true", help="the scenarios part of GET /api/v1/status")

        stop = commands.add_parser("stop-all", help="emergency stop: every scenario off, runs cancelled")
        stop.add_argument("--reason", default="")
        stop.add_argument("--yes", action="store_true", help="do not ask for confirmation")

        run = commands.add_parser("run", help="run an internal scenario now")
        run.add_argument("key")
        run.add_argument("--wait", action="store_true", help="run it in this process and print the outcome")
        run.add_argument("--reason", default="")

        preset = commands.add_parser("preset", help="presets: list, apply, create, import, export, delete")
        verbs = preset.add_subparsers(dest="preset_command", required=True, metavar="verb")
        verbs.add_parser("list").add_argument("--json", action="store_true")
        apply = verbs.add_parser("apply")
        apply.add_argument("key")
        apply.add_argument("--duration")
        apply.add_argument("--reason", default="")
        apply.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        create = verbs.add_parser("create", help="save the current state as a preset")
        create.add_argument("key")
        create.add_argument("--name", default="")
        create.add_argument("--description", default="")
        create.add_argument("--replace", action="store_true")
        imported = verbs.add_parser("import")
        imported.add_argument("file", help="a JSON file, or - for standard input")
        imported.add_argument("--replace", action="store_true")
        export = verbs.add_parser("export")
        export.add_argument("key")
        export.add_argument("--output", help="write to this file instead of standard output")
        verbs.add_parser("delete").add_argument("key")

        schedule = commands.add_parser("schedule", help="preset windows: create, list, delete")
        schedule_verbs = schedule.add_subparsers(dest="schedule_command", required=True, metavar="verb")
        schedule_create = schedule_verbs.add_parser("create")
        schedule_create.add_argument("--preset", required=True)
        schedule_create.add_argument("--cron", required=True, help='e.g. "0 2 * * 0": Sundays at 02:00')
        schedule_create.add_argument("--duration", required=True, help="e.g. 2h, 90m, 120")
        schedule_create.add_argument("--time-zone", default="UTC")
        schedule_verbs.add_parser("list")
        schedule_verbs.add_parser("delete").add_argument("id", type=int)

        logs = commands.add_parser("logs", help="the activity log")
        logs.add_argument("--filter", default="", help="an action (e.g. discovery), a scenario, or words")
        logs.add_argument("--limit", type=int, default=50)
        logs.add_argument("--json", action="store_true")

        runs = commands.add_parser("runs", help="recent runs")
        runs.add_argument("--scenario", default="")
        runs.add_argument("--limit", type=int, default=20)

        # The automated-task runner; a task is named by its key or its id.
        tasks = commands.add_parser("list-tasks", help="tasks with their settings, priority score and success rate")
        tasks.add_argument("--json", action="store_true")
        create_task = commands.add_parser("create-task", help="a new task running a registered function")
        create_task.add_argument("--name", required=True)
        create_task.add_argument(
            "--executor",
            default="",
            help="registered function (default: the category's built-in executor, else the name's key)",
        )
        create_task.add_argument("--workspace", default="", help="the workspace a workspace executor runs against")
        create_task.add_argument("--key", default="")
        create_task.add_argument("--category", default="other")
        create_task.add_argument("--priority", default="medium", help="low, medium, high or critical")
        create_task.add_argument(
            "--timeout", type=int, default=None, help="seconds (default: SCENARIO_TASK_TIMEOUT_MINUTES)"
        )
        create_task.add_argument("--max-retries", type=int, default=0)
        create_task.add_argument("--cron", default="")
        create_task.add_argument("--interval", type=int, default=None, help="seconds")
        create_task.add_argument("--config", default="{}", help="JSON configuration")
        schedule_task = commands.add_parser("schedule-task", help="set a task's cron schedule")
        schedule_task.add_argument("task")
        schedule_task.add_argument("--cron", required=True)
        schedule_task.add_argument("--time-zone", default="UTC")
        run_task = commands.add_parser("run-task", help="run a task now")
        run_task.add_argument("task")
        run_task.add_argument("--wait", action="store_true", help="run it in this process and print the result")
        history = commands.add_parser("history", help="a task's recent runs")
        history.add_argument("task")
        history.add_argument("--limit", type=int, default=20)
        metrics = commands.add_parser("metrics", help="success rate, duration and trend per task")
        metrics.add_argument("--days", type=int, default=30)
        metrics.add_argument("--json", action="store_true")
        commands.add_parser("list-rollbacks", help="runs that offer a rollback point")
        rollback = commands.add_parser("rollback", help="restore what a run changed")
        rollback.add_argument("run", type=int)
        rollback.add_argument("--reason", required=True)
        rollback.add_argument("--force", action="store_true", help="even over records changed after the run")
        analyze = commands.add_parser("analyze-priority", help="a task's priority score, term by term")
        analyze.add_argument("task")
        cleanup = commands.add_parser("cleanup", help="delete old runs, forget old rollback points")
        cleanup.add_argument("--history-days", type=int, default=90)
        cleanup.add_argument("--rollback-days", type=int, default=30)

        register = commands.add_parser("register-workspace", help="register a directory as a workspace")
        register.add_argument("key")
        register.add_argument("path", help="absolute path of the directory")
        register.add_argument("--name", default="")
        register.add_argument("--description", default="")
        commands.add_parser("list-workspaces", help="the registered workspaces and their tasks")
        defaults = commands.add_parser("create-default-tasks", help="the seed's default tasks for a workspace")
        defaults.add_argument("--workspace", required=True)

        daemon_start = commands.add_parser("start", help="the worker with beat (detached with --daemon)")
        daemon_start.add_argument(
            "--daemon", dest="detach", action="store_true", help="detach; the pid file goes under VAR_DIR"
        )
        daemon_start.add_argument("--concurrency", type=int, default=2)
        daemon_start.add_argument("--app", default="maintenance_site", help="the Celery application")
        daemon_start.add_argument("--scheduler", default="", help="beat's scheduler (default: CELERY_BEAT_SCHEDULER)")
        daemon_start.add_argument("--skip-setup", action="store_true", help="do not run scheduler-start first")
        daemon_stop = commands.add_parser("stop", help="stop the daemon: SIGTERM, then wait for its warm shutdown")
        daemon_stop.add_argument("--timeout", type=float, default=60.0, help="seconds to wait")

        commands.add_parser("discover", help="scan the discovery folder and poll the external scenarios now")
        commands.add_parser("tick", help="one scheduler tick and one runner tick, now")

        start = commands.add_parser("scheduler-start", help="before beat: sync, discover, every scenario inactive")
        start.add_argument("--no-reset", action="store_true", help="keep the scenarios' state this once")

    def handle(self, *args, command, **options):
        self.reason = options.get("reason") or ""
        self.actor = SYSTEM  # history names the system user; the reason names the login
        handler = getattr(self, "do_" + command.replace("-", "_"))
        handler(**options)

    # --- helpers ----------------------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        self.stdout.write(text)

    def default_reason(self) -> str:
        try:
            who = getpass.getuser()
        except Exception:  # no login name in some containers
            who = "unknown"
        return self.reason or f"command line ({who})"

    def confirm(self, question: str, yes: bool) -> None:
        """Bulk operations ask first: `--yes` answers for a script; without a terminal to ask, they refuse."""
        if yes:
            return
        if not sys.stdin.isatty():
            raise CommandError(f"{question} Add --yes to confirm (no terminal to ask).", returncode=2)
        self.stdout.write(f"{question} [y/N] ", ending="")
        self.stdout.flush()
        if input().strip().lower() not in ("y", "yes"):
            raise CommandError("Nothing done.", returncode=1)

    def print_json(self, value) -> None:
        self.stdout.write(json.dumps(value, indent=2, cls=DjangoJSONEncoder, ensure_ascii=False))

    # --- scenarios --------------------------------------------------------------------------------------

    def do_list(self, json=False, **options):
        scenarios = list(Scenario.objects.order_by("category", "key"))
        if json:
            self.print_json([services.scenario_summary(s) for s in scenarios])
            return
        rows = [
            [
                s.key + ("" if s.is_present else " (missing)"),
                s.state,
                s.kind,
                s.weight,
                s.category,
                s.schedule_display,
                _when(s.active_until),
                f"{s.last_run_status} {_when(s.last_run_at)}" if s.last_run_at else "-",
            ]
            for s in scenarios
        ]
        self.say(_table(rows, ["key", "state", "kind", "weight", "category", "schedule", "until", "last run"]))

    def do_activate(self, key, duration=None, until=None, **options):
        minutes = presets.parse_duration(duration) if duration else None
        scenario = services.activate_scenario(
            key, actor=self.actor, via=VIA, duration_minutes=minutes, until=_until(until), reason=self.default_reason()
        )
        timer = f" until {_when(scenario.active_until)}" if scenario.active_until else " (no timer)"
        self.say(self.style.SUCCESS(f"{scenario.key} is active{timer}."))

    def do_deactivate(self, key, **options):
        scenario = services.deactivate_scenario(key, actor=self.actor, via=VIA, reason=self.default_reason())
        self.say(self.style.SUCCESS(f"{scenario.key} is inactive."))

    def do_status(self, json=False, **options):
        status = services.scenarios_status()
        if json:
            self.print_json(status)
            return
        if not status.get("available"):
            raise CommandError(f"The scenarios cannot be read: {status.get('error')}")
        load = services.resource_usage()
        self.say(f"Active: {', '.join(status['active']) or 'none'} ({status['active_count']})")
        self.say(f"Heavy active: {status['heavy_active']} of at most {status['max_heavy']}")
        self.say(
            f"Load: CPU {load['cpu_percent']:.0f}% (ceiling {load['cpu_ceiling']:.0f}%), "
            f"memory {load['memory_percent']:.0f}% (ceiling {load['memory_ceiling']:.0f}%)"
        )
        self.say(f"Reset on scheduler start: {'on' if status['reset_on_start'] else 'off'}")
        windows = PresetSchedule.objects.filter(window_start__isnull=False).select_related("preset")
        for window in windows:
            self.say(f"Preset window open: {window.preset.key} until {_when(window.window_end)}")
        self.say_daemon()

    def say_daemon(self) -> None:
        state = daemon.status()
        if state["running"]:
            self.say(f"Scheduler daemon: running (pid {state['pid']}, log {state['log_file']})")
        else:
            self.say(f"Scheduler daemon: not running (no live pid in {state['pid_file']})")
        if state["beat_age_seconds"] is None:
            self.say("Beat heartbeat: none recorded yet")
        else:
            stale = " (stale)" if state["beat_stale"] else ""
            self.say(f"Beat heartbeat: {state['beat_age_seconds']}s ago{stale}")

    def do_stop_all(self, yes=False, **options):
        active = list(
            Scenario.objects.filter(state=Scenario.State.ACTIVE).order_by("key").values_list("key", flat=True)
        )
        self.confirm(
            f"Stop every scenario ({', '.join(active) or 'none active'}) and cancel pending runs?",
            yes,
        )
        result = services.stop_all(actor=self.actor, via=VIA, reason=self.default_reason())
        self.say(
            self.style.WARNING(
                f"Stopped: {len(result['deactivated'])} scenario(s) deactivated, {result['runs_cancelled']} pending "
                f"run(s) cancelled, {result['runs_asked_to_stop']} running run(s) asked to stop."
            )
        )

    def do_run(self, key, wait=False, **options):
        run = services.request_run(key, actor=self.actor, via=VIA, reason=self.default_reason())
        if not wait:
            self.say(f"Run #{run.pk} of {key} requested; the runner starts it within a tick.")
            return
        run = runner.run_now(run)
        self.say(f"Run #{run.pk} {run.status} in {run.duration_ms} ms: {run.summary}")
        if run.output:
            self.say(run.output)
        if run.status in (ScenarioRun.Status.FAILED, ScenarioRun.Status.TIMED_OUT):
            raise CommandError(f"The run {run.status.replace('_', ' ')}: {run.summary}")

    def do_runs(self, scenario="", limit=20, **options):
        runs = ScenarioRun.objects.select_related("scenario").order_by("-slot", "-id")
        if scenario:
            runs = runs.filter(scenario__key=scenario)
        rows = [
            [
                str(r.pk),
                r.scenario.key,
                _when(r.slot),
                r.trigger,
                r.status,
                f"{r.duration_ms} ms" if r.duration_ms is not None else "-",
                r.summary[:80],
            ]
            for r in runs[:limit]
        ]
        self.say(_table(rows, ["id", "scenario", "slot", "trigger", "status", "duration", "summary"]))

    # --- presets ----------------------------------------------------------------------------------------

    def do_preset(self, preset_command, **options):
        getattr(self, "preset_" + preset_command)(**options)

    def preset_list(self, json=False, **options):
        scenarios = {s.key: s for s in Scenario.objects.all()}
        items = [
            {"key": p.key, "name": p.name, "builtin": p.builtin, "scenarios": presets.preset_keys(p, scenarios)}
            for p in Preset.objects.order_by("-builtin", "key")
        ]
        if json:
            self.print_json(items)
            return
        rows = [[i["key"], "built-in" if i["builtin"] else "custom", ", ".join(i["scenarios"]) or "-"] for i in items]
        self.say(_table(rows, ["preset", "kind", "scenarios"]))

    def preset_apply(self, key, duration=None, yes=False, **options):
        minutes = presets.parse_duration(duration) if duration else None
        preset = presets.get_preset(key)
        self.confirm(
            f"Apply preset {key}: exactly {', '.join(preset.scenario_keys) or 'no scenario'} active, the rest off?",
            yes,
        )
        changes = presets.apply_preset(
            key, actor=self.actor, via=VIA, reason=self.default_reason(), duration_minutes=minutes
        )
        self.say(self.style.SUCCESS(f"Preset {key} applied: {services.describe_changes(changes)}."))

    def preset_create(self, key, name="", description="", replace=False, **options):
        preset = presets.save_preset(
            key, name=name, description=description, actor=self.actor, via=VIA, replace=replace
        )
        self.say(
            self.style.SUCCESS(f"Preset {preset.key} saved: {', '.join(preset.scenario_keys) or 'nothing active'}.")
        )

    def preset_import(self, file, replace=False, **options):
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror or exc}") from None
        preset = presets.import_preset(text, actor=self.actor, via=VIA, replace=replace)
        self.say(self.style.SUCCESS(f"Preset {preset.key} imported: {', '.join(preset.scenario_keys)}."))

    def preset_export(self, key, output=None, **options):
        text = json.dumps(presets.export_preset(key), indent=2, ensure_ascii=False)
        if output:
            try:
                Path(output).write_text(text + "\n", encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"Cannot write {output}: {exc.strerror or exc}") from None
            self.say(f"Preset {key} written to {output}.")
        else:
            self.stdout.write(text)

    def preset_delete(self, key, **options):
        presets.delete_preset(key, actor=self.actor, via=VIA)
        self.say(self.style.SUCCESS(f"Preset {key} deleted."))

    # --- windows ----------------------------------------------------------------------------------------

    def do_schedule(self, schedule_command, **options):
        getattr(self, "schedule_" + schedule_command)(**options)

    def schedule_create(self, preset, cron, duration, time_zone="UTC", **options):
        schedule = presets.create_schedule(
            preset, cron=cron, duration=duration, time_zone=time_zone, actor=self.actor, via=VIA
        )
        self.say(
            self.style.SUCCESS(
                f"Window {schedule.pk}: preset {schedule.preset.key} at “{schedule.cron}” ({schedule.time_zone}) "
                f"for {schedule.duration_minutes} min; next start {_when(presets.next_occurrence(schedule))}."
            )
        )

    def schedule_list(self, **options):
        rows = [
            [
                str(s.pk),
                s.preset.key,
                s.cron,
                s.time_zone,
                f"{s.duration_minutes} min",
                "open until " + _when(s.window_end) if s.is_open else ("enabled" if s.enabled else "disabled"),
                _when(presets.next_occurrence(s)) if s.enabled else "-",
                s.last_result[:60],
            ]
            for s in PresetSchedule.objects.select_related("preset").order_by("pk")
        ]
        self.say(_table(rows, ["id", "preset", "cron", "time zone", "duration", "state", "next", "last"]))

    def schedule_delete(self, id, **options):
        schedule = PresetSchedule.objects.filter(pk=id).first()
        if schedule is None:
            raise NotFound(f"There is no window schedule {id}; `maintenance schedule list` shows them.")
        presets.delete_schedule(schedule, actor=self.actor, via=VIA)
        self.say(self.style.SUCCESS(f"Window schedule {id} deleted."))

    # --- logs, discovery, ticks, the scheduler start ----------------------------------------------------

    def do_logs(self, filter="", limit=50, json=False, **options):
        entries = ScenarioActivity.objects.select_related("actor", "scenario").order_by("-at", "-id")
        if filter:
            entries = entries.filter(
                Q(action=filter)
                | Q(scenario__key=filter)
                | Q(subject__icontains=filter)
                | Q(message__icontains=filter)
                | Q(reason__icontains=filter)
            )
        entries = list(entries[: max(limit, 1)])
        if json:
            self.print_json(
                [
                    {
                        "at": services.iso(e.at),
                        "actor": e.actor.get_username() if e.actor else None,
                        "via": e.via,
                        "action": e.action,
                        "subject": e.subject,
                        "reason": e.reason,
                        "result": e.result,
                        "message": e.message,
                    }
                    for e in entries
                ]
            )
            return
        if not entries:
            self.say("No activity" + (f" matching “{filter}”." if filter else "."))
            return
        for e in entries:
            who = e.actor.get_username() if e.actor else "-"
            line = f"{_when(e.at)}  {e.result:<7}  {e.action:<13}  {e.subject:<28}  {who} ({e.via})  {e.message}"
            self.say(line + (f"  [why: {e.reason}]" if e.reason else ""))

    def do_discover(self, **options):
        result = discovery.discover_and_poll()
        if not result.get("enabled"):
            raise CommandError("Discovery is off: set SCENARIO_DISCOVERY_DIR to the folder holding the services.")
        if result.get("problem"):
            raise CommandError(f"Discovery failed: {result['problem']}.")
        self.say(
            f"{result['files']} service.json file(s); discovered {len(result['created'])} new, "
            f"{len(result['retired'])} gone; {result.get('answered', 0)} answered their status endpoint."
        )

    def do_tick(self, **options):
        scheduled = tasks.scheduler_tick()
        executed = runner.run_due()
        self.say(
            f"Timers expired: {len(scheduled['expired'])}; windows opened {len(scheduled['windows']['opened'])}, "
            f"closed {len(scheduled['windows']['closed'])}; runs recorded {len(scheduled['recorded'])}, "
            f"executed {len(executed)}."
        )
        for run in executed:
            self.say(f"  #{run.pk} {run.scenario.key}: {run.status}: {run.summary}")

    def do_scheduler_start(self, no_reset=False, **options):
        synced = sync.sync_registry()
        self.say(f"Registry: {len(synced['created'])} new, {len(synced['missing'])} no longer in code.")
        found = discovery.discover()
        if found.get("enabled"):
            self.say(f"Discovery: {found['files']} file(s), {len(found['created'])} new scenario(s).")
        if no_reset or not settings.SCENARIOS_RESET_ON_START:
            why = "--no-reset" if no_reset else "SCENARIOS_RESET_ON_START is off"
            self.say(self.style.WARNING(f"Scenarios keep their state ({why})."))
            return
        result = services.reset_on_start()
        self.say(
            self.style.SUCCESS(
                f"Every scenario is inactive ({len(result['deactivated'])} deactivated); "
                "activate them or apply a preset."
            )
        )

    # --- the automated-task runner ----------------------------------------------------------------------

    def task(self, ident: str) -> Scenario:
        found = Scenario.objects.filter(Q(key=ident) | Q(pk=int(ident)) if ident.isdigit() else Q(key=ident)).first()
        if found is None:
            raise NotFound(f"No task “{ident}”: see `maintenance list-tasks`.")
        return found

    def do_list_tasks(self, json=False, **options):
        tasks = list(
            Scenario.objects.internal().select_related("workspace").prefetch_related("depends_on").order_by("key")
        )
        analyses = {t.pk: analyze_priority(t) for t in tasks}
        if json:
            self.print_json(
                [
                    {
                        "id": t.pk,
                        "key": t.key,
                        "category": t.category,
                        "priority": t.priority,
                        "score": analyses[t.pk]["score"],
                        "success_rate": analyses[t.pk]["inputs"]["success_rate"]["rate"],
                        "timeout_seconds": t.timeout_seconds,
                        "max_retries": t.max_retries,
                        "schedule": t.schedule_display,
                        "depends_on": [d.key for d in t.depends_on.all()],
                        "workspace": t.workspace.key if t.workspace else None,
                    }
                    for t in tasks
                ]
            )
            return
        rows = []
        for t in tasks:
            rate = analyses[t.pk]["inputs"]["success_rate"]["rate"]
            rows.append(
                [
                    str(t.pk),
                    t.key,
                    t.state,
                    t.category,
                    t.priority,
                    f"{analyses[t.pk]['score']:.1f}",
                    "-" if rate is None else f"{rate:.0f}%",
                    f"{t.timeout_seconds}s",
                    str(t.max_retries),
                    t.schedule_display,
                    ", ".join(d.key for d in t.depends_on.all()) or "-",
                ]
            )
        headers = ["id", "key", "state", "category", "priority", "score", "success", "timeout", "retries"]
        self.say(_table(rows, [*headers, "schedule", "depends on"]))

    def do_create_task(self, name, executor="", key="", category="other", priority="medium", timeout=None, **options):
        try:
            config = json.loads(options.get("config") or "{}")
        except ValueError as exc:
            raise InvalidInput(f"--config is not JSON: {exc}.") from None
        if not executor and category not in DEFAULT_EXECUTORS:
            executor = key or slugify(name)
        task = services.create_task(
            name=name,
            executor=executor,
            workspace=options.get("workspace") or None,
            key=key,
            category=category,
            priority=priority,
            timeout_seconds=timeout,
            max_retries=options.get("max_retries") or 0,
            cron=options.get("cron") or "",
            interval_seconds=options.get("interval"),
            config=config,
            actor=self.actor,
            via=VIA,
        )
        self.say(self.style.SUCCESS(f"Task {task.key} (id {task.pk}) created, inactive; runs {task.schedule_display}."))

    def do_schedule_task(self, task, cron, time_zone="UTC", **options):
        scenario = services.update_schedule(self.task(task), cron=cron, time_zone=time_zone, actor=self.actor, via=VIA)
        self.say(self.style.SUCCESS(f"{scenario.key} now runs {scenario.schedule_display}."))

    def do_run_task(self, task, wait=False, **options):
        self.do_run(self.task(task).key, wait=wait)

    def do_history(self, task, limit=20, **options):
        scenario = self.task(task)
        runs = ScenarioRun.objects.filter(scenario=scenario).order_by("-slot", "-id")[:limit]
        rows = [
            [
                str(r.pk),
                _when(r.started_at),
                _when(r.finished_at),
                r.status,
                str(r.attempt),
                f"{r.duration_ms} ms" if r.duration_ms is not None else "-",
                str(r.changed),
                str(r.issues_fixed),
                f"{r.files_modified} (+{r.lines_added} -{r.lines_removed})" if r.files_modified else "-",
                (r.summary or "")[:80],
            ]
            for r in runs
        ]
        headers = ["run", "started", "finished", "status", "attempt", "duration", "changed", "fixed", "files"]
        headers.append("summary")
        self.say(_table(rows, headers) if rows else f"{scenario.key} has no runs yet.")

    def do_metrics(self, days=30, json=False, **options):
        if days < 1:
            raise InvalidInput("--days must be at least 1.")
        found = metrics.all_metrics(days)
        system = metrics.system_metrics(days)
        if json:
            self.print_json({"system": system, "tasks": found})
            return

        def ms(value) -> str:
            return "-" if value is None else f"{value} ms"

        rows = [
            [
                m["task"],
                str(m["runs"]),
                "-" if m["success_rate"] is None else f"{m['success_rate']:.0f}%",
                ms(m["average_duration_ms"]),
                f"{ms(m['duration']['p50_ms'])} / {ms(m['duration']['p90_ms'])} / {ms(m['duration']['p99_ms'])}",
                str(m["files_modified"]),
                str(m["lines_changed"]),
                str(m["consecutive_failures"]),
                _when(m["last_success"]),
                " ".join(f"{d['success_rate']:.0f}" for d in m["trend"][-7:]) or "-",
            ]
            for m in found
        ]
        headers = ["task", "runs", "success", "avg duration", "p50 / p90 / p99", "files", "lines", "failing"]
        self.say(f"Last {days} days:")
        self.say(_table(rows, [*headers, "last success", "trend (7 days, %)"]))
        duration = system["duration"]
        self.say(
            f"All tasks: {system['runs']} runs, success "
            + ("-" if system["success_rate"] is None else f"{system['success_rate']:.0f}%")
            + f"; duration p50 {ms(duration['p50_ms'])}, p90 {ms(duration['p90_ms'])}, p99 {ms(duration['p99_ms'])}; "
            f"{system['files_modified']} files modified, {system['lines_changed']} lines changed, "
            f"{system['issues_fixed']} issues fixed"
        )
        buckets = []
        for bucket in duration["histogram"]:
            upper = f"<{bucket['to_ms']} ms" if bucket["to_ms"] is not None else f">={bucket['from_ms']} ms"
            buckets.append(f"{upper}: {bucket['runs']}")
        self.say("Execution time histogram: " + ", ".join(buckets))
        storage = system["storage"]
        self.say(
            f"Rollback storage: {storage['megabytes']} MB in {storage['rollback_points']} file backup(s) "
            f"(limit {storage['limit_megabytes']} MB)"
        )

    def do_list_rollbacks(self, **options):
        found = rollback.points()
        rows = []
        for r in found:
            backup = rollback.file_backup(r)
            files = f"{len(backup.files)} ({backup.size_bytes} B)" if backup else "-"
            git = (backup.git_state.get("commit") or "")[:10] if backup else ""
            rows.append(
                [
                    str(r.pk),
                    r.scenario.key,
                    _when(r.finished_at),
                    r.status,
                    str(r.changed),
                    files,
                    git or "-",
                    r.summary[:60],
                ]
            )
        headers = ["run", "task", "finished", "status", "changed", "files backed up", "commit", "summary"]
        self.say(_table(rows, headers) if rows else "No rollback points.")

    def do_rollback(self, run, reason, force=False, **options):
        found = ScenarioRun.objects.filter(pk=run).first()
        if found is None:
            raise NotFound(f"No run #{run}: see `maintenance list-rollbacks`.")
        outcome = rollback.rollback(found, reason, force=force, actor=self.actor, via=VIA)
        self.say(
            self.style.SUCCESS(
                f"Run #{run} rolled back: {len(outcome['restored'])} restored, {len(outcome['deleted'])} deleted, "
                f"{len(outcome['recreated'])} recreated; files: {len(outcome['files_restored'])} restored, "
                f"{len(outcome['files_deleted'])} deleted."
            )
        )

    def do_analyze_priority(self, task, **options):
        analysis = analyze_priority(self.task(task))
        self.say(f"{analysis['task']}: score {analysis['score']}")
        for name, value in analysis["terms"].items():
            inputs = analysis["inputs"][name]
            self.say(f"  {name:<13} {value:6.1f} × {analysis['weights'][name]:<4}  from {inputs}")
        self.say(f"  × category {analysis['category']} {analysis['category_multiplier']}")
        self.say(f"  × priority {analysis['priority']} {analysis['priority_adjustment']}")

    def do_cleanup(self, history_days=90, rollback_days=30, **options):
        outcome = metrics.cleanup(history_days, rollback_days, actor=self.actor, via=VIA)
        self.say(
            self.style.SUCCESS(
                f"Deleted {outcome['runs_deleted']} runs; forgot {outcome['rollback_points_expired']} rollback points."
            )
        )

    # --- workspaces and the daemon ----------------------------------------------------------------------

    def do_register_workspace(self, key, path, name="", description="", **options):
        workspace = workspaces.register_workspace(
            key=key, path=path, name=name, description=description, actor=self.actor, via=VIA
        )
        self.say(self.style.SUCCESS(f"Workspace {workspace.key} registered at {workspace.path}."))

    def do_list_workspaces(self, **options):
        found = Workspace.objects.prefetch_related("tasks").order_by("key")
        rows = [[w.key, w.path, ", ".join(t.key for t in w.tasks.all()) or "-"] for w in found]
        self.say(_table(rows, ["workspace", "path", "tasks"]) if rows else "No workspaces registered.")

    def do_create_default_tasks(self, workspace, **options):
        outcome = workspaces.create_default_tasks(workspaces.get_workspace(workspace), actor=self.actor, via=VIA)
        self.say(
            self.style.SUCCESS(
                f"Created {len(outcome['created'])} task(s): {', '.join(outcome['created']) or 'none'}; "
                f"{len(outcome['existing'])} existed already."
            )
        )

    def do_start(self, detach=False, concurrency=2, app="maintenance_site", scheduler="", skip_setup=False, **opts):
        if not skip_setup:
            self.do_scheduler_start()
        if not detach:
            command = daemon.worker_command(
                app=app, scheduler=scheduler or settings.CELERY_BEAT_SCHEDULER, concurrency=concurrency
            )
            os.execv(command[0], command)  # noqa: S606 (a fixed argument list: the worker replaces this process)
        try:
            pid = daemon.start(app=app, scheduler=scheduler, concurrency=concurrency)
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        self.say(self.style.SUCCESS(f"Scheduler started in the background (pid {pid}); `maintenance status` shows it."))

    def do_stop(self, timeout=60.0, **options):
        outcome = daemon.stop(timeout)
        if not outcome["was_running"]:
            self.say("The scheduler daemon is not running.")
        elif outcome["stopped"]:
            self.say(self.style.SUCCESS(f"Scheduler (pid {outcome['pid']}) stopped after its warm shutdown."))
        else:
            raise CommandError(
                f"The scheduler (pid {outcome['pid']}) is still finishing its tasks after {timeout:.0f}s; "
                "run stop again to keep waiting."
            )
