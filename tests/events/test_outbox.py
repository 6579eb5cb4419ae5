"""The transactional outbox: nothing from a rolled-back change, dispatch only after commit, gap-free
numbering per organisation, and the sweep delivering what a failed dispatch left behind."""

import threading

import pytest
from django.db import connection, transaction

from maintenance_site.events import services, tasks
from maintenance_site.events.models import Event
from tests.events.support import per_event


@pytest.fixture
def delivered(monkeypatch):
    """Replaces the transports: the list of (organization_id, sequence) delivered."""
    sent = []
    monkeypatch.setattr(
        services, "deliver_many", per_event(lambda event: sent.append((event.organization_id, event.sequence)))
    )
    return sent


def test_publish_in_a_rolled_back_transaction_leaves_nothing(org_a, delivered, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.publish(org_a, "work-order:created", {"id": 1})
        assert Event.objects.count() == 1  # visible inside the transaction only
        raise RuntimeError("the change fails")
    assert not Event.objects.exists()
    assert callbacks == []
    assert delivered == []


def test_dispatch_happens_only_after_commit(org_a, delivered, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            services.publish(org_a, "work-order:created", {"id": 1})
            services.publish(org_a, "work-order:assigned", {"id": 1})
            assert delivered == []
        # The outer test transaction has not committed either: still nothing.
        assert delivered == []
        assert list(Event.objects.values_list("sequence", flat=True)) == [None, None]
    # On commit: one dispatch for both events, which numbers and delivers them.
    assert len(callbacks) == 1
    assert delivered == [(org_a.pk, 1), (org_a.pk, 2)]
    assert all(e.dispatched_at is not None for e in Event.objects.all())


def test_sequences_are_gap_free_per_organisation(org_a, org_b, delivered, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            services.publish(org_a, "work-order:created", {"n": n})
            services.publish(org_b, "work-order:created", {"n": n})
        services.publish(org_a, "work-order:completed")
    # Later events continue the count. (A second capture block in the same test would not schedule
    # another dispatch: the first callback stays in the test transaction's run_on_commit list.)
    services.publish(org_b, "work-order:completed")
    services.dispatch()

    def numbers(org):
        return list(Event.objects.filter(organization=org).order_by("id").values_list("sequence", flat=True))

    assert numbers(org_a) == [1, 2, 3, 4]
    assert numbers(org_b) == [1, 2, 3, 4]
    assert services.last_sequence(org_a.pk) == 4


def test_the_sweep_delivers_what_a_failed_dispatch_left(org_a, monkeypatch, django_capture_on_commit_callbacks):
    sent, failures = [], ["redis is down"]

    def flaky(event):
        if failures:
            raise ConnectionError(failures.pop())
        sent.append(event.sequence)

    monkeypatch.setattr(services, "deliver_many", per_event(flaky))
    with django_capture_on_commit_callbacks(execute=True):
        services.publish(org_a, "work-order:created")
    event = Event.objects.get()
    assert event.sequence == 1  # numbered, but not delivered
    assert event.dispatched_at is None
    assert event.delivery_attempts == 1
    assert "redis is down" in event.last_error
    assert services.outbox_lag_seconds() >= 0

    assert tasks.sweep_events() == {"numbered": 0, "delivered": 1, "failed": 0}
    event.refresh_from_db()
    assert sent == [1]
    assert event.dispatched_at is not None
    assert event.delivery_attempts == 2
    assert event.last_error == ""
    assert services.sweep() == {"numbered": 0, "delivered": 0, "failed": 0}  # nothing delivered twice


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_publishers_and_numberers_give_exactly_one_to_n(org_a, monkeypatch):
    """8 publishers × 25 events, each in its own transaction (each commit also dispatches), while
    2 threads keep numbering: sequences 1..200, no gap, no duplicate."""
    monkeypatch.setattr(services, "deliver_many", per_event(lambda event: None))
    errors = []
    publishing = threading.Event()
    done = threading.Event()

    def publisher(index):
        try:
            publishing.wait()
            for n in range(25):
                with transaction.atomic():
                    services.publish(org_a, "work-order:created", {"thread": index, "n": n})
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    def numberer():
        try:
            publishing.wait()
            while not done.is_set():
                services.number_pending_events()
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    publishers = [threading.Thread(target=publisher, args=(i,)) for i in range(8)]
    numberers = [threading.Thread(target=numberer) for _ in range(2)]
    for thread in publishers + numberers:
        thread.start()
    publishing.set()
    for thread in publishers:
        thread.join(timeout=30)
    done.set()
    for thread in numberers:
        thread.join(timeout=30)
    assert not errors, errors

    services.number_pending_events()
    numbers = sorted(Event.objects.filter(organization=org_a).values_list("sequence", flat=True))
    assert numbers == list(range(1, 201))
    # Numbered in commit order: within each publisher, sequences grow with n.
    for index in range(8):
        ordered = Event.objects.filter(organization=org_a, payload__thread=index).order_by("sequence")
        assert [e.payload["n"] for e in ordered] == list(range(25))
    assert services.last_sequence(org_a.pk) == 200
