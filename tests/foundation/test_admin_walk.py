"""The back office on the demo data, the way a newcomer meets it: every admin changelist, add page and change
page (one object each) for each staff role, after every scenario has run once (their runs, activity and
notifications are what made `/admin/scenarios/scenario/` answer 500), finds no server error; and the inventory
reconciliation finds nothing to report on fresh demo data (the demo's stock goes through the ledger)."""

import io

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from maintenance_site.notifications.models import Notification
from maintenance_site.tenancy import SYSTEM
from scenarios import internal, runner, services, sync
from scenarios.models import Scenario, ScenarioRun

# Committed data: the backup-manager scenario copies the database through its own connection.
pytestmark = pytest.mark.django_db(transaction=True)

STAFF = ["admin", "acme-manager", "acme-planner", "acme-storekeeper"]  # superuser, then each back-office role


@pytest.fixture
def demo(settings, tmp_path, monkeypatch):
    settings.BACKUP_DIR = str(tmp_path / "backups")
    settings.SCENARIO_DISCOVERY_DIR = ""
    settings.LOG_FILE = ""
    monkeypatch.setattr(internal, "ping_workers", lambda timeout=1.0: ["celery@walk"])  # no broker here
    call_command("seed_demo", stdout=io.StringIO())


def run_every_scenario_once() -> list[ScenarioRun]:
    sync.sync_registry()
    return [
        runner.run_now(services.request_run(scenario, actor=SYSTEM))
        for scenario in Scenario.objects.internal().present()
    ]


def sample(model):
    """One object of the model, of the demo organisation the staff work in when it has one."""
    objects = model._default_manager.all()
    if any(field.name == "organization" for field in model._meta.get_fields()):
        objects = objects.filter(organization__slug="acme")
    return objects.order_by("pk").first()


def admin_pages():
    """(label, url) of every registered model's changelist, add page and one change page."""
    pages = []
    for model in admin.site._registry:
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        pages.append((f"{prefix}_changelist", reverse(f"{prefix}_changelist")))
        pages.append((f"{prefix}_add", reverse(f"{prefix}_add")))
        instance = sample(model)
        if instance is not None:
            pages.append((f"{prefix}_change", reverse(f"{prefix}_change", args=[instance.pk])))
    return pages


def test_no_admin_page_answers_500_for_any_staff_role_after_every_scenario_ran(demo):
    runs = run_every_scenario_once()
    assert runs and all(run.status != ScenarioRun.Status.PENDING for run in runs)
    assert Scenario.objects.exclude(last_run_at=None).count() == len(runs)
    pages = admin_pages()
    assert len(pages) > 100
    errors, seen = [], {}
    for username in STAFF:
        client = Client(raise_request_exception=False)
        client.force_login(get_user_model().objects.get(username=username))
        for label, url in pages:
            status = client.get(url).status_code
            seen.setdefault(username, []).append(status)
            if status >= 500:
                errors.append(f"{username} GET {url} ({label}): {status}")
    assert not errors, "\n".join(errors)
    # Real pages, not only refusals: the superuser sees most of them, each role a good share.
    assert seen["admin"].count(200) > len(pages) * 3 // 4
    assert all(statuses.count(200) > len(pages) // 3 for statuses in seen.values()), seen


def test_reconciliation_finds_nothing_on_fresh_demo_data(demo):
    sync.sync_registry()
    run = runner.run_now(services.request_run("inventory-reconciliation", actor=SYSTEM))
    assert run.status == ScenarioRun.Status.SUCCEEDED, (run.summary, run.error)
    assert run.summary.endswith("the books balance")
    assert all(entry["differences"] == [] for entry in run.result["organizations"])
    assert not Notification.objects.filter(kind=internal.KIND_LEDGER_MISMATCH).exists()
