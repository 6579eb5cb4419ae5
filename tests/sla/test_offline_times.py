"""Steps a technician did offline reach the SLA clock with the device's times: response met when the work
started, the pause as long as the order was on hold on the phone, resolution met when it was completed — not
when the phone found a signal again."""

from datetime import timedelta

from sla.models import SLAClock
from workorders import services as work_orders


def test_offline_steps_meet_and_pause_the_clock_at_the_device_times(clock, org_a, planner_a, technician_a, high_policy):
    opened = clock.now
    order = work_orders.create_work_order(org_a, title="Leak", priority="high", actor=planner_a, assignee=technician_a)
    clock.advance(hours=2)  # the technician was in the basement; the phone syncs now, two hours later

    def offline(action, minutes, **extra):
        return work_orders.apply_offline_action(
            order,
            action,
            actor=technician_a,
            client_id=f"{action}-{minutes}",
            occurred_at=opened + timedelta(minutes=minutes),
            **extra,
        )

    offline("start", 10)
    offline("hold", 20, text="Waiting for the seal")
    offline("resume", 50)
    offline("complete", 70)

    sla_clock = SLAClock.objects.get(work_order=order)
    assert sla_clock.response_met_at == opened + timedelta(minutes=10)
    assert sla_clock.paused_seconds == 30 * 60  # on hold from minute 20 to minute 50, as on the phone
    assert sla_clock.resolution_met_at == opened + timedelta(minutes=70)
    assert sla_clock.resolution_seconds == 40 * 60  # 70 minutes less the 30 on hold
    assert sla_clock.stopped_at == opened + timedelta(minutes=70)
    assert (sla_clock.response_state, sla_clock.resolution_state) == ("met", "met")
