"""The path past one primary (docs/scaling.md, "Past one primary: Citus"): every hot-path
query on a table that would be distributed by organisation names the organisation, so a
distributed PostgreSQL can route it to the one node that holds that organisation.

The SQL of each hot path is captured while it runs (ingest through the API, tracking of both
folds, consumption with coupons and messages, cycle end of fixed and per-customer cycles,
leaderboards and ranks). A statement passes when:
- each distributed table it inserts into is given `organisation_id` (rows routed by value);
- each distributed table it reads or changes has its `organisation_id` in a WHERE or ON
  condition (filtered, or joined to another's organisation: co-located);
- and the organisation is pinned to a value somewhere (`organisation_id = 1` or `IN (...)`),
  or the rows carry it (an insert), so the statement reaches one organisation's shard.
"""

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from enrolment.models import Customer
from evaluation.models import Activity, ActivityStatus, TargetEvent
from evaluation.tracking import activities_track
from promotions.consumer import target_events_consume
from promotions.services import coupon_series_create, promotion_create
from tests.factories import TargetGroupFactory, TillFactory, monthly_cycle, target_data

pytestmark = pytest.mark.django_db

#: tables distributed by organisation_id, co-located (docs/scaling.md lists the same)
DISTRIBUTED = {
    "enrolment_customer", "enrolment_enrolment", "enrolment_customertargetvalue",
    "enrolment_enrolmentnotification",
    "evaluation_activity", "evaluation_activitykey", "evaluation_cycleanchor", "evaluation_progress",
    "evaluation_targetevent", "evaluation_groupachievement",
    "promotions_award", "promotions_coupon", "promotions_message",
    "promotions_communicationdelivery", "promotions_consumefailure", "webhooks_webhookdelivery",
}  # fmt: skip
#: distributed too, but they have no organisation_id yet: they get the column before the move
#: (docs/scaling.md), so their own statements cannot name it today and are not checked here
#: (the tables they are read with still are)
GET_THE_COLUMN_FIRST = {
    "evaluation_progressday", "evaluation_contribution", "enrolment_audiencemember",
    "promotions_targetvalueseen", "webhooks_webhookattempt",
}  # fmt: skip

KEYWORDS = {
    "on", "where", "set", "inner", "left", "right", "full", "cross", "join", "outer", "group",
    "order", "limit", "using", "values", "as", "returning", "select", "union", "for", "natural",
}  # fmt: skip
REFERENCE = re.compile(r"\b(from|join|update|into)\s+(\w+)(?:\s+(?:as\s+)?(\w+))?")
CLAUSE = re.compile(r"\b(where|on)\b(?!\s+conflict)")
CLAUSE_END = re.compile(
    r"\b(?:(?:inner|left|left outer|right|full|cross)\s+)?join\b|\bwhere\b|\bgroup by\b"
    r"|\border by\b|\blimit\b|\breturning\b|\bon conflict\b|\bselect\b|\bunion\b|\bfor\b"
)
PINNED = re.compile(r"organisation_id\s*(?:=\s*'?\d|in\s*\(\s*'?\d)")
CONTROL = ("savepoint", "release", "rollback", "begin", "commit", "set ")


def _conditions(sql: str) -> str:
    """The text of every WHERE and ON clause of a (lower-cased) statement."""
    parts = []
    for start in CLAUSE.finditer(sql):
        end = CLAUSE_END.search(sql, start.end())
        parts.append(sql[start.end() : end.start() if end else len(sql)])
    return " ".join(parts)


def unrouted(queries) -> list[str]:
    """The captured statements a distribution by organisation could not route (see above)."""
    bad = []
    for q in queries:
        sql = " ".join(q["sql"].replace('"', "").split()).lower()
        if sql.startswith(CONTROL):
            continue
        refs = [
            (kind, table, alias if alias and alias not in KEYWORDS else table)
            for kind, table, alias in REFERENCE.findall(sql)
        ]
        if not any(table in DISTRIBUTED for _, table, _ in refs):
            continue
        conditions = _conditions(sql)
        pinned = bool(PINNED.search(conditions))
        named = True
        for kind, table, name in refs:
            if table not in DISTRIBUTED:
                continue
            if kind == "into":  # the rows carry their organisation: routed by value
                columns = sql.split(f"into {table}", 1)[1].split(")", 1)[0]
                named &= "organisation_id" in columns
                pinned = pinned or "organisation_id" in columns
            else:
                only_one = len(refs) == 1
                named &= f"{name}.organisation_id" in conditions or (
                    only_one and "organisation_id" in conditions
                )
        if not (named and pinned):
            bad.append(q["sql"][:400])
    return bad


