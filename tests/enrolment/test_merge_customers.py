"""Merging the customers one person became (issue 16, A): `manage.py merge_customers --org
SLUG` normalises every mobile in the organisation's default_country and moves the duplicates'
activities, progress, target events, awards, enrolments and memberships onto the oldest,
with totals exact and every merge audited; `--dry-run` changes nothing; the migration only
reports."""

import importlib
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command

from enrolment import audiences
from enrolment.merge import customer_relations
from enrolment.models import AudienceGroup, Customer, CustomerTargetValue, Enrolment
from evaluation.models import Activity, Progress, ProgressDay, TargetEvent
from evaluation.tracking import activities_track
from milestones.models import AuditEntry
from promotions.consumer import target_events_consume
from promotions.models import Award
from promotions.services import promotion_create

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC)
REACHED = (
    'currentEvent.targetAchieved("Spend") > currentEvent.targetDefined("Spend")'
    " && currentEvent.isTargetAchievedEvent == true"
)


@pytest.fixture
def spend(org, make_group, configurer):
    """Spend 1,000 in the current period (half of it a sub-target), days active 3, and a
    promotion paying 100 points when the spend target is reached."""
    first, last = NOW.date() - timedelta(days=10), NOW.date() + timedelta(days=10)
    group = make_group(
        "Spend group", start=first, end=last,
        cycle={"type": "custom_periods", "periods": [{"name": "Now", "start": first, "end": last}]},
        targets=[
            {"name": "Spend", "kpi": "gross_sales", "value": Decimal(1000),
             "sub_targets": [{"name": "Half", "criteria": "percentage", "value": 50}]},
            {"name": "Days", "kpi": "days_of_activity", "value": Decimal(3)},
        ],
    )  # fmt: skip
    promotion_create(
        organisation=org,
        data={"name": "100 on Spend", "activity": "target_period_elapsed", "start": first,
              "end": last, "condition": REACHED,
              "actions": [{"type": "award_points", "basis": "fixed", "points": 100}]},
        user=configurer,
    )  # fmt: skip
    return group


def legacy(org, *mobiles):
    """Customers stored before the organisation had a default country (digits), oldest first."""
    out = []
    for n, mobile in enumerate(mobiles):
        customer = Customer.objects.create(organisation=org, mobile=mobile, name=f"C{n}")
        Customer.objects.filter(pk=customer.pk).update(created_at=NOW - timedelta(days=30 - n))
        out.append(customer)
    return out


def spend_on(customer, gross, days_ago, n):
    """One tracked transaction, through ingest's row shape."""
    activity = Activity.objects.create(
        organisation_id=customer.organisation_id, external_id=f"t-{customer.id}-{n}",
        type="transaction", customer=customer, occurred_at=NOW - timedelta(days=days_ago),
        payload={"gross": str(gross), "net": str(gross)},
    )  # fmt: skip
    activities_track(activity_ids=[activity.id])
    return activity


def consume(*customers):
    ids = TargetEvent.objects.filter(customer__in=customers).values_list("id", flat=True)
    target_events_consume(event_ids=list(ids))


def india(org):
    org.default_country = "IN"
    org.save(update_fields=["default_country"])


def progress(customer, target_name):
    return Progress.objects.get(customer=customer, target__name=target_name)


def merge(org, *extra) -> str:
    out = io.StringIO()
    call_command("merge_customers", "--org", org.slug, *extra, stdout=out)
    return out.getvalue()


def snapshot(org):
    """Every row a merge could touch, as plain values."""
    return {
        "customers": sorted(Customer.objects.values_list("id", "mobile", "email", "name")),
        "activities": sorted(Activity.objects.values_list("id", "customer_id")),
        "progress": sorted(Progress.objects.values_list("id", "customer_id", "achieved")),
        "days": sorted(ProgressDay.objects.values_list("id", "progress_id", "day")),
        "events": sorted(TargetEvent.objects.values_list("id", "customer_id", "dedupe_key")),
        "awards": sorted(Award.objects.values_list("id", "customer_id", "event_id", "achievement")),
        "enrolments": sorted(Enrolment.objects.values_list("id", "customer_id", "is_active")),
        "audit": AuditEntry.objects.count(),
    }


# --- merging -------------------------------------------------------------------------------------


