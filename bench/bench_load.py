"""Load: several web processes and two Celery workers on PostgreSQL + Redis, concurrent
clients posting activity batches for a while; then the queue drains and the totals are
checked against what was posted.

Prints requests/s, activities/s (accepted by the API, and tracked end to end), p50/p95/p99
latency, errors, lost or double-counted activities (the sum of posted gross values against
the progress of a milestone every transaction counts for), the CPU split between web,
workers, PostgreSQL and Redis during the load (from `top`), and each process's peak memory.

    .venv/bin/python bench/bench_load.py [--seconds 180] [--web 3] [--workers 2]
        [--clients 8] [--batch 100] [--customers 5000]

Web processes are `gunicorn` when it is installed, otherwise `manage.py runserver
--noreload` (threaded) on consecutive ports, the clients going round-robin across them.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from _benchdb import ROOT, drop, peak_rss_mb, setup

DB = "milestones_bench_load"
BIN = ROOT / ".venv/bin"


def seed(args):
    from django.utils import timezone

    from enrolment.models import Customer
    from milestones import services
    from milestones.services.target_groups import target_group_create
    from promotions.services import promotion_create

    org = services.organisation_get_or_create(slug="load", name="Load", tz="UTC")
    _, token = services.user_get_or_create(organisation=org, username="load", role="integration")
    admin, _ = services.user_get_or_create(
        organisation=org, username="load-admin", role="configurer"
    )
    services.store_create(organisation=org, code="S1")
    services.store_create(organisation=org, code="T1", is_till=True)  # the milestones' till
    month = timezone.now().date().replace(day=1)
    end = month + timedelta(days=400)
    cycle = {"type": "fixed_calendar", "frequency": "monthly", "start": month, "count": 12}
    groups = []
    for i in range(5):
        # M0 counts every transaction (the check); M1 has sub-targets and awards, so
        # events, promotions and points fed back are part of the load; the rest never match.
        target = {"name": f"M{i} spend", "kpi": "gross_sales", "value": Decimal(10**9)}
        if i == 1:
            target.update(value=Decimal(2000), sub_targets=[
                {"name": "M1 half", "criteria": "percentage", "value": Decimal(50)}])  # fmt: skip
        if i >= 2:
            target["rule"] = "currentTxn.value >= 1000000000"
        group, _ = target_group_create(
            organisation=org, user=admin, via_api=True,
            data={"name": f"M{i}", "start": month, "end": end, "till_code": "T1", "cycle": cycle,
                  "targets": [target]},
        )  # fmt: skip
        groups.append(group)
    promotion_create(organisation=org, user=admin, data={
        "name": "M1 reached", "activity": "target_period_elapsed", "start": month, "end": end,
        "condition": "currentEvent.isTargetAchievedEvent == true",
        "actions": [{"type": "award_points", "basis": "fixed", "points": 50}]})  # fmt: skip
    Customer.objects.bulk_create(
        [Customer(organisation=org, mobile=f"8{n:09d}") for n in range(args.customers)],
        batch_size=5000,
    )
    return org, token.key, groups[0]


def start_processes(args, env):
    procs = {"web": [], "worker": []}
    ports = list(range(args.port, args.port + args.web))
    logs = open(Path(os.environ.get("BENCH_LOG", "/tmp/bench_load.log")), "w")  # noqa: SIM115
    gunicorn = shutil.which("gunicorn", path=str(BIN))
    if gunicorn:
        ports = [args.port]
        procs["web"].append(subprocess.Popen(
            [gunicorn, "milestones_site.wsgi", "-w", str(args.web), "-b", f"127.0.0.1:{args.port}"],
            cwd=ROOT, env=env, stdout=logs, stderr=subprocess.STDOUT))  # fmt: skip
    else:
        for port in ports:
            procs["web"].append(subprocess.Popen(
                [str(BIN / "python"), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                cwd=ROOT, env=env, stdout=logs, stderr=subprocess.STDOUT))  # fmt: skip
    for n in range(args.workers):
        procs["worker"].append(subprocess.Popen(
            [str(BIN / "celery"), "-A", "milestones_site", "worker", "-c", "1", "-n", f"load{n}@%h",
             "-Q", "tracking,promotions,evaluation,default", "--loglevel=warning"],
            cwd=ROOT, env=env, stdout=logs, stderr=subprocess.STDOUT))  # fmt: skip
    for port in ports:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/health/")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"web process on {port} did not start (see the log)")
            time.sleep(0.3)
    return procs, ports


def descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout
    children = defaultdict(list)
    for line in out.split("\n"):
        if line.strip():
            p, pp = map(int, line.split())
            children[pp].append(p)
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children[p])
    return found


def peak_mb(pid: int) -> float:
    """VmHWM (peak resident memory) of a process, in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class CpuSampler(threading.Thread):
    """Every few seconds, `top -b -n 2 -d 1` (the second frame is instantaneous): %CPU summed
    per role, by command line."""

    def __init__(self, procs, every=5.0):
        super().__init__(daemon=True)
        self.procs = procs
        self.every = every
        self.samples = []
        self.stop = threading.Event()

    def run(self):
        me = os.getpid()
        while not self.stop.wait(self.every):
            pids = {role: set() for role in ("web", "worker")}  # pool children come and go
            for role, ps in self.procs.items():
                for p in ps:
                    pids[role].update(descendants(p.pid))
            out = subprocess.run(["top", "-b", "-c", "-w", "512", "-n", "2", "-d", "1"],
                                 capture_output=True, text=True).stdout  # fmt: skip
            frame = out.split("\ntop - ")[-1].splitlines()
            totals = defaultdict(float)
            header = next(
                (i for i, line in enumerate(frame) if line.lstrip().startswith("PID")), None
            )
            if header is None:
                continue
            for line in frame[header + 1 :]:
                parts = line.split(None, 11)
                if len(parts) < 12:
                    continue
                pid, cpu, cmd = int(parts[0]), float(parts[8].replace(",", ".")), parts[11]
                if pid in pids["web"]:
                    totals["web"] += cpu
                elif pid in pids["worker"]:
                    totals["workers"] += cpu
                elif pid == me:
                    totals["clients (this script)"] += cpu
                elif cmd.startswith("postgres") and DB in cmd:
                    totals["postgres (this database)"] += cpu
                elif cmd.startswith("postgres"):
                    totals["postgres (other, incl. WAL/checkpointer)"] += cpu
                elif "redis-server" in cmd:
                    totals["redis"] += cpu
                else:
                    totals["everything else on the machine"] += cpu
            self.samples.append(totals)

    def average(self) -> dict:
        keys = {k for s in self.samples for k in s}
        n = max(len(self.samples), 1)
        return {k: sum(s.get(k, 0.0) for s in self.samples) / n for k in sorted(keys)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--web", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--port", type=int, default=8701)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    os.environ["CELERY_KEY_PREFIX"] = f"bench-load-{os.getpid()}:"
    url = setup(DB)
    try:
        return run(args, url)
    finally:
        if not args.keep:
            drop(DB)


