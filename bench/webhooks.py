"""Benchmark: webhook deliveries fanned out from the outbox, against a floor measured in the same run.

    DATABASE_URL=postgres://…/maint_bench_webhooks python bench/webhooks.py --events 10000 --subscriptions 10

A local receiver (http.server, threads, keep-alive) on 127.0.0.1 records when each `webhook-id` arrives.

- **platform**: `--events` events are published (one `publish_many` per 500, each committed; the commit time is
  each event's start), numbered by the dispatcher, then `--workers` processes (Celery's default concurrency: the
  CPU count) run the delivery job (`maintenance_site.webhooks.services.deliver_due`) until every delivery succeeded:
  deliveries per second, and p50 / p99 from commit to receipt.
- **floor**: one process POSTs the same signed bodies (built beforehand) through a pool of keep-alive connections
  (`--floor-threads` threads, one `http.client` connection each): deliveries per second.

The issue's targets: platform throughput ≥ 50% of the floor's, p99 commit → receipt ≤ 5 s. `--json FILE` writes the
figures. The database is emptied of the benchmark's organisation first (it must be migrated: `manage.py migrate`).
"""

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_site.settings")
os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.db import connections, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from maintenance_site import progress  # noqa: E402
from maintenance_site.events import services as events  # noqa: E402
from maintenance_site.tenancy import SYSTEM  # noqa: E402
from maintenance_site.tenancy import services as tenancy  # noqa: E402
from maintenance_site.tenancy.models import Organization  # noqa: E402
from maintenance_site.webhooks import services as webhooks  # noqa: E402
from maintenance_site.webhooks.models import WebhookDelivery, WebhookSubscription  # noqa: E402

SLUG = "bench-webhooks"


class Receiver:
    def __init__(self):
        self.arrivals: dict[str, float] = {}
        self.count = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.time()
                with receiver.lock:
                    receiver.arrivals.setdefault(self.headers.get("webhook-id", ""), now)
                    receiver.count += 1
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 1024  # http.server's default backlog (5) drops SYNs: 1 s retransmits, not our cost

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def prepare(url: str, subscriptions: int) -> Organization:
    organization = Organization.objects.filter(slug=SLUG).first()
    if organization is None:
        organization = tenancy.create_organization(name="Webhook bench", slug=SLUG)
    WebhookSubscription.objects.filter(organization=organization).delete()
    for number in range(subscriptions):
        webhooks.create_subscription(
            organization, actor=SYSTEM, url=f"{url}/{number}", event_types=["*"], description=f"bench {number}"
        )
    return organization


def publish(organization, count: int) -> dict[int, float]:
    """Publish and number `count` events; the commit time of each (by sequence)."""
    committed: dict[int, float] = {}
    batch = 500
    with progress.bars() as bars, bars.step("publishing events", total=count) as bar:
        for start in range(0, count, batch):
            size = min(batch, count - start)
            with transaction.atomic():
                events.publish_many(organization, "work-order:created", [{"id": start + i} for i in range(size)])
            committed_at = time.time()
            events.number_pending_events(organization_id=organization.pk)
            last = events.last_sequence(organization.pk)
            for sequence in range(last - size + 1, last + 1):
                committed[sequence] = committed_at
            bar.advance(size)
    return committed


def worker(seconds: float, expected: int) -> None:
    """One worker process: the delivery job again and again (as beat and the dispatcher's hook would start it),
    until every delivery succeeded."""
    connections.close_all()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = webhooks.deliver_due(seconds=30)
        if not any(result.values()):
            time.sleep(0.02)
            if WebhookDelivery.objects.filter(status="succeeded").count() >= expected:
                return


def run_platform(organization, args, receiver: Receiver) -> tuple[float, dict[int, float]]:
    """Workers started first, then the events published while they run: commit → receipt as in production."""
    expected = args.events * args.subscriptions
    connections.close_all()
    started = time.time()
    processes = [
        multiprocessing.Process(target=worker, args=(args.timeout, expected), daemon=True) for _ in range(args.workers)
    ]
    for process in processes:
        process.start()
    committed = publish(organization, args.events)
    with progress.bars() as bars, bars.step("platform deliveries", total=expected) as bar:
        seen = 0
        while any(process.is_alive() for process in processes):
            time.sleep(0.5)
            bar.advance(receiver.count - seen)
            seen = receiver.count
        bar.advance(receiver.count - seen)
    for process in processes:
        process.join()
    return time.time() - started, committed


def floor_bodies(organization) -> list[tuple[str, bytes, dict]]:
    deliveries = WebhookDelivery.objects.select_related("subscription__organization", "event").filter(
        organization=organization
    )
    bodies = []
    for delivery in deliveries:
        body = webhooks.message_body(delivery)
        headers = webhooks.signed_headers(delivery, body)
        headers["webhook-id"] = "floor-" + headers["webhook-id"]
        bodies.append((f"/{delivery.subscription_id}", body.encode(), headers))
    return bodies


def run_floor(bodies, port: int, threads: int, receiver: Receiver) -> float:
    chunks = [bodies[index::threads] for index in range(threads)]

    def post_all(chunk):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for path, body, headers in chunk:
            connection.request("POST", path, body=body, headers=headers)
            connection.getresponse().read()
        connection.close()

    started = time.time()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(post_all, chunks))
    return time.time() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--subscriptions", type=int, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--floor-threads", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--json")
    args = parser.parse_args()

    receiver = Receiver()
    organization = prepare(f"http://127.0.0.1:{receiver.port}", args.subscriptions)
    expected = args.events * args.subscriptions
    seconds, committed = run_platform(organization, args, receiver)
    delivered = WebhookDelivery.objects.filter(organization=organization, status="succeeded")
    by_id = {
        f"msg_{message_id.hex}": sequence for message_id, sequence in delivered.values_list("message_id", "sequence")
    }
    latencies = sorted(
        receiver.arrivals[key] - committed[sequence] for key, sequence in by_id.items() if key in receiver.arrivals
    )
    platform_rate = len(latencies) / seconds

    bodies = floor_bodies(organization)
    before = receiver.count
    floor_seconds = run_floor(bodies, receiver.port, args.floor_threads, receiver)
    floor_rate = (receiver.count - before) / floor_seconds

    figures = {
        "events": args.events,
        "subscriptions": args.subscriptions,
        "workers": args.workers,
        "deliveries": len(latencies),
        "expected": expected,
        "received_by_platform": before,
        "platform_seconds": round(seconds, 2),
        "platform_per_second": round(platform_rate, 1),
        "floor_per_second": round(floor_rate, 1),
        "ratio": round(platform_rate / floor_rate, 3),
        "p50_commit_to_receipt_s": round(statistics.median(latencies), 3) if latencies else None,
        "p99_commit_to_receipt_s": round(latencies[int(len(latencies) * 0.99) - 1], 3) if latencies else None,
        "at": timezone.now().isoformat(),
    }
    print(json.dumps(figures, indent=2))
    print(
        f"platform {figures['platform_per_second']}/s vs floor {figures['floor_per_second']}/s "
        f"({figures['ratio']:.0%}, target ≥ 50%); p99 commit→receipt {figures['p99_commit_to_receipt_s']} s (≤ 5 s)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
