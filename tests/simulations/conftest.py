"""Simulations: a past window of stored activities, the simulation of a milestone over it,
and the same milestone made for real, backdated and re-processed, read in the simulation's
shape (`real_numbers`), so a test compares the two."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import factory
import pytest
from django.db.models import Count, Q, Sum

from enrolment.models import CustomerTargetValue, Enrolment
from evaluation.cycle_end import evaluate_cycles
from evaluation.models import CycleAnchor, Progress, TargetEvent, TargetEventType
from evaluation.reprocess import reprocess_execute, reprocess_start
from milestones.cycles import add_months
from milestones.models import CycleType
from milestones.selectors import org_today
from milestones_site.celery import app as celery_app
from promotions.consumer import target_events_consume
from promotions.models import ActionType, Award, AwardStatus
from simulations.models import Simulation
from simulations.report import bucket_of
from tests.e2e.conftest import browser, new_page, screenshot  # noqa: F401 - the browser's fixtures
from tests.factories import (
    ActivityFactory,
    CustomerFactory,
    OrganisationFactory,
    StoreFactory,
    TillFactory,
)


class SimulationFactory(factory.django.DjangoModelFactory):
    """A simulation row as the API stores it (pending unless told), of a milestone laid over
    August to October 2026."""

    class Meta:
        model = Simulation

    organisation = factory.SubFactory(OrganisationFactory)
    created_by = None
    input = factory.LazyFunction(
        lambda: {"target_group_id": 1, "window": {"start": "2026-08-01", "end": "2026-10-31"}}
    )


@pytest.fixture
def eager():
    """Celery tasks run inline (the simulation, and the promotions consumer on the real side)."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture
def window(org):
    """The three whole calendar months before this one, in the organisation's time zone."""
    first = org_today(org).replace(day=1)
    return add_months(first, -3), first - timedelta(days=1)


@pytest.fixture
def stores(org):
    return [
        StoreFactory(organisation=org, code="S1", zone="North", concept="Fuel"),
        StoreFactory(organisation=org, code="S2", zone="South", concept="Retail"),
        StoreFactory(organisation=org, code="S3", zone="South", concept="Fuel"),
        TillFactory(organisation=org, code="T1"),
    ]


def at(org, day: date, minutes: int) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=org.tzinfo) + timedelta(minutes=minutes)


@pytest.fixture
def seed(org, stores, window):
    """seed(customers=24, seed=7, returns=False, events=False) -> customers, with stored
    (tracked) activities over the window and a little before and after it."""

    def make(customers=24, seed=7, returns=False, events=False):
        rng = random.Random(seed)
        start, end = window
        span = (end - start).days + 1
        people = [
            CustomerFactory(
                organisation=org, name=f"Customer {i}", email=f"c{i}@example.com" if i % 3 else None,
                is_loyalty_member=i % 11 != 5,
            )
            for i in range(customers)
        ]  # fmt: skip
        n = 0
        for i, customer in enumerate(people):
            bills = []
            for _ in range(rng.randint(0, 14) if i % 7 else 0):
                day = start + timedelta(days=rng.randint(-8, span + 8))
                gross = Decimal(rng.choice([40, 120, 250, 400, 600, 900, 1500]))
                discount = Decimal(rng.choice([0, 0, 10, 25]))
                quantity = rng.randint(1, 6)
                n += 1
                bill = f"B{n}"
                bills.append((day, bill, gross))
                ActivityFactory(
                    customer=customer, external_id=f"t{n}", type="transaction", status="done",
                    occurred_at=at(org, day, rng.randint(0, 1439)),
                    store_code=rng.choice(["S1", "S2", "S3", "X9"]), bill_number=bill,
                    payload={"gross": str(gross), "discount": str(discount), "net": str(gross - discount),
                             "extended_fields": {"tax": str(rng.randint(0, 30))},
                             "line_items": [{"sku": "P-1", "category": rng.choice(["petrol", "food"]),
                                             "quantity": str(quantity), "gross": str(gross),
                                             "net": str(gross - discount)}]},
                )  # fmt: skip
            if returns:
                for day, bill, gross in rng.sample(bills, k=min(len(bills), 2)):
                    n += 1
                    back = min(gross, Decimal(rng.choice([40, 100, 300])))
                    ActivityFactory(
                        customer=customer, external_id=f"r{n}", type="return", status="done",
                        occurred_at=at(org, day + timedelta(days=rng.randint(0, 20)), 30),
                        store_code="S1", bill_number=bill,
                        payload={"gross": str(back), "net": str(back), "line_items": [
                            {"sku": "P-1", "category": "petrol", "quantity": "1", "gross": str(back), "net": str(back)}]},
                    )  # fmt: skip
            if events:
                for _ in range(rng.randint(0, 10)):
                    n += 1
                    day = start + timedelta(days=rng.randint(0, span - 1))
                    ActivityFactory(
                        customer=customer, external_id=f"e{n}", type="event", status="done",
                        occurred_at=at(org, day, rng.randint(0, 1439)), name="AddToCart",
                        payload={"attributes": {"price": rng.choice([100, 300, 800])}},
                    )  # fmt: skip
        return people

    return make


