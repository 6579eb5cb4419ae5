"""The progress bars of long jobs (maintenance_site.progress): a line per step where nothing redraws (CI, pipes,
tests), bars on a terminal, nothing with --verbosity 0; seed_demo uses them."""

import io

from django.core.management import call_command

from maintenance_site import progress
from maintenance_site.ops.management.commands import seed_demo


def test_without_a_terminal_each_step_prints_one_line_when_it_ends():
    out = io.StringIO()
    with progress.bars(stream=out) as bars:
        with bars.step("work orders", total=3) as step:
            step.advance(2)
            step.advance()
        assert list(bars.track([1, 2], "assets")) == [1, 2]
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["work orders", "assets"]
    assert lines[0].startswith("work orders: 3 in ")


def test_quiet_prints_nothing():
    out = io.StringIO()
    with progress.bars(stream=out, quiet=True) as bars, bars.step("work orders", total=1) as step:
        step.advance()
    assert out.getvalue() == ""


def test_live_bars_render_count_and_finish_complete():
    out = io.StringIO()
    with progress.bars(stream=out, live=True) as bars, bars.step("work orders", total=4) as step:
        step.advance(4)
    assert "work orders" in out.getvalue()
    assert "4/4" in out.getvalue()


def test_seed_demo_reports_its_progress_on_stderr_and_keeps_stdout_for_the_logins(db):
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_demo", stdout=out, stderr=err)
    steps = len(seed_demo.ORGANIZATIONS) * len(seed_demo.DEMO_MODULES)  # one per organisation and demo module
    assert err.getvalue().startswith(f"demo data: {steps} in ")
    assert "Demo data ready" in out.getvalue()
    assert "demo data" not in out.getvalue()