@pytest.fixture
def hot_paths(org, configurer, integration, api):
    """A brand with the shapes the hot paths branch on, and a runner that captures each path.

    Spend: fixed monthly cycles, gross sales with a sub-target (the set-based fold on
    PostgreSQL, row by row elsewhere), returns on, a leaderboard. Visits: cyclic 30-day windows
    counting days of activity (anchors, per-day values, per-customer cycle ends). Loyal: a
    quarter counting months of Spend achieved (milestones achieved). A promotion on Spend pays
    points (fed back as an activity), a coupon and a message."""
    org.allow_return_on_target = True
    org.save()
    TillFactory(organisation=org, code="T1")
    span = {"start": date(2026, 3, 1), "end": date(2026, 5, 31), "till_code": "T1"}
    spend = TargetGroupFactory(
        organisation=org, created_by=configurer, name="Spend", **span,
        cycle=monthly_cycle(date(2026, 3, 1), count=3), leaderboard_enabled=True,
        targets=[target_data("Spend", sub_targets=[{"name": "Half", "criteria": "percentage", "value": 50}])],
    )  # fmt: skip
    visits = TargetGroupFactory(
        organisation=org, created_by=configurer, name="Visits", **span, leaderboard_enabled=True,
        cycle={"type": "cyclic", "frequency": "days", "days": 30, "start": date(2026, 3, 1), "count": 2},
        targets=[target_data("Visits", kpi="days_of_activity", value=2)],
    )  # fmt: skip
    TargetGroupFactory(
        organisation=org, created_by=configurer, name="Loyal", **span,
        cycle={"type": "fixed_calendar", "frequency": "quarterly", "start": date(2026, 3, 1), "count": 1},
        targets=[target_data("Loyal", kpi="milestones_achieved", value=1, source_target_group=spend.id)],
    )  # fmt: skip
    coupon_series_create(organisation=org, code="WIN", generate=20)
    promotion_create(organisation=org, data={
        "name": "P", "start": "2026-01-01", "end": "2026-12-31",
        "condition": 'currentEvent.targetAchieved("Spend") >= 0',
        "actions": [{"type": "award_points", "basis": "fixed", "points": 10},
                    {"type": "issue_coupon", "series": "WIN"},
                    {"type": "send_message", "channel": "sms", "template": "{points} and {coupon.code}"}]})  # fmt: skip

    def activity(i, day, gross, kind="transaction"):
        return {"id": f"{kind}-{i}-{day}", "type": kind, "customer": {"mobile": f"91234000{i:02d}"},
                "occurred_at": datetime(2026, 3, day, 10, tzinfo=UTC).isoformat(),
                "gross": gross, "net": gross, "bill_number": f"B{i}"}  # fmt: skip

    def run(*, organisation_id):
        found: dict[str, list[str]] = {}

        def capture(path, call):
            with CaptureQueriesContext(connection) as seen:
                call()
            found.setdefault(path, []).extend(unrouted(seen.captured_queries))

        def post(items):
            response = api(integration).post("/api/v1/activities/", items, format="json")
            assert response.status_code == 202, response.content

        def track(when):
            ids = list(
                Activity.objects.filter(status=ActivityStatus.PENDING).values_list("id", flat=True)
            )
            at = datetime(2026, 3, when, 12, tzinfo=UTC)

            def call():
                result = activities_track(activity_ids=ids, organisation_id=organisation_id, now=at)
                assert result.activities == len(ids)

            capture("tracking", call)

        def consume():
            waiting = TargetEvent.objects.filter(consumed_at__isnull=True)
            ids = list(waiting.values_list("id", flat=True))

            def call():
                result = target_events_consume(event_ids=ids, organisation_id=organisation_id)
                assert result.claimed == len(ids)

            capture("consumption", call)

        capture("ingest", lambda: post([activity(i, 3, 600 + 600 * (i == 0)) for i in range(5)]))
        track(3)
        consume()
        second = [activity(1, 5, 50), activity(0, 6, 100, kind="return")]
        capture("ingest", lambda: post(second))
        track(6)
        with open("/dev/null", "w") as quiet:
            as_of = "2026-06-10T00:00:00+00:00"
            capture("cycle end", lambda: call_command("evaluate_cycles", as_of=as_of, stdout=quiet))
        consume()

        def read(url):
            response = api(configurer).get(url)
            assert response.status_code == 200, response.content
            assert response.json()

        for target in (spend.targets.get(), visits.targets.get()):
            url = f"/api/v1/targets/{target.pk}/leaderboard/?period=1"
            capture("leaderboards", lambda url=url: read(url))
        customer = Customer.objects.get(mobile="9123400000")
        capture("leaderboards", lambda: read(f"/api/v1/customers/{customer.pk}/ranks/"))
        return found

    return run


