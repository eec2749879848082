"""Webhook delivery on PostgreSQL: N target events (default 10,000) written in tracking-sized
batches through the real outbox path (`evaluation.signals.target_events_written`, in each
batch's transaction), delivered by sender processes (`webhooks.sending.deliveries_send`, as
the Celery task runs it) to a local receiver process that verifies every signature.

Prints deliveries/s, the delay from fact to delivery (p50/p95/max: a delivery row is
written in its fact's transaction, so `delivered_at - created_at` is that delay) and lost
(facts with no delivery the receiver verified: must be 0).

    .venv/bin/python bench/bench_webhooks.py [--events 10000] [--senders 2] [--rate 0]
        [--backlog]  # write everything first: the senders' own rate, delay = backlog wait
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import threading
import time
from datetime import date
from decimal import Decimal

from _benchdb import drop, setup

DB = "milestones_bench_webhooks"
BATCH = 500  # target events per transaction, as a tracking batch writes them


def receiver_main(port_out, stop, result_out):
    """A receiver in its own process: verifies each request, answers 204, counts."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from standardwebhooks import Webhook

    secret = port_out.recv()
    hook = Webhook(secret)
    seen: dict[str, int] = {}
    facts: set[int] = set()
    bad = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                payload = hook.verify(body, dict(self.headers))
            except Exception:  # noqa: BLE001 - counted as bad, answered 400
                with lock:
                    bad[0] += 1
                self.send_response(400)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            with lock:
                wid = self.headers["webhook-id"]
                seen[wid] = seen.get(wid, 0) + 1
                facts.add(json.loads(json.dumps(payload))["data"]["id"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256  # listen() backlog: the default 5 drops connections

    server = Server(("127.0.0.1", 0), Handler)
    port_out.send(server.server_address[1])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop.wait()
    server.shutdown()
    result_out.send(
        {"requests": sum(seen.values()), "ids": len(seen), "facts": sorted(facts), "bad": bad[0]}
    )


def sender_main(done):
    """A sender process: what the `deliver_due` task does, in a loop until told to stop."""
    import django
    from django.db import connections

    django.setup()
    connections.close_all()
    from webhooks.sending import deliveries_send

    while not done.is_set():
        if deliveries_send(time_budget=5).attempted == 0:
            time.sleep(0.05)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--senders", type=int, default=2, help="sender processes (workers)")
    parser.add_argument(
        "--rate", type=float, default=0, help="events/s written (0: as fast as possible)"
    )
    parser.add_argument(
        "--backlog",
        action="store_true",
        help="write every event first, then start the senders (their rate alone)",
    )
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    setup(DB)
    from django.db import connection, connections, transaction
    from django.utils import timezone

    from enrolment.models import Customer
    from evaluation.models import TargetEvent
    from evaluation.signals import target_events_written
    from milestones import services
    from milestones.services.target_groups import target_group_create
    from webhooks.models import WebhookDelivery
    from webhooks.services import endpoint_create

    org = services.organisation_get_or_create(slug="bench", name="Bench", tz="UTC")
    services.store_create(organisation=org, code="T1", is_till=True)
    group, _ = target_group_create(
        organisation=org, via_api=True,
        data={"name": "Monthly", "start": date(2026, 1, 1), "end": date(2026, 12, 31), "till_code": "T1",
              "cycle": {"type": "fixed_calendar", "frequency": "monthly", "start": date(2026, 1, 1), "count": 12},
              "targets": [{"name": "Spend", "kpi": "gross_sales", "value": Decimal(1000)}]},
    )  # fmt: skip
    target = group.targets.get()
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO enrolment_customer (organisation_id, mobile, name, is_loyalty_member, attributes, created_at) "
            "SELECT %s, '9' || lpad(g::text, 9, '0'), '', true, '{}'::jsonb, now() FROM generate_series(1, %s) g",
            [org.id, args.events],
        )
    customers = list(
        Customer.objects.filter(organisation=org).order_by("id").values_list("id", flat=True)
    )

    ctx = mp.get_context("fork")
    port_in, port_out = ctx.Pipe()
    result_in, result_out = ctx.Pipe()
    stop, done = ctx.Event(), ctx.Event()
    receiver = ctx.Process(target=receiver_main, args=(port_out, stop, result_out))
    receiver.start()
    endpoint = endpoint_create(
        organisation=org, url="http://127.0.0.1:1/", events=["target.achieved"]
    )
    port_in.send(endpoint.secret)
    port = port_in.recv()
    endpoint.url = f"http://127.0.0.1:{port}/hooks"
    endpoint.save(update_fields=["url"])

    def start_senders():
        connections.close_all()
        procs = [ctx.Process(target=sender_main, args=(done,)) for _ in range(args.senders)]
        for p in procs:
            p.start()
        return procs

    senders = [] if args.backlog else start_senders()
    started = time.perf_counter()
    written = 0
    for start in range(0, args.events, BATCH):
        chunk = customers[start : start + BATCH]
        now = timezone.now()
        with transaction.atomic():
            rows = TargetEvent.objects.bulk_create(
                [
                    TargetEvent(
                        organisation_id=org.id, type="target_achieved",
                        dedupe_key=f"target_achieved:{target.id}:{cid}:1", customer_id=cid,
                        target_group_id=group.id, target=target, cycle_ordinal=1,
                        period_name="Monthly P1", achieved=Decimal(1200), defined=Decimal(1000),
                        is_target_achieved_event=True, occurred_at=now,
                    )
                    for cid in chunk
                ]
            )  # fmt: skip
            target_events_written.send(
                sender=TargetEvent, organisation_id=org.id, event_ids=[r.pk for r in rows]
            )
        written += len(chunk)
        if args.rate:
            ahead = written / args.rate - (time.perf_counter() - started)
            if ahead > 0:
                time.sleep(ahead)
    write_s = time.perf_counter() - started
    if args.backlog:
        senders = start_senders()
        started = time.perf_counter()

    pending = WebhookDelivery.objects.exclude(status="delivered")
    deadline = time.perf_counter() + 600
    while pending.exists() and time.perf_counter() < deadline:
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    done.set()
    for p in senders:
        p.join()
    stop.set()
    got = result_in.recv()
    receiver.join()

    event_ids = set(TargetEvent.objects.values_list("id", flat=True))
    delivered = WebhookDelivery.objects.filter(status="delivered")
    delays = sorted(
        (d - c).total_seconds() for c, d in delivered.values_list("created_at", "delivered_at")
    )

    def pct(p):
        return delays[min(len(delays) - 1, int(p * len(delays)))] if delays else float("nan")

    lost = len(event_ids - set(got["facts"]))
    print(f"events written:       {written:,} in {write_s:.1f} s ({written / write_s:,.0f}/s), "
          f"batches of {BATCH}, {args.senders} sender processes, "
          f"{'unpaced' if not args.rate else f'{args.rate:,.0f}/s'}"
          f"{', all written before the senders start' if args.backlog else ''}")  # fmt: skip
    print(f"deliveries:           {delivered.count():,} delivered in {elapsed:.1f} s "
          f"-> {delivered.count() / elapsed:,.0f} deliveries/s")  # fmt: skip
    print(
        f"fact -> delivery:     p50 {pct(0.5):.2f} s, p95 {pct(0.95):.2f} s, max {delays[-1]:.2f} s"
    )
    print(f"receiver:             {got['requests']:,} requests, {got['ids']:,} distinct webhook-ids, "
          f"{got['bad']} bad signatures")  # fmt: skip
    print(f"lost:                 {lost}")
    if not args.keep:
        drop(DB)
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
