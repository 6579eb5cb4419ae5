"""Scripted set-up from the command line: clear messages and non-zero exits on bad input."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from maintenance_site.tenancy.models import Membership, Organization, OrganizationAPIKey


def test_create_organization_and_add_member(db):
    call_command("create_organization", "Plant One", slug="plant-one", time_zone="Europe/Paris")
    call_command("add_member", "plant-one", "alice", "technician", password="s3cret-pass", hourly_rate="45.50")
    membership = Membership.objects.get(user__username="alice")
    assert membership.organization.time_zone == "Europe/Paris"
    assert (membership.role, str(membership.hourly_rate)) == ("technician", "45.50")
    assert membership.user.check_password("s3cret-pass")


def test_back_office_roles_get_staff_access(db):
    call_command("create_organization", "Plant One", slug="p1")
    call_command("add_member", "p1", "bob", "planner")
    assert Membership.objects.get(user__username="bob").user.is_staff


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create_organization", "X", "--time-zone", "Mars/Base"], "not a time zone"),
        (["add_member", "nowhere", "alice", "technician"], "No organisation with the slug “nowhere”"),
        (["add_member", "p1", "alice", "wizard"], "“wizard” is not a role"),
        (["add_member", "p1", "alice", "technician", "--hourly-rate", "lots"], "is not a number"),
        (["create_api_key", "nowhere", "ERP"], "No organisation"),
    ],
)
def test_bad_input_is_a_clear_error(db, args, message):
    Organization.objects.create(name="P1", slug="p1")
    with pytest.raises(CommandError, match=message):
        call_command(*args)


def test_duplicate_organization_is_refused(db):
    call_command("create_organization", "Plant", slug="plant")
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_organization", "Plant", slug="plant")


def test_create_api_key_prints_the_key_once(db):
    call_command("create_organization", "Plant", slug="plant")
    out = io.StringIO()
    call_command("create_api_key", "plant", "ERP", scope="read_write", stdout=out, stderr=io.StringIO())
    key = out.getvalue().strip()
    api_key = OrganizationAPIKey.objects.get()
    assert key.startswith(api_key.prefix + ".")
    assert api_key.scope == "read_write" and api_key.is_valid(key)


def test_seed_demo_is_idempotent(db):
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=io.StringIO())
    assert Organization.objects.count() == 2
    assert "acme-technician" in out.getvalue()
    from assets.models import Asset

    assert Asset.objects.filter(organization__slug="acme").count() == 7
    assert Membership.objects.filter(user__username="consultant").count() == 2


def test_core_periodic_tasks_exist_and_keep_admin_edits(db):
    from django_celery_beat.models import PeriodicTask

    from maintenance_site.ops.schedules import ensure_core_periodic_tasks

    heartbeat = PeriodicTask.objects.get(name="core: beat heartbeat")
    heartbeat.enabled = False
    heartbeat.save()
    assert ensure_core_periodic_tasks() == 0
    assert PeriodicTask.objects.get(name="core: beat heartbeat").enabled is False