def test_the_merge_moves_everything_to_the_oldest_with_exact_totals(org, spend, make_group):
    a, b = legacy(org, "9000000077", "919000000077")
    spend_on(a, 400, days_ago=3, n=1)
    spend_on(a, 0, days_ago=2, n=2)
    spend_on(b, 700, days_ago=2, n=1)
    spend_on(b, 0, days_ago=1, n=2)
    consume(a, b)
    # before: nobody reached 1,000; B passed the sub-target; two days active each
    assert progress(a, "Spend").achieved_at is None and progress(b, "Spend").achieved_at is None
    assert TargetEvent.objects.filter(customer=b, type="sub_target_achieved").count() == 1
    custom = make_group("Custom", per_customer=True)
    target = custom.targets.get()
    for customer, value in ((a, 10), (b, 20)):
        CustomerTargetValue.objects.create(organisation=org, target=target, customer=customer,
                                           cycle_ordinal=2, value=value)  # fmt: skip
    CustomerTargetValue.objects.create(organisation=org, target=target, customer=b,
                                       cycle_ordinal=3, value=30)  # fmt: skip
    listed = audiences.audience_group_create(
        organisation=org, name="Both", kind="list", customer_ids=[a.id, b.id]
    )
    india(org)

    output = merge(org)

    assert "Merged 1 duplicate customer(s) into 1" in output
    assert list(Customer.objects.values_list("id", "mobile", "name")) == [
        (a.id, "+919000000077", "C0")
    ]
    assert set(Activity.objects.values_list("customer_id", flat=True)) == {a.id}
    # sales summed; the days both were active on counted once (days 3, 2, 1 ago)
    assert progress(a, "Spend").achieved == Decimal(1100)
    assert progress(a, "Days").achieved == Decimal(3)
    assert ProgressDay.objects.filter(progress=progress(a, "Days")).count() == 3
    # together they reached the target: its event is written as tracking would, and paid
    assert progress(a, "Spend").achieved_at is not None
    reached = TargetEvent.objects.get(customer=a, type="target_achieved", target__name="Spend")
    assert reached.dedupe_key == f"target_achieved:{reached.target_id}:{a.id}:1"
    consume(a)
    assert Award.objects.get().event_id == reached.id
    # B's sub-target event now A's, under A's key; nothing paid or written twice
    half = TargetEvent.objects.get(type="sub_target_achieved")
    assert half.customer_id == a.id and f":{a.id}:" in half.dedupe_key
    # three days together reach "Days" (3) too; each target reached once
    assert sorted(
        TargetEvent.objects.filter(type="target_achieved").values_list("target__name", flat=True)
    ) == ["Days", "Spend"]
    # enrolments, the customer's own target values (A's kept where both had one), the list
    assert Enrolment.objects.filter(customer=a, target_group=spend, is_active=True).count() == 1
    assert not Enrolment.objects.exclude(customer=a).exists()
    assert sorted(CustomerTargetValue.objects.values_list("customer_id", "cycle_ordinal", "value")) == [
        (a.id, 2, Decimal(10)), (a.id, 3, Decimal(30)),
    ]  # fmt: skip
    assert AudienceGroup.objects.get(pk=listed.pk).member_count == 1
    entry = AuditEntry.objects.get(action="merge_customers")
    assert entry.object_id == a.id and entry.changes["from"] == [b.id]
    assert entry.changes["mobiles"] == ["9000000077", "919000000077"]
    assert entry.changes["rows"]["activities_moved"] == 2


def test_a_duplicate_achievement_keeps_one_event_and_every_award_paid(org, spend):
    a, b = legacy(org, "9000000077", "09000000077")
    spend_on(a, 1200, days_ago=2, n=1)
    spend_on(b, 1500, days_ago=1, n=1)
    consume(a, b)  # each was paid 100 points for reaching Spend
    assert Award.objects.count() == 2
    india(org)

    merge(org)

    assert Customer.objects.get().pk == a.id
    awards = list(Award.objects.order_by("id"))
    # the ledger is what was given: both awards stay, now the kept customer's
    assert [w.customer_id for w in awards] == [a.id, a.id]
    assert sum(w.points for w in awards) == Decimal(200)
    assert progress(a, "Spend").achieved == Decimal(2700)
    kept = TargetEvent.objects.get(dedupe_key__startswith="target_achieved:", customer=a)
    # B's event was a duplicate, still needed by the award it paid: kept aside, not resent
    assert TargetEvent.objects.filter(dedupe_key__startswith="merged:").count() == 1
    assert awards[0].event_id == kept.id


