"""Timeouts and cancellation that work whatever the worker pool: a deadline on the run, checked by the
runner tick and cooperatively at every checkpoint of the executor."""

import time
from datetime import timedelta

from django.utils import timezone

from maintenance_site.tenancy import SYSTEM
from scenarios import runner, services
from scenarios.models import Scenario, ScenarioRun
from scenarios.registry import RunResult, RunTimedOut

Status = ScenarioRun.Status


def test_a_timeout_stops_a_running_task_at_its_checkpoint(test_scenarios):
    laps = []

    def endless(context):
        context.check_every_seconds = 0.05
        started = time.monotonic()
        while time.monotonic() - started < 20:  # would loop 20 s without its timeout
            laps.append(1)
            context.checkpoint()
            time.sleep(0.02)
        return RunResult("never stopped")

    test_scenarios.add("test-endless", func=endless)
    test_scenarios.sync()
    Scenario.objects.filter(key="test-endless").update(timeout_seconds=1)
    began = time.monotonic()
    run = runner.run_now(services.request_run("test-endless", actor=SYSTEM))
    assert time.monotonic() - began < 5
    assert run.status == Status.TIMED_OUT and "timed out after 1 seconds" in run.summary
    assert run.deadline_at == run.started_at + timedelta(seconds=1)
    assert run.finished_at >= run.deadline_at and laps


def test_the_runner_tick_marks_a_run_past_its_deadline_and_sets_its_cancel_flag(test_scenarios):
    test_scenarios.add("test-job")
    test_scenarios.sync()
    run = services.request_run("test-job", actor=SYSTEM)
    assert runner._claim(run, timezone.now())
    ScenarioRun.objects.filter(pk=run.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
    assert runner.expire_timed_out_runs() == 1
    run.refresh_from_db()
    assert run.status == Status.TIMED_OUT and run.cancel_requested_at is not None and run.finished_at
    # the executor, still going on its worker, stops at its next checkpoint
    check = runner._checker(run.pk)
    try:
        check()
    except RunTimedOut:
        pass
    else:
        raise AssertionError("the checkpoint did not stop the timed-out run")
    assert runner.expire_timed_out_runs() == 0  # once
