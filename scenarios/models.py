"""Maintenance scenarios: the platform's own switchable maintenance jobs, their runs, presets, preset
windows and the activity log.

Scenarios are platform-wide, not per organisation: only platform administrators (superusers) manage
them. Internal scenarios that act on tenant data run across every organisation and record a result per
organisation in their run. Core jobs of the product (event dispatch, the SLA monitor, the scenario
runner itself…) are not scenarios: presets and stop-all never touch them.

State changes go through `scenarios.services`; the runner (`scenarios.runner`) is the only writer of
run statuses.
"""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from maintenance_site.audit import history
from maintenance_site.recurrence import RecurrenceError, cron_series, next_instants, parse_cron, previous_instant
from scenarios import registry
from scenarios.choices import KEY_PATTERN, Category, Weight

# Paths of the API and the admin under /scenarios/ and /presets/: no scenario or preset may take them.
RESERVED_KEYS = frozenset({"stop-all", "import", "export", "board", "apply", "activity", "runs", "new", "add"})
MAX_DURATION_MINUTES = 60 * 24 * 31


def validate_key(value: str) -> None:
    if value in RESERVED_KEYS:
        raise ValidationError(gettext("“%(value)s” is reserved; choose another key.") % {"value": value})


key_validators = [
    RegexValidator(KEY_PATTERN, _("Use lower-case letters, digits and hyphens (e.g. “log-cleanup”), at most 80.")),
    validate_key,
]


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            gettext("“%(value)s” is not a time zone name; use one such as Europe/Berlin.") % {"value": value}
        )


def validate_cron(value: str) -> None:
    if value:
        try:
            parse_cron(value)
        except RecurrenceError as error:
            raise ValidationError(error.message) from None


def cron_previous(cron: str, time_zone: str, now):
    """The latest cron time strictly before `now`, in UTC, by the daylight-saving rule of
    `maintenance_site.recurrence` (a wall-clock time that happens twice counts once, its first instance)."""
    return previous_instant(cron_series(cron), zoneinfo.ZoneInfo(time_zone or "UTC"), now)


def cron_next(cron: str, time_zone: str, after, count: int = 1) -> list:
    """The next `count` cron times after `after`, in UTC, each wall-clock time once (see cron_previous)."""
    return next_instants(cron_series(cron), zoneinfo.ZoneInfo(time_zone or "UTC"), after, count)


def validate_key_list(value) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError(gettext("Give the scenarios as a list of keys, e.g. [“log-cleanup”, “health-checker”]."))
    bad = [item for item in value if not RegexValidator(KEY_PATTERN).regex.match(item)]
    if bad:
        raise ValidationError(gettext("Not scenario keys: %(keys)s.") % {"keys": ", ".join(bad)})
    if len(set(value)) != len(value):
        raise ValidationError(gettext("A scenario is listed twice."))


class Priority(models.TextChoices):
    LOW = "low", _("Low")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High")
    CRITICAL = "critical", _("Critical")


percent = [MinValueValidator(0), MaxValueValidator(100)]
one_to_ten = [MinValueValidator(1), MaxValueValidator(10)]


def validate_hours(value) -> None:
    if not isinstance(value, list) or not all(isinstance(h, int) and 0 <= h <= 23 for h in value):
        raise ValidationError(gettext("Give the allowed hours as a list of whole hours 0–23, e.g. [1, 2, 3]."))


def validate_weekdays(value) -> None:
    if not isinstance(value, list) or not all(isinstance(d, int) and 0 <= d <= 6 for d in value):
        raise ValidationError(gettext("Give the allowed weekdays as a list of 0 (Monday) … 6 (Sunday), e.g. [5, 6]."))