def test_an_award_on_a_duplicate_event_moves_to_the_event_kept_and_is_never_paid_again(org, spend):
    a, b = legacy(org, "9000000077", "919000000077")
    spend_on(a, 1200, days_ago=2, n=1)
    spend_on(b, 1500, days_ago=1, n=1)
    consume(b)  # only B's achievement was paid; A's event waits for the consumer
    india(org)

    merge(org)

    kept = TargetEvent.objects.get(type="target_achieved")  # the duplicate is gone
    award = Award.objects.get()
    assert (award.customer_id, award.event_id) == (a.id, kept.id)
    assert award.achievement == kept.achievement
    consume(a)  # the kept event, unconsumed, is consumed now: it pays nothing twice
    assert Award.objects.count() == 1


def test_a_dry_run_reports_and_changes_nothing(org, spend):
    a, b = legacy(org, "9000000077", "919000000077")
    (c,) = legacy(org, "9000000078")
    spend_on(a, 400, days_ago=2, n=1)
    spend_on(b, 700, days_ago=1, n=1)
    consume(a, b)
    india(org)
    before = snapshot(org)

    output = merge(org, "--dry-run")

    assert snapshot(org) == before
    assert f"+919000000077: #{a.id} <- #{b.id}" in output
    assert '"evaluation.Activity": 1' in output
    assert (
        "Would rewrite 1 other mobile(s)" in output
        and f"#{c.id} 9000000078 -> +919000000078" in output
    )


def test_mobiles_that_only_change_spelling_are_rewritten_and_audited(org):
    a, b = legacy(org, "9000000077", "9000000078")
    (bad,) = legacy(org, "1234567")
    india(org)
    output = merge(org)
    assert dict(Customer.objects.values_list("id", "mobile")) == {
        a.id: "+919000000077", b.id: "+919000000078", bad.id: "1234567",
    }  # fmt: skip
    assert "1 mobile(s) are not possible numbers in IN" in output
    assert AuditEntry.objects.get(action="normalise_mobiles").changes["mobiles_rewritten"] == 2
    assert "Merged 0 duplicate" in merge(org)  # a second run has nothing left to do


def test_without_a_default_country_the_command_does_nothing(org):
    legacy(org, "9000000077", "919000000077")
    assert "no default_country" in merge(org)
    assert Customer.objects.count() == 2
    output = merge(org, "--dry-run", "--country", "IN")  # a preview for a country not set yet
    assert "Would merge 1 duplicate customer(s) into 1" in output
    assert Customer.objects.count() == 2


def test_every_table_that_points_at_a_customer_is_moved_by_the_merge():
    """A new table with a customer column must be taught to the merge (else the merge
    refuses rather than lose its rows): this list is the merge's."""
    assert {r.related_model._meta.label for r in customer_relations()} == {
        "enrolment.Enrolment", "enrolment.CustomerTargetValue", "enrolment.AudienceMember",
        "enrolment.EnrolmentNotification", "evaluation.Activity", "evaluation.CycleAnchor",
        "evaluation.Progress", "evaluation.TargetEvent", "evaluation.GroupAchievement",
        "promotions.Coupon", "promotions.Award", "promotions.Message",
        "promotions.CommunicationDelivery", "promotions.TargetValueSeen",
    }  # fmt: skip


def test_the_migration_reports_collisions_and_changes_nothing(org, other_org, capsys):
    legacy(org, "9000000077", "919000000077", "9000000078")
    Customer.objects.create(organisation=other_org, mobile="9000000001")
    Customer.objects.create(organisation=other_org, mobile="+919000000001")
    other_org.default_country = "IN"
    other_org.save(update_fields=["default_country"])
    before = sorted(Customer.objects.values_list("id", "mobile"))
    migration = importlib.import_module("enrolment.migrations.0007_report_mobile_collisions")
    migration.report_collisions(django_apps, None)
    printed = capsys.readouterr().out
    assert sorted(Customer.objects.values_list("id", "mobile")) == before
    assert "globex (IN): 1 mobile(s) name several customers" in printed
    assert "acme (no default_country): 1 pair(s) look like one person in IN" in printed
    assert "9000000077 and" in printed and "919000000077" in printed
