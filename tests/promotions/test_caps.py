"""Budget caps: total points, total coupons, points per customer per cycle. A cap is never
passed (three consumers racing on PostgreSQL included); an award a cap refuses is `capped`
with its reason, in the ledger and the API; at 80 % the configurers get one email."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection, connections

from evaluation.ingest import activities_ingest
from evaluation.models import Activity, TargetEvent
from evaluation.tracking import activities_track
from promotions.consumer import target_events_consume
from promotions.models import Award, Promotion
from promotions.services import coupon_series_create

REACHED = 'currentEvent.targetAchieved("ABC") >= currentEvent.targetDefined("ABC")'
START = datetime(2026, 3, 2, tzinfo=UTC)


def _events(org, customers: int, *, per_customer: int = 1) -> list[int]:
    """`customers` customers each reach ABC (1000) in March; with per_customer=2 each also
    reaches it again in April (a second cycle)."""
    items = []
    for c in range(customers):
        for k in range(per_customer):
            items.append({
                "id": f"t-{c}-{k}", "type": "transaction", "customer": {"mobile": f"90000001{c:02d}"},
                "occurred_at": START + timedelta(days=31 * k, minutes=c), "gross": Decimal(1000),
            })  # fmt: skip
    activities_ingest(organisation=org, items=items)
    activities_track(
        activity_ids=list(Activity.objects.values_list("id", flat=True)),
        now=datetime(2026, 5, 10, tzinfo=UTC),
    )
    return list(TargetEvent.objects.order_by("id").values_list("id", flat=True))


@pytest.mark.django_db
def test_the_points_cap_pays_until_the_next_award_would_pass_it_then_records_capped(
    org, make_group, promo, api, configurer
):
    make_group("ABC")
    p = promo(REACHED, cap_points_total=Decimal(250))
    target_events_consume(event_ids=_events(org, 4))
    rows = list(Award.objects.order_by("id").values_list("status", "points"))
    assert rows == [("done", Decimal(100)), ("done", Decimal(100)), ("capped", None),
                    ("capped", None)]  # fmt: skip
    capped = Award.objects.filter(status="capped").first()
    assert capped.error == (
        "Points cap reached: 200 of 250 points already paid; these 100 points would pass it."
    )
    body = api(configurer).get(f"/api/v1/awards/?promotion={p.pk}&status=capped").json()
    assert [(a["status"], a["reason"]) for a in body] == [("capped", capped.error)] * 2
    shown = api(configurer).get(f"/api/v1/promotions/{p.pk}/").json()["caps"]
    assert shown == {"points_total": 250.0, "coupons_total": None,
                     "points_per_customer_per_cycle": None,
                     "spent": {"points": 200.0, "coupons": 0}}  # fmt: skip


@pytest.mark.django_db
def test_the_coupon_cap_and_the_per_customer_per_cycle_cap(org, make_group, promo):
    make_group("ABC")
    coupon_series_create(organisation=org, code="WIN", generate=10)
    promo(REACHED, [{"type": "issue_coupon", "series": "WIN"}], cap_coupons_total=2)
    promo(REACHED, [{"type": "award_points", "basis": "fixed", "points": 100},
                    {"type": "award_points", "basis": "fixed", "points": 60}],
          cap_points_per_customer_per_cycle=Decimal(150))  # fmt: skip
    target_events_consume(event_ids=_events(org, 3, per_customer=2))
    coupons = Award.objects.filter(type="issue_coupon")
    assert sorted(coupons.values_list("status", flat=True)) == ["capped"] * 4 + ["done"] * 2
    # per customer and cycle: 100 paid, the 60 would make 160 > 150; the next cycle starts again
    points = Award.objects.filter(type="award_points")
    for customer_id, cycle in points.values_list("customer_id", "cycle_ordinal").distinct():
        mine = points.filter(customer_id=customer_id, cycle_ordinal=cycle).order_by("action_index")
        assert list(mine.values_list("status", "points")) == [
            ("done", Decimal(100)),
            ("capped", None),
        ]
    assert points.filter(status="done").count() == 6  # 3 customers x 2 cycles


@pytest.mark.django_db
def test_a_replayed_event_does_not_pay_a_capped_award_later_and_the_cap_is_kept(
    org, make_group, promo
):
    make_group("ABC")
    p = promo(REACHED, cap_points_total=Decimal(100))
    ids = _events(org, 2)
    target_events_consume(event_ids=ids)
    Promotion.objects.filter(pk=p.pk).update(cap_points_total=Decimal(1000))
    TargetEvent.objects.update(consumed_at=None)
    target_events_consume(event_ids=ids)
    assert sorted(Award.objects.values_list("status", flat=True)) == ["capped", "done"]


@pytest.mark.django_db
def test_at_80_percent_of_a_cap_the_configurers_get_one_email(
    org, make_group, promo, configurer, django_capture_on_commit_callbacks
):
    configurer.email = "alice@example.com"
    configurer.save()
    make_group("ABC")
    p = promo(REACHED, cap_points_total=Decimal(500))
    ids = _events(org, 6)
    for event_id in ids:  # one at a time, as the worker would
        with django_capture_on_commit_callbacks(execute=True):
            target_events_consume(event_ids=[event_id])
    assert len(mail.outbox) == 1  # at 400 of 500, not again at 500
    assert mail.outbox[0].to == ["alice@example.com"]
    assert "80 %" in mail.outbox[0].body and p.name in mail.outbox[0].subject
    assert Award.objects.filter(status="done").count() == 5
    assert Award.objects.filter(status="capped").count() == 1


@pytest.mark.django_db
def test_a_negative_cap_is_a_400_naming_the_field_and_saves_nothing(api, configurer, make_group):
    make_group("ABC")
    response = api(configurer).post(
        "/api/v1/promotions/",
        {"name": "P", "start": "2026-01-01", "end": "2026-12-31", "condition": REACHED,
         "caps": {"points_total": -5}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert "points_total" in response.json()["caps"]
    assert not Promotion.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL")
def test_three_consumers_racing_never_pass_the_points_cap(org, make_group, promo):
    make_group("ABC")
    promo(REACHED, cap_points_total=Decimal(1000))  # room for 10 of the 30 awards
    ids = _events(org, 30)
    barrier, errors = threading.Barrier(3), []

    def consume(share):
        try:
            barrier.wait()
            for event_id in share:
                target_events_consume(event_ids=[event_id])
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=consume, args=(ids[i::3],)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    done = Award.objects.filter(status="done")
    assert done.count() == 10 and sum(done.values_list("points", flat=True)) == Decimal(1000)
    assert Award.objects.filter(status="capped").count() == 20


@pytest.mark.django_db
def test_member_care_shows_a_capped_award_with_its_reason(
    org, make_group, promo, admin_client_for, member_care
):
    make_group("ABC")
    promo(REACHED, name="Spend bonus", cap_points_total=Decimal(100))
    target_events_consume(event_ids=_events(org, 2))
    capped = Award.objects.get(status="capped")
    url = f"/care/customers/{capped.customer_id}/milestones/{capped.target_id}/"
    html = admin_client_for(member_care).get(url).content.decode()
    assert "mc-action--capped" in html
    assert "Spend bonus (not given, capped: Points cap reached: 100 of 100 points" in html


@pytest.mark.django_db
def test_the_promotion_list_shows_spend_against_caps_and_a_banner_at_80_percent(
    org, make_group, promo, admin_client_for, configurer
):
    make_group("ABC")
    promo(REACHED, name="Near", cap_points_total=Decimal(250), cap_coupons_total=5)
    promo(REACHED, name="Uncapped")
    target_events_consume(event_ids=_events(org, 2))  # 200 of 250 points paid by "Near"
    page = admin_client_for(configurer).get("/admin/promotions/promotion/").content.decode()
    assert "200 / 250 points; 0 / 5 coupons" in page
    assert "no cap" in page
    assert "Near its budget cap: Near: 80 % of its points cap (250) is used." in page
    ledger = admin_client_for(configurer).get("/admin/promotions/award/").content.decode()
    assert ">100<" in ledger and "100.0000" not in ledger  # plain numbers


@pytest.mark.django_db
def test_caps_are_set_on_the_promotion_form(org, make_group, promo, admin_client_for, configurer):
    make_group("ABC")
    p = promo(REACHED)
    form = admin_client_for(configurer).get(f"/admin/promotions/promotion/{p.pk}/change/")
    html = form.content.decode()
    assert "Budget caps" in html
    for name in ("cap_points_total", "cap_coupons_total", "cap_points_per_customer_per_cycle"):
        assert f'name="{name}"' in html