class Workspace(models.Model):
    """A directory the workspace executors maintain (usually a git checkout of an organisation's scripts,
    configuration or documentation). Registered by a platform administrator only: a test run executes the
    workspace's code (in a subprocess with a scrubbed environment and resource limits, `scenarios.sandbox`)."""

    key = models.CharField(max_length=80, unique=True, validators=key_validators)
    name = models.CharField(max_length=200)
    path = models.CharField(max_length=1000, unique=True, help_text=_("Absolute path of the directory."))
    description = models.TextField(blank=True)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = history(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class ScenarioQuerySet(models.QuerySet):
    def active(self):
        return self.filter(state=Scenario.State.ACTIVE)

    def internal(self):
        return self.filter(kind=Scenario.Kind.INTERNAL)

    def external(self):
        return self.filter(kind=Scenario.Kind.EXTERNAL)

    def present(self):
        return self.filter(is_present=True)


class Scenario(models.Model):
    """A maintenance job of the platform that operators switch on and off: an internal one registered in
    code (`scenarios.registry`), run by the scenario runner on its schedule while active; or an external
    service discovered from its service.json, switched through its own endpoints.

    State: inactive → active (activate, a preset, a preset window) → inactive (deactivate, its timer
    `active_until` expiring, stop-all, a preset, the end of a preset window, the scheduler starting).
    """

    class Kind(models.TextChoices):
        INTERNAL = "internal", _("Internal")
        EXTERNAL = "external", _("External")

    class State(models.TextChoices):
        INACTIVE = "inactive", _("Inactive")
        ACTIVE = "active", _("Active")

    key = models.CharField(max_length=80, unique=True, validators=key_validators)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=30, choices=Category.choices, default=Category.OTHER)
    tags = models.JSONField(default=list, blank=True)
    weight = models.CharField(max_length=10, choices=Weight.choices, default=Weight.LIGHT)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.INTERNAL, editable=False)
    conflicts = models.ManyToManyField(
        "self", symmetrical=True, blank=True, help_text=_("Scenarios that must not be active at the same time.")
    )
    is_present = models.BooleanField(
        default=True,
        editable=False,
        help_text=_(
            "Registered in code (internal) or found by the last discovery (external); "
            "a scenario that is not present cannot be activated."
        ),
    )

    state = models.CharField(max_length=10, choices=State.choices, default=State.INACTIVE, editable=False)
    active_since = models.DateTimeField(null=True, blank=True, editable=False)
    active_until = models.DateTimeField(
        null=True, blank=True, editable=False, help_text=_("Deactivated automatically at this moment.")
    )
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    activation_reason = models.CharField(max_length=500, blank=True, editable=False)

    # Schedule of an internal scenario while active: every `interval_seconds`, or at the `cron` times.
    interval_seconds = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(10)], help_text=_("Run every this many seconds.")
    )
    cron = models.CharField(
        max_length=120, blank=True, validators=[validate_cron], help_text=_("Or run at these times (cron).")
    )
    time_zone = models.CharField(
        max_length=64, default="UTC", validators=[validate_time_zone], help_text=_("Time zone of the cron times.")
    )

    # Task settings: how the automated-task runner (scenarios.runner) claims and runs this scenario.
    executor = models.CharField(
        max_length=80,
        blank=True,
        help_text=_(
            "Registered function that runs this task when its key is not one (a task made from the "
            "command line or the admin); empty: the function registered under the task's key."
        ),
    )
    config = models.JSONField(
        default=dict, blank=True, help_text=_("Configuration, checked against the schema its function declares.")
    )
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.MEDIUM)
    timeout_seconds = models.PositiveIntegerField(
        default=3600, validators=[MinValueValidator(1)], help_text=_("A run still going after this long is stopped.")
    )
    max_retries = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(10)])
    allowed_hours = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_hours],
        help_text=_("Hours (0–23, the platform's time zone) it may start; empty: any."),
    )
    allowed_weekdays = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_weekdays],
        help_text=_("Weekdays (0 = Monday … 6 = Sunday, the platform's time zone) it may start; empty: any."),
    )
    cooldown_minutes = models.PositiveIntegerField(default=0, help_text=_("Minimum time between two starts."))
    impact_code_quality = models.PositiveSmallIntegerField(default=50, validators=percent)
    impact_security = models.PositiveSmallIntegerField(default=50, validators=percent)
    impact_performance = models.PositiveSmallIntegerField(default=50, validators=percent)
    impact_maintainability = models.PositiveSmallIntegerField(default=50, validators=percent)
    impact_user_experience = models.PositiveSmallIntegerField(default=50, validators=percent)
    estimated_minutes = models.PositiveIntegerField(default=5, help_text=_("Estimated duration of a run."))
    complexity = models.PositiveSmallIntegerField(default=5, validators=one_to_ten)
    risk = models.PositiveSmallIntegerField(default=5, validators=one_to_ten)
    depends_on = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="dependents",
        help_text=_("Tasks whose run of the same slot must finish first."),
    )

    workspace = models.ForeignKey(
        "Workspace",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tasks",
        help_text=_("The workspace a workspace executor (code quality, tests, …) runs against."),
    )

    # External scenarios: where they were found and how to reach them; what the last poll said.
    source_path = models.CharField(max_length=1000, blank=True, editable=False)
    status_url = models.URLField(max_length=500, blank=True, editable=False)
    activate_url = models.URLField(max_length=500, blank=True, editable=False)
    deactivate_url = models.URLField(max_length=500, blank=True, editable=False)
    can_toggle = models.BooleanField(null=True, blank=True, editable=False)
    remote_health = models.CharField(max_length=40, blank=True, editable=False)
    remote_state = models.CharField(max_length=40, blank=True, editable=False)
    last_polled_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False, help_text=_("The last failure to reach or toggle it."))
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)

    # The last finished run (internal scenarios), kept here for the board.
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_run_status = models.CharField(max_length=20, blank=True, editable=False)
    last_run_summary = models.CharField(max_length=500, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScenarioQuerySet.as_manager()
    history = history(
        excluded_fields=[
            "can_toggle",
            "remote_health",
            "remote_state",
            "last_polled_at",
            "last_error",
            "last_error_at",
            "last_run_at",
            "last_run_status",
            "last_run_summary",
            "updated_at",
        ]
    )

    class Meta:
        ordering = ["category", "key"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state="inactive", active_since__isnull=True, active_until__isnull=True)
                | Q(state="active", active_since__isnull=False),
                name="scenarios_scenario_active_since",
                violation_error_message="An active scenario has an activation time; an inactive one has none.",
            ),
            models.CheckConstraint(
                condition=Q(active_until__isnull=True) | Q(active_until__gt=models.F("active_since")),
                name="scenarios_scenario_until_after_since",
            ),
            models.CheckConstraint(
                condition=Q(kind="external", interval_seconds__isnull=True, cron="")
                | Q(kind="internal", interval_seconds__isnull=False, cron="")
                | Q(kind="internal", interval_seconds__isnull=True) & ~Q(cron=""),
                name="scenarios_scenario_one_schedule",
                violation_error_message="An internal scenario runs either every N seconds or at cron times "
                "(give exactly one); an external one schedules itself.",
            ),
        ]
        # No index besides the unique key: the table holds tens of rows and every list reads all of them.

    def __str__(self) -> str:
        return self.key

    def clean(self):
        errors = {}
        if self.kind == self.Kind.INTERNAL:
            if self.interval_seconds and self.cron:
                errors["cron"] = "Give either an interval or a cron schedule, not both."
            elif not self.interval_seconds and not self.cron:
                errors["interval_seconds"] = "An internal scenario needs an interval or a cron schedule."
        definition = registry.get(self.executor or self.key) if self.kind == self.Kind.INTERNAL else None
        if self.executor and definition is None:
            errors["executor"] = f"No function is registered under “{self.executor}”."
        if definition is not None and definition.needs_workspace and self.workspace_id is None:
            errors["workspace"] = f"{definition.key} runs against a workspace: choose one."
        if definition is not None:
            problems = registry.validate_config(self.config, definition.schema)
            if problems:
                errors["config"] = " ".join(problems)
        if errors:
            raise ValidationError(errors)

    @property
    def executor_key(self) -> str:
        return self.executor or self.key

    @property
    def is_active(self) -> bool:
        return self.state == self.State.ACTIVE

    @property
    def is_heavy(self) -> bool:
        return self.weight == Weight.HEAVY

    @property
    def schedule_display(self) -> str:
        """How often it runs, in the active language: “every 5 minutes”, “cron “0 3 * * *” (Europe/Madrid)”."""
        if self.kind == self.Kind.EXTERNAL:
            return str(_("its own"))
        if self.cron:
            return str(_("cron “%(cron)s” (%(zone)s)")) % {"cron": self.cron, "zone": self.time_zone}
        seconds = self.interval_seconds or 0
        if seconds >= 86400 and seconds % 86400 == 0:
            return ngettext("every %(count)s day", "every %(count)s days", seconds // 86400) % {
                "count": seconds // 86400
            }
        if seconds >= 3600 and seconds % 3600 == 0:
            return ngettext("every %(count)s hour", "every %(count)s hours", seconds // 3600) % {
                "count": seconds // 3600
            }
        if seconds >= 60 and seconds % 60 == 0:
            return ngettext("every %(count)s minute", "every %(count)s minutes", seconds // 60) % {
                "count": seconds // 60
            }
        return ngettext("every %(count)s second", "every %(count)s seconds", seconds) % {"count": seconds}


class ScenarioRunQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(status=ScenarioRun.Status.PENDING)

    def running(self):
        return self.filter(status=ScenarioRun.Status.RUNNING)

    def finished(self):
        return self.filter(status__in=ScenarioRun.FINISHED)


class ScenarioRun(models.Model):
    """One execution of an internal scenario: due at `slot` (its schedule's moment, or the moment an
    operator asked), executed by the runner tick, with its status, output, duration and result.

    Append-only apart from its own progress, so it is its own audit. Status transitions, each a
    conditional UPDATE:
    pending → running (claimed by a runner) → succeeded | failed | skipped (nothing to do, or unavailable)
    | cancelled (cancel requested while running: stop-all, cooperative);
    pending → cancelled (scenario deactivated, stop-all) | skipped (superseded by a newer slot);
    running → failed (no sign of life within SCENARIO_RUN_LEASE_MINUTES: the worker died);
    running → timed_out (past `deadline_at`: marked by the runner tick, which sets the cancel flag, or by the
    executor's own checkpoint).

    A failed or timed-out run of a task with retries left gets a new run (trigger "retry", attempt + 1,
    `not_before` after an exponential backoff). `slot` is the cycle dependencies wait on. History rows a run
    writes carry the change reason “scenario-run:<id>”: what `scenarios.rollback` restores.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")
        CANCELLED = "cancelled", _("Cancelled")
        TIMED_OUT = "timed_out", _("Timed out")

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("Schedule")
        MANUAL = "manual", _("Run now")
        RETRY = "retry", _("Retry")

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.SKIPPED, Status.CANCELLED, Status.TIMED_OUT)

    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="runs")
    slot = models.DateTimeField(help_text=_("The moment this run is due."))
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.SCHEDULE)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    attempt = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveBigIntegerField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text=_("host:pid of the runner that claimed it"))
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    summary = models.CharField(max_length=500, blank=True)
    output = models.TextField(blank=True)
    error = models.TextField(blank=True)
    changed = models.PositiveIntegerField(default=0, help_text=_("Records changed or deleted, files written."))
    result = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    issues_fixed = models.PositiveIntegerField(default=0)
    files_modified = models.PositiveIntegerField(default=0, help_text=_("Workspace files the run changed."))
    lines_added = models.PositiveIntegerField(default=0)
    lines_removed = models.PositiveIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True, help_text=_("A retry waits until then (backoff)."))
    deadline_at = models.DateTimeField(null=True, blank=True, help_text=_("Stopped (timed out) when still running."))
    retry_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retries")
    rolled_back_at = models.DateTimeField(null=True, blank=True)
    rollback_reason = models.CharField(max_length=500, blank=True)
    rollback_expired_at = models.DateTimeField(
        null=True, blank=True, help_text=_("The cleanup forgot its rollback point (--rollback-days).")
    )

    objects = ScenarioRunQuerySet.as_manager()

    class Meta:
        ordering = ["-slot", "-id"]
        constraints = [
            # A second beat, or a tick that runs twice, computes the same slot: it adds nothing.
            models.UniqueConstraint(fields=["scenario", "slot"], name="scenarios_run_unique_slot"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "running"], finished_at__isnull=True)
                | Q(status__in=["succeeded", "failed", "skipped", "cancelled", "timed_out"], finished_at__isnull=False),
                name="scenarios_run_finished_when_done",
            ),
        ]
        indexes = [
            # the runner: WHERE status = 'pending' AND slot <= now() ORDER BY slot
            models.Index(fields=["slot"], condition=Q(status="pending"), name="scenarios_run_due_idx"),
            # stop-all, lease expiry, the heavy gate: WHERE status = 'running'
            models.Index(fields=["heartbeat_at"], condition=Q(status="running"), name="scenarios_run_running_idx"),
            # retention: WHERE finished_at < ?
            models.Index(fields=["finished_at"], name="scenarios_run_finished_idx"),
            # the runs list: ORDER BY slot DESC (per scenario, the unique constraint's index serves)
            models.Index(fields=["-slot"], name="scenarios_run_slot_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.scenario_id} at {self.slot:%Y-%m-%d %H:%M:%S}: {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class WorkspaceBackup(models.Model):
    """A file-level rollback point: before a run that may change its workspace, the workspace's git state
    (commit, branch, dirty files) and a copy of every file the task may touch, with SHA-256 checksums, under
    SCENARIO_BACKUP_ROOT; after the run, the checksums of the same files (what a rollback expects to find).

    `files`: [{"path", "existed", "sha256", "size"}] before the run; `after`: {"path": sha256 or null}.
    A rollback verifies both and refuses when the workspace changed since or the copy is damaged. Evicted
    (its copy deleted) when the backups pass SCENARIO_MAX_BACKUP_SIZE_MB, oldest first."""

    run = models.OneToOneField(ScenarioRun, on_delete=models.CASCADE, related_name="backup")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="backups")
    directory = models.CharField(max_length=1000, help_text=_("Where the copies are kept."))
    git_state = models.JSONField(default=dict, blank=True)
    files = models.JSONField(default=list, blank=True)
    after = models.JSONField(default=dict, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    evicted_at = models.DateTimeField(null=True, blank=True, help_text=_("Its copy was deleted (size limit, age)."))
    restored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # storage and eviction: WHERE evicted_at IS NULL ORDER BY created_at
            models.Index(fields=["created_at"], condition=Q(evicted_at__isnull=True), name="scenarios_backup_kept_idx")
        ]

    def __str__(self) -> str:
        return f"backup of run {self.run_id} ({self.workspace_id})"

    @property
    def is_available(self) -> bool:
        return self.evicted_at is None and self.restored_at is None


class ScenarioActivity(models.Model):
    """One line of the activity log: who did what to which scenario or preset, when, why, and how it
    ended (done, refused with the reason, or failed). Refusals are logged too. Append-only."""

    class Action(models.TextChoices):
        ACTIVATE = "activate", _("Activate")
        DEACTIVATE = "deactivate", _("Deactivate")
        EXPIRE = "expire", _("Auto-deactivate (timer)")
        STOP_ALL = "stop-all", _("Emergency stop")
        RESET = "reset", _("Reset on scheduler start")
        PRESET_APPLY = "preset-apply", _("Apply preset")
        PRESET_SAVE = "preset-save", _("Save preset")
        PRESET_IMPORT = "preset-import", _("Import preset")
        PRESET_DELETE = "preset-delete", _("Delete preset")
        SCHEDULE = "schedule", _("Preset window scheduled")
        WINDOW_START = "window-start", _("Preset window started")
        WINDOW_END = "window-end", _("Preset window ended")
        RUN = "run", _("Run requested")
        RUN_CANCEL = "run-cancel", _("Run cancelled")
        RUN_FAILED = "run-failed", _("Run failed")
        FAILURE_ALERT = "failure-alert", _("Consecutive failures alert")
        ROLLBACK = "rollback", _("Rollback")
        CLEANUP = "cleanup", _("Cleanup")
        TASK_CREATE = "task-create", _("Task created")
        WORKSPACE = "workspace", _("Workspace registered")
        DISCOVERY = "discovery", _("Discovery")
        EXTERNAL = "external", _("External service")
        SYNC = "sync", _("Registry sync")
        RESCHEDULE = "reschedule", _("Scenario schedule changed")

    class Result(models.TextChoices):
        OK = "ok", _("Done")
        REFUSED = "refused", _("Refused")
        FAILED = "failed", _("Failed")

    class Via(models.TextChoices):
        API = "api", _("API")
        ADMIN = "admin", _("Admin")
        CLI = "cli", _("Command line")
        SCHEDULER = "scheduler", _("Scheduler")
        SYSTEM = "system", _("System")

    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    via = models.CharField(max_length=10, choices=Via.choices, default=Via.SYSTEM)
    action = models.CharField(max_length=20, choices=Action.choices)
    scenario = models.ForeignKey(Scenario, on_delete=models.SET_NULL, null=True, blank=True, related_name="activity")
    subject = models.CharField(max_length=200, blank=True, help_text=_("The scenario, preset or file concerned."))
    reason = models.CharField(max_length=500, blank=True)
    result = models.CharField(max_length=10, choices=Result.choices, default=Result.OK)
    message = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("activity")
        verbose_name_plural = _("activity log")
        indexes = [
            # the log, newest first, and retention: ORDER BY at DESC / WHERE at < ?
            models.Index(fields=["-at"], name="scenarios_activity_at_idx"),
            # `logs --filter discovery`: WHERE action = ? ORDER BY at DESC
            models.Index(fields=["action", "-at"], name="scenarios_activity_action_idx"),
            # a scenario's page: WHERE scenario_id = ? ORDER BY at DESC
            models.Index(fields=["scenario", "-at"], name="scenarios_activity_scn_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action} {self.subject}: {self.result}"


class Preset(models.Model):
    """A named set of scenarios to have active: applying it activates those and deactivates every other,
    in one transaction. Five are built in (full, security, performance, off-hours, minimal); operators
    save their own from the current state or import them as JSON."""

    key = models.CharField(max_length=80, unique=True, validators=key_validators)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    scenario_keys = models.JSONField(default=list, blank=True, validators=[validate_key_list])
    includes_all = models.BooleanField(
        default=False, help_text=_("Every available scenario, whatever is added later (the “full” preset).")
    )
    builtin = models.BooleanField(default=False, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = history()

    class Meta:
        ordering = ["-builtin", "key"]
        constraints = [
            models.CheckConstraint(
                condition=Q(includes_all=False) | Q(scenario_keys=[]),
                name="scenarios_preset_all_or_list",
            )
        ]

    def __str__(self) -> str:
        return self.key

    def clean(self):
        if self.includes_all and self.scenario_keys:
            raise ValidationError({"scenario_keys": gettext("A preset of every scenario lists none.")})


class PresetSchedule(models.Model):
    """A recurring maintenance window for a preset (e.g. security every Sunday 02:00 for two hours): at
    each cron occurrence the scheduler tick applies the preset, remembering the state before; when the
    duration is over it restores that state.

    Window state: idle → open (`window_start`, `window_end`, `snapshot` set; `last_occurrence` = start)
    → idle (restored). An occurrence is handled once (`last_occurrence`), even if applying it was refused.
    """

    preset = models.ForeignKey(Preset, on_delete=models.PROTECT, related_name="schedules")
    cron = models.CharField(max_length=120, validators=[validate_cron])
    duration_minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DURATION_MINUTES)]
    )
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    window_start = models.DateTimeField(null=True, blank=True, editable=False)
    window_end = models.DateTimeField(null=True, blank=True, editable=False)
    snapshot = models.JSONField(
        null=True, blank=True, editable=False, encoder=DjangoJSONEncoder, help_text=_("The state to restore.")
    )
    last_occurrence = models.DateTimeField(null=True, blank=True, editable=False)
    last_result = models.CharField(max_length=500, blank=True, editable=False)

    history = history(excluded_fields=["window_start", "window_end", "snapshot", "last_occurrence", "last_result"])

    class Meta:
        ordering = ["preset__key", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(duration_minutes__gt=0), name="scenarios_presetschedule_duration_positive"
            ),
            models.CheckConstraint(
                condition=Q(window_start__isnull=True, window_end__isnull=True)
                | Q(window_start__isnull=False, window_end__gt=models.F("window_start")),
                name="scenarios_presetschedule_window",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.preset_id} at “{self.cron}” ({self.time_zone}) for {self.duration_minutes} min"

    @property
    def is_open(self) -> bool:
        return self.window_start is not None


class DiscoveredService(models.Model):
    """A service.json the discovery found in SCENARIO_DISCOVERY_DIR, and what became of it: a scenario,
    ignored (not tagged "maintenance"), or invalid (with the reason). The troubleshooting page for a
    scenario that was not discovered."""

    class Outcome(models.TextChoices):
        SCENARIO = "scenario", _("Scenario")
        IGNORED = "ignored", _("Ignored")
        INVALID = "invalid", _("Invalid")

    path = models.CharField(max_length=1000, unique=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    message = models.TextField(blank=True)
    scenario = models.ForeignKey(Scenario, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["path"]
        verbose_name = _("discovered service file")

    def __str__(self) -> str:
        return f"{self.path}: {self.outcome}"


def dependency_cycle(scenario: "Scenario", new_dependency_ids) -> list[str] | None:
    """The cycle (keys, first repeated at the end) that making `scenario` depend on these would close."""
    edges: dict[int, set[int]] = {}
    for source, target in Scenario.depends_on.through.objects.values_list("from_scenario_id", "to_scenario_id"):
        edges.setdefault(source, set()).add(target)
    edges.setdefault(scenario.pk, set()).update(new_dependency_ids)
    path: list[int] = []

    def visit(node: int) -> list[int] | None:
        if node in path:
            return path[path.index(node) :] + [node]
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            found = visit(nxt)
            if found:
                return found
        path.pop()
        return None

    cycle = visit(scenario.pk)
    if not cycle:
        return None
    keys = dict(Scenario.objects.filter(pk__in=cycle).values_list("pk", "key"))
    return [keys[pk] for pk in cycle]


def _refuse_dependency_cycles(sender, instance, action, reverse, pk_set, **kwargs):
    """Every way of adding a dependency (admin, API, code) goes through here: a cycle is refused, named."""
    if action != "pre_add" or not pk_set:
        return
    if reverse:  # instance is the dependency, pk_set the dependents
        for pk in pk_set:
            cycle = dependency_cycle(Scenario.objects.get(pk=pk), {instance.pk})
            if cycle:
                break
    else:
        cycle = dependency_cycle(instance, set(pk_set))
    if cycle:
        raise ValidationError(
            {
                "depends_on": gettext("These dependencies form a cycle: %(cycle)s. Remove one of them.")
                % {"cycle": " → ".join(cycle)}
            }
        )


models.signals.m2m_changed.connect(
    _refuse_dependency_cycles, sender=Scenario.depends_on.through, dispatch_uid="scenario-dependency-cycles"
)


class ResourceSample(models.Model):
    """One reading of a machine's resource use (CPU, memory, the data disk, load average), taken by the core job
    `core: resource sampling` at most once per host and slot (RESOURCE_SAMPLE_INTERVAL): the history behind the
    scenario board's resource charts. Platform-wide, like the scenarios. Append-only (its own audit), kept
    RESOURCE_SAMPLE_RETENTION_HOURS."""

    host = models.CharField(max_length=120, help_text=_("The machine that measured (its host name)."))
    slot = models.DateTimeField(help_text=_("The sampling slot: the moment rounded down to RESOURCE_SAMPLE_INTERVAL."))
    sampled_at = models.DateTimeField()
    cpu_percent = models.FloatField()
    memory_percent = models.FloatField()
    disk_percent = models.FloatField(null=True, blank=True)
    load_1 = models.FloatField(null=True, blank=True, help_text=_("Load average over 1 minute."))
    load_5 = models.FloatField(null=True, blank=True)
    load_15 = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["slot"]
        constraints = [
            # one reading per host and slot: a second beat, a task run twice or two workers at once add nothing;
            # its index also serves the chart: WHERE host = ? AND slot >= ? ORDER BY slot
            models.UniqueConstraint(fields=["host", "slot"], name="scenarios_resourcesample_unique_slot"),
            models.CheckConstraint(
                condition=Q(cpu_percent__gte=0) & Q(memory_percent__gte=0), name="scenarios_resourcesample_positive"
            ),
        ]
        indexes = [
            # retention, and the host of the newest sample: WHERE slot < ? / ORDER BY slot DESC LIMIT 1
            models.Index(fields=["slot"], name="scenarios_resource_slot_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.host} {self.slot:%Y-%m-%d %H:%M}: CPU {self.cpu_percent:.0f}%, memory {self.memory_percent:.0f}%"