@pytest.fixture
def simulate(api, configurer, eager, django_capture_on_commit_callbacks):
    """simulate(body) -> the finished simulation's JSON, through the API and the task."""

    def run(body, expect=202):
        with django_capture_on_commit_callbacks(execute=True):
            response = api(configurer).post("/api/v1/simulations/", body, format="json")
        assert response.status_code == expect, response.content
        if expect != 202:
            return response.json()
        got = api(configurer).get(f"/api/v1/simulations/{response.json()['id']}/").json()
        assert got["status"] == "done", got
        return got

    return run


@pytest.fixture
def reprocess_for_real(eager, django_capture_on_commit_callbacks):
    """reprocess_for_real(group): re-process its stored activities, evaluate every cycle
    due and consume every target event, as the workers would."""

    def run(group):
        with django_capture_on_commit_callbacks(execute=True):
            run_ = reprocess_start(target_group=group, queue=False)
            reprocess_execute(run_id=run_.id)
        with django_capture_on_commit_callbacks(execute=True):
            evaluate_cycles(inline=True)
        with django_capture_on_commit_callbacks(execute=True):
            target_events_consume(limit=1_000_000)

    return run


def _participants(group, ordinal: int) -> set[int]:
    enrolled = set(
        Enrolment.objects.filter(target_group=group, is_active=True).values_list(
            "customer_id", flat=True
        )
    )
    if group.has_fixed_periods:
        return enrolled
    if group.cycle_type == CycleType.CYCLIC:
        return enrolled & set(
            CycleAnchor.objects.filter(target_group=group).values_list("customer_id", flat=True)
        )
    return enrolled & set(
        Progress.objects.filter(target__target_group=group, cycle_ordinal=ordinal).values_list(
            "customer_id", flat=True
        )
    )


def real_numbers(group, cycles: int) -> dict:
    """What the real milestone holds after re-processing, in the simulation result's shape
    (the contract's keys, plus `top`)."""
    targets = []
    for target in group.targets.order_by("ordinal", "id"):
        out = []
        for ordinal in range(1, cycles + 1):
            who = _participants(group, ordinal)
            rows = {
                p.customer_id: p
                for p in Progress.objects.filter(target=target, cycle_ordinal=ordinal)
            }
            values = {
                v.customer_id: v.value
                for v in CustomerTargetValue.objects.filter(target=target, cycle_ordinal=ordinal)
            }
            distribution = dict.fromkeys(("0-25", "25-50", "50-75", "75-100", "achieved"), 0)
            for customer_id in who:
                row = rows.get(customer_id)
                defined = (
                    row.target_value
                    if row
                    else values.get(customer_id, target.value_for_cycle(ordinal))
                )
                value = row.achieved if row else Decimal(0)
                distribution[bucket_of(value, defined, bool(row and row.achieved_at))] += 1
            reached = dict(
                TargetEvent.objects.filter(
                    type=TargetEventType.SUB_TARGET_ACHIEVED, target=target, cycle_ordinal=ordinal
                )
                .values_list("sub_target__name")
                .annotate(n=Count("id"))
            )
            paid = Award.objects.filter(
                target=target, cycle_ordinal=ordinal, status=AwardStatus.DONE
            ).aggregate(
                count=Count("id"),
                points=Sum("points", filter=Q(type=ActionType.AWARD_POINTS)),
                coupons=Count("id", filter=Q(type=ActionType.ISSUE_COUPON)),
            )
            top = max((rows[c].achieved if c in rows else Decimal(0) for c in who), default=None)
            out.append(
                {
                    "participants": len(who),
                    "achieved": sum(1 for c in who if c in rows and rows[c].achieved_at),
                    "sub_targets": [
                        {"name": s.name, "reached": reached.get(s.name, 0)}
                        for s in target.sub_targets.all()
                    ],
                    "distribution": distribution,
                    "awards": {
                        "count": paid["count"],
                        "points": _n(paid["points"] or 0),
                        "coupons": paid["coupons"],
                    },
                    "top": None if top is None else _n(top),
                }
            )
        targets.append({"name": target.name, "cycles": out})
    done = Award.objects.filter(target_group=group, status=AwardStatus.DONE)
    liability = {
        "points": _n(
            done.filter(type=ActionType.AWARD_POINTS).aggregate(s=Sum("points"))["s"] or 0
        ),
        "coupons": done.filter(type=ActionType.ISSUE_COUPON).count(),
    }
    return {"targets": targets, "liability": liability}


def _n(value):
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else float(value)


def simulated_numbers(result: dict) -> dict:
    """The simulation's result with the keys `real_numbers` reads."""
    keys = ("participants", "achieved", "sub_targets", "distribution", "top")
    return {
        "targets": [
            {
                "name": t["name"],
                "cycles": [
                    {
                        **{k: c[k] for k in keys},
                        "awards": {k: c["awards"][k] for k in ("count", "points", "coupons")},
                    }
                    for c in t["cycles"]
                ],
            }
            for t in result["targets"]
        ],
        "liability": result["liability"],
    }