def run(args, url):
    from django.db.models import Count, Sum

    from evaluation.models import Activity, ActivityStatus, Contribution, Progress, TargetEvent
    from promotions.models import Award

    org, token, check_group = seed(args)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "milestones_site.settings"}
    procs, ports = start_processes(args, env)
    print(f"{len(procs['web'])} web process(es) on {ports}, {args.workers} workers, "
          f"{args.clients} clients x batches of {args.batch}, {args.seconds:.0f} s")  # fmt: skip
    latencies, errors, posted = [], [], {}
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds
    sampler = CpuSampler(procs)

    def client(n):
        rnd = random.Random(n)
        port_cycle = ports[n % len(ports) :] + ports[: n % len(ports)]
        conns, seq, k = {}, 0, 0
        while time.monotonic() < deadline:
            seq += 1
            now = time.time()
            items = []
            for i in range(args.batch):
                items.append({
                    "id": f"c{n}-{seq}-{i}", "type": "transaction", "store": "S1",
                    "customer": {"mobile": f"8{rnd.randrange(args.customers):09d}"},
                    "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 60)),
                    "gross": rnd.randint(1, 100), "bill_number": f"B{n}-{seq}-{i}"})  # fmt: skip
            body = json.dumps(items)
            for attempt in range(4):  # an integrator retries the same batch (same ids)
                port = port_cycle[k % len(port_cycle)]
                k += 1
                started = time.perf_counter()
                try:
                    conn = conns.get(port) or http.client.HTTPConnection(
                        "127.0.0.1", port, timeout=60
                    )
                    conns[port] = conn
                    conn.request("POST", "/api/v1/activities/", body, {
                        "Content-Type": "application/json", "Authorization": f"Token {token}"})  # fmt: skip
                    response = conn.getresponse()
                    data = response.read()
                    elapsed = time.perf_counter() - started
                    if response.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conns.pop(port, None)
                    if response.status == 202:
                        result = json.loads(data)
                        with lock:
                            latencies.append(elapsed)
                            for item in items:
                                posted[item["id"]] = item["gross"]
                            if result["accepted"] + result["duplicates"] != len(items):
                                errors.append(f"202 with wrong counts: {result}")
                        break
                    with lock:
                        errors.append(f"HTTP {response.status}: {data[:200]!r}")
                except (OSError, http.client.HTTPException) as exc:
                    conns.pop(port, None)
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc} (attempt {attempt + 1})")
                time.sleep(0.2 * (attempt + 1))

    t0 = time.perf_counter()
    sampler.start()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_post = time.perf_counter() - t0
    sampler.stop.set()
    backlog = Activity.objects.filter(status=ActivityStatus.PENDING).count()
    while Activity.objects.filter(status=ActivityStatus.PENDING).exists() or TargetEvent.objects.filter(consumed_at__isnull=True).exists():  # fmt: skip
        time.sleep(0.5)
        if time.perf_counter() - t0 > args.seconds * 10 + 600:
            print("did not drain")
            break
    t_total = time.perf_counter() - t0
    peaks = {role: [max((peak_mb(p) for p in descendants(proc.pid)), default=0) for proc in ps]
             for role, ps in procs.items()}  # fmt: skip
    for ps in procs.values():
        for p in ps:
            p.terminate()
    for ps in procs.values():
        for p in ps:
            p.wait(timeout=60)

    target = check_group.targets.get()
    expected = sum(posted.values())
    tracked = Progress.objects.filter(target=target).aggregate(s=Sum("achieved"))["s"] or 0
    stored = Activity.objects.filter(organisation=org, type="transaction").count()
    contributions = Contribution.objects.filter(progress__target=target).count()
    doubled = (
        Contribution.objects.filter(progress__target=target)
        .values("activity")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    requests, n = len(latencies), len(posted)
    q = statistics.quantiles(latencies, n=100) if requests > 1 else [0] * 99
    print(f"requests: {requests} in {t_post:.1f} s = {requests / t_post:,.1f} requests/s")
    print(f"activities accepted: {n} = {n / t_post:,.0f} activities/s through the API")
    print(f"latency per batch of {args.batch}: p50 {q[49] * 1000:.0f} ms, p95 {q[94] * 1000:.0f} ms, "
          f"p99 {q[98] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")  # fmt: skip
    print(f"errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    print(f"backlog when posting stopped: {backlog} pending activities; drained "
          f"{t_total - t_post:.1f} s later; end to end {n / t_total:,.0f} activities/s")  # fmt: skip
    print(f"stored transactions: {stored} (posted {n}); contributions to M0: {contributions}; "
          f"activities counted twice: {doubled}")  # fmt: skip
    print(f"sum of posted gross: {expected}; progress total of M0: {tracked}; "
          f"lost or double-counted: {Decimal(expected) - tracked}")  # fmt: skip
    events = TargetEvent.objects.count()
    awards = Award.objects.count()
    print(f"target events: {events}; awards: {awards}; points activities fed back: "
          f"{Activity.objects.filter(type='points').count()}")  # fmt: skip
    print("CPU during the load (%, 100 = one core; average of top samples):")
    for role, cpu in sampler.average().items():
        print(f"  {role:42s} {cpu:6.1f}")
    print("peak memory (VmHWM, MB): " + "; ".join(
        f"{role} " + ", ".join(f"{m:.0f}" for m in ms) for role, ms in peaks.items())
        + f"; this script {peak_rss_mb():.0f}")  # fmt: skip
    ok = not errors and stored == n and tracked == expected and not doubled
    print("OK: zero errors, nothing lost, nothing counted twice" if ok else "NOT OK")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