def test_every_hot_path_query_names_the_organisation(org, hot_paths):
    found = hot_paths(organisation_id=org.id)
    bad = {path: sqls for path, sqls in found.items() if sqls}
    assert bad == {}, "\n".join(f"{path}: {sql}" for path, sqls in bad.items() for sql in sqls)
    assert set(found) == {"ingest", "tracking", "consumption", "cycle end", "leaderboards"}


def test_the_scenario_reaches_every_branch_it_is_there_for(org, hot_paths):
    """The check above means something only if the paths did their work."""
    from evaluation.models import CycleAnchor, GroupAchievement, Progress
    from promotions.models import Award, Message

    hot_paths(organisation_id=org.id)
    achieved = {
        (p.target.name, p.customer.mobile[-1]): p.achieved
        for p in Progress.objects.select_related("target", "customer").filter(cycle_ordinal=1)
    }
    assert achieved[("Spend", "0")] == Decimal(1100)  # 1200 less the return of 100
    assert achieved[("Visits", "1")] == Decimal(2)  # two days
    assert achieved[("Loyal", "0")] == Decimal(1)  # Spend's March fed the quarter
    assert CycleAnchor.objects.count() == 5
    assert GroupAchievement.objects.filter(customer__mobile="9123400000").count() == 2
    assert TargetEvent.objects.filter(type="period_elapsed").count() > 0
    assert TargetEvent.objects.filter(consumed_at__isnull=True).count() == 0
    kinds = set(Award.objects.filter(status="done").values_list("type", flat=True))
    assert kinds == {"award_points", "issue_coupon", "send_message"}
    assert Message.objects.exists()


def test_without_the_organisation_only_the_discovery_query_is_unrouted(org, hot_paths):
    """A task given only ids (a sweep, an older caller) first asks which organisations they
    belong to: one statement per batch, by primary key, that reaches every node. Everything
    after it is routed. Callers that know the organisation pass it and skip that statement."""
    found = hot_paths(organisation_id=None)
    discovery = {
        path: [re.sub(r"IN \([^)]*\)", "IN (...)", sql.replace('"', "")) for sql in bad]
        for path, bad in found.items()
        if bad
    }
    assert set(discovery) == {"tracking", "consumption"}
    assert {sql.split(" FROM ")[1] for sql in discovery["tracking"]} == {
        "evaluation_activity WHERE evaluation_activity.id IN (...)"
    }
    assert len(discovery["tracking"]) == 2  # one per batch
    assert all(" FROM evaluation_targetevent " in sql for sql in discovery["consumption"])
    assert len(discovery["consumption"]) == 2


def test_the_docs_name_every_table_the_check_treats_as_distributed():
    docs = (Path(settings.BASE_DIR) / "docs" / "scaling.md").read_text()
    section = docs.split("## Past one primary: Citus", 1)[1]
    missing = sorted(t for t in DISTRIBUTED | GET_THE_COLUMN_FIRST if f"`{t}`" not in section)
    assert missing == []


def test_the_check_tells_routed_statements_from_the_others():
    progress = 'SELECT "evaluation_progress"."id" FROM "evaluation_progress" '
    join = 'INNER JOIN "enrolment_customer" ON ("evaluation_progress"."customer_id" = "enrolment_customer"."id") '  # fmt: skip
    statements = {
        progress + 'WHERE "evaluation_progress"."id" = 7': False,
        progress
        + 'WHERE ("evaluation_progress"."organisation_id" = 3 AND "evaluation_progress"."id" = 7)': True,  # fmt: skip
        progress + join + 'WHERE "evaluation_progress"."organisation_id" = 3': False,
        progress
        + join
        + 'WHERE ("evaluation_progress"."organisation_id" = 3 AND "enrolment_customer"."organisation_id" = 3)': True,  # fmt: skip
        "SELECT e.id FROM evaluation_targetevent e LEFT JOIN promotions_consumefailure f ON (f.event_id = e.id AND f.organisation_id = e.organisation_id) WHERE e.id IN (1, 2)": False,  # fmt: skip
        'INSERT INTO "evaluation_activity" ("external_id", "customer_id") VALUES (%s, %s)': False,
        'INSERT INTO "evaluation_activity" ("organisation_id", "external_id") VALUES (%s, %s)': True,
        'UPDATE "milestones_target" SET "name" = \'x\' WHERE "milestones_target"."id" = 1': True,
    }
    flagged = set(unrouted([{"sql": sql} for sql in statements]))
    assert {sql: sql not in flagged for sql in statements} == statements
