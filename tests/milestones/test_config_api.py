"""Configuration API: every rule of the design's Configuration section, refused with a message."""

from datetime import timedelta

import pytest
from django.utils import timezone

from milestones.models import AuditEntry, Period, Target, TargetGroup, Template
from tests.factories import StoreFactory, TillFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/target-groups/"


def today():
    return timezone.now().date()


def d(days: int) -> str:
    return (today() + timedelta(days=days)).isoformat()


def payload(name="Monthly spend", **over):
    body = {
        "name": name,
        "start": "2026-01-01",
        "end": "2026-12-31",
        "till_code": "T1",
        "cycle": {
            "type": "fixed_calendar",
            "frequency": "monthly",
            "start": "2026-01-01",
            "count": 3,
        },
        "targets": [{"name": f"{name} target", "kpi": "gross_sales", "value": 1000}],
    }
    body.update(over)
    return body


def future(name="Future spend", **over):
    return payload(
        name,
        start=d(10),
        end=d(400),
        cycle={"type": "fixed_calendar", "frequency": "monthly", "start": d(10), "count": 3},
        **over,
    )


@pytest.fixture(autouse=True)
def tills(org, other_org):
    """Every milestone names a till: each organisation has its till T1."""
    TillFactory(organisation=org)
    TillFactory(organisation=other_org)


@pytest.fixture
def client(api, configurer):
    return api(configurer)


@pytest.fixture
def stores(org):
    StoreFactory(organisation=org, code="S1", zone="North", concept="Fuel")
    TillFactory(organisation=org, code="T1")


def test_create_a_milestone_with_cycles_targets_and_sub_targets(client, stores):
    body = payload(
        till_code="T1",
        targets=[
            {
                "name": "Spend 1000",
                "kpi": "gross_sales",
                "value": 1000,
                "period_values": {"P2": 1500, "P3": 2000},
                "scope": {"stores": ["S1"], "zones": [], "concepts": []},
                "rule": "currentTxn.value >= 100",
                "sub_targets": [{"name": "ABC1", "criteria": "percentage", "value": 30}],
            }
        ],
    )
    response = client.post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["id"] and data["is_active"] is True and data["tracking_type"] == "single"
    assert data["till_code"] == "T1" and data["created_by"] == "alice"
    assert [(p["name"], p["start"], p["end"]) for p in data["periods"]] == [
        ("Monthly spend P1", "2026-01-01", "2026-01-31"),
        ("Monthly spend P2", "2026-02-01", "2026-02-28"),
        ("Monthly spend P3", "2026-03-01", "2026-03-31"),
    ]
    target = data["targets"][0]
    assert target["id"] and target["entity"] == "transaction"
    assert target["period_values"] == {"Monthly spend P2": 1500.0, "Monthly spend P3": 2000.0}
    assert target["sub_targets"][0]["id"] and target["sub_targets"][0]["criteria"] == "percentage"
    stored = Target.objects.get(pk=target["id"])
    assert stored.value_for_cycle(1) == 1000 and stored.value_for_cycle(3) == 2000


def test_periods_start_at_midnight_in_the_org_timezone(client):
    client.post(URL, payload(), format="json")
    first = Period.objects.get(name="Monthly spend P1")
    assert first.starts_at.isoformat() == "2025-12-31T18:30:00+00:00"  # Asia/Kolkata 00:00


def test_group_names_are_unique_per_org(client, api, other_configurer):
    assert client.post(URL, payload(), format="json").status_code == 201
    response = client.post(
        URL, payload(targets=[{"name": "Other", "kpi": "gross_sales", "value": 1}]), format="json"
    )
    assert response.status_code == 400
    assert "already exists" in response.json()["name"][0]
    assert api(other_configurer).post(URL, payload(), format="json").status_code == 201


def test_target_and_period_names_are_unique_per_org(client):
    client.post(URL, payload(), format="json")
    clash = payload(
        "Second", targets=[{"name": "Monthly spend target", "kpi": "gross_sales", "value": 5}]
    )
    response = client.post(URL, clash, format="json")
    assert response.status_code == 400
    assert "A target named 'Monthly spend target' already exists" in response.json()["targets"][0]
    periods = payload(
        "Third",
        cycle={
            "type": "custom_periods",
            "periods": [{"name": "Monthly spend P1", "start": "2026-01-01", "end": "2026-01-10"}],
        },
    )
    response = client.post(URL, periods, format="json")
    assert "period names are unique" in response.json()["cycle"][0]
    assert TargetGroup.objects.count() == 1


def test_name_cannot_be_edited(client):
    group = client.post(URL, payload(), format="json").json()
    response = client.patch(f"{URL}{group['id']}/", {"name": "Renamed"}, format="json")
    assert response.status_code == 400
    assert response.json()["name"] == ["The milestone's name cannot be changed after creation."]
    assert TargetGroup.objects.get().name == "Monthly spend"


def test_description_and_target_value_are_editable(client):
    group = client.post(URL, payload(), format="json").json()
    target_id = group["targets"][0]["id"]
    response = client.patch(
        f"{URL}{group['id']}/",
        {"description": "New", "targets": [{"id": target_id, "value": 2500}]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["description"] == "New"
    assert response.json()["targets"][0]["value"] == 2500.0


def test_at_most_100_cycles(client):
    response = client.post(
        URL,
        payload(
            cycle={
                "type": "fixed_calendar",
                "frequency": "daily",
                "start": "2026-01-01",
                "count": 101,
            }
        ),
        format="json",
    )
    assert response.status_code == 400
    assert "100" in str(response.json()["cycle"])
    many = [{"name": f"C{i}", "start": "2026-01-01", "end": "2026-01-01"} for i in range(101)]
    response = client.post(
        URL, payload(cycle={"type": "custom_periods", "periods": many}), format="json"
    )
    assert "at most 100 cycles" in response.json()["cycle"][0]
    assert not TargetGroup.objects.exists()


def test_at_most_50_targets(client):
    targets = [{"name": f"T{i}", "kpi": "transaction_count", "value": 1} for i in range(51)]
    response = client.post(URL, payload(targets=targets), format="json")
    assert response.status_code == 400
    assert "at most 50 targets" in response.json()["targets"][0]
    targets.pop()
    assert client.post(URL, payload(targets=targets), format="json").status_code == 201


def test_cycles_must_lie_inside_the_duration(client):
    response = client.post(URL, payload(end="2026-02-15"), format="json")
    assert response.status_code == 400
    assert "after the milestone ends on 2026-02-15" in response.json()["cycle"][0]
    response = client.post(
        URL,
        payload(
            cycle={
                "type": "fixed_calendar",
                "frequency": "monthly",
                "start": "2025-12-01",
                "count": 1,
            }
        ),
        format="json",
    )
    assert "must lie inside the milestone's duration" in response.json()["cycle"][0]


def test_buffers_before_the_first_and_after_the_last_cycle_are_allowed(client):
    body = payload(
        start="2026-01-01",
        end="2026-12-31",
        cycle={"type": "fixed_calendar", "frequency": "monthly", "start": "2026-03-01", "count": 2},
    )
    response = client.post(URL, body, format="json")
    assert response.status_code == 201
    assert [p["start"] for p in response.json()["periods"]] == ["2026-03-01", "2026-04-01"]


def test_fixed_calendar_without_a_count_fills_the_duration(client):
    body = payload(
        cycle={"type": "fixed_calendar", "frequency": "quarterly", "start": "2026-01-01"}
    )
    assert len(client.post(URL, body, format="json").json()["periods"]) == 4


def test_custom_periods_may_not_overlap(client):
    periods = [
        {"name": "Spring", "start": "2026-03-01", "end": "2026-05-31"},
        {"name": "Late spring", "start": "2026-05-15", "end": "2026-06-30"},
    ]
    response = client.post(
        URL, payload(cycle={"type": "custom_periods", "periods": periods}), format="json"
    )
    assert response.status_code == 400
    assert "Periods Spring and Late spring overlap" in response.json()["cycle"][0]


def test_custom_periods_keep_their_names_and_dates(client):
    periods = [
        {"name": "Spring", "start": "2026-03-01", "end": "2026-05-31"},
        {"name": "Summer", "start": "2026-06-01", "end": "2026-08-15"},
    ]
    data = client.post(
        URL, payload(cycle={"type": "custom_periods", "periods": periods}), format="json"
    ).json()
    assert [(p["name"], p["end"]) for p in data["periods"]] == [
        ("Spring", "2026-05-31"),
        ("Summer", "2026-08-15"),
    ]


def test_till_achievement_only_with_the_same_target_for_all(client):
    body = payload(
        target_value_mode="per_customer",
        enrolment={"mode": "custom_list"},
        cycle={"type": "till_achievement", "count": 5},
    )
    response = client.post(URL, body, format="json")
    assert response.status_code == 400
    assert "same target for all customers" in response.json()["cycle"][0]
    body = payload(cycle={"type": "till_achievement", "count": 5})
    data = client.post(URL, body, format="json").json()
    assert data["cycle"]["type"] == "till_achievement" and data["periods"] == []


def test_per_customer_targets_with_a_cyclic_window(client):
    body = payload(
        target_value_mode="per_customer",
        enrolment={"mode": "custom_list"},
        cycle={
            "type": "cyclic",
            "frequency": "days",
            "days": 30,
            "start": "2026-09-01",
            "count": 3,
        },
    )
    response = client.post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["enrolment"]["mode"] == "custom_list"


def test_per_customer_targets_need_the_custom_list(client):
    body = payload(target_value_mode="per_customer", enrolment={"mode": "all_customers"})
    response = client.post(URL, body, format="json")
    assert "custom_list" in response.json()["enrolment"][0]


def test_cyclic_window_needs_a_frequency_and_a_count(client):
    response = client.post(
        URL, payload(cycle={"type": "cyclic", "start": "2026-01-01", "count": 3}), format="json"
    )
    assert "needs a frequency" in response.json()["cycle"][0]
    response = client.post(
        URL,
        payload(cycle={"type": "cyclic", "frequency": "monthly", "start": "2026-01-01"}),
        format="json",
    )
    assert "number of cycles" in response.json()["cycle"][0]


def test_percentage_sub_targets_only_on_gross_or_net_sales(client):
    targets = [
        {
            "name": "Litres",
            "kpi": "quantity",
            "entity": "line_item",
            "value": 100,
            "sub_targets": [{"name": "Half", "criteria": "percentage", "value": 50}],
        }
    ]
    response = client.post(URL, payload(targets=targets), format="json")
    assert response.status_code == 400
    assert (
        "percentage sub-targets are only for gross and net sales" in response.json()["targets"][0]
    )
    targets[0]["sub_targets"][0]["criteria"] = "absolute"
    assert client.post(URL, payload(targets=targets), format="json").status_code == 201


def test_sub_target_criteria_is_fixed_after_creation_only_the_value_changes(client):
    body = payload(
        targets=[
            {
                "name": "Spend",
                "kpi": "gross_sales",
                "value": 1000,
                "sub_targets": [{"name": "ABC1", "criteria": "percentage", "value": 30}],
            }
        ]
    )
    group = client.post(URL, body, format="json").json()
    target = group["targets"][0]
    sub = target["sub_targets"][0]
    change = {
        "targets": [
            {
                "id": target["id"],
                "sub_targets": [
                    {"id": sub["id"], "name": "ABC1", "criteria": "absolute", "value": 300}
                ],
            }
        ]
    }
    response = client.patch(f"{URL}{group['id']}/", change, format="json")
    assert response.status_code == 400
    assert "criteria cannot be changed" in response.json()["targets"][0]
    change["targets"][0]["sub_targets"][0].update(criteria="percentage", value=40)
    response = client.patch(f"{URL}{group['id']}/", change, format="json")
    assert response.status_code == 200
    assert response.json()["targets"][0]["sub_targets"][0]["value"] == 40.0


def test_backdating_through_the_api_goes_past_six_months_with_a_warning(client):
    body = payload(
        "Old one",
        start=d(-400),
        end=d(30),
        cycle={"type": "fixed_calendar", "frequency": "monthly", "start": d(-400), "count": 1},
    )
    response = client.post(URL, body, format="json")
    assert response.status_code == 201
    assert "more than 6 months in the past" in response.json()["warnings"][0]
    assert response.json()["reprocess_suggested"] is True


def test_the_screens_refuse_backdating_past_six_months(org, configurer):
    from django.core.exceptions import ValidationError

    from milestones.services.target_groups import target_group_create

    start = today() - timedelta(days=200)
    data = {
        "name": "Old",
        "start": start,
        "end": today(),
        "till_code": "T1",
        "cycle": {"type": "till_achievement", "count": 1},
        "targets": [{"name": "t", "kpi": "transaction_count", "value": 1}],
    }
    with pytest.raises(ValidationError) as exc:
        target_group_create(organisation=org, data=data, user=configurer, via_api=False)
    assert "at most 6 months in the past" in exc.value.message_dict["start"][0]


def test_status_is_derived_from_the_dates_and_filters_use_it(client):
    client.post(URL, future("Upcoming one"), format="json")
    client.post(
        URL,
        payload("Live one", start=d(-5), end=d(60), cycle={"type": "till_achievement", "count": 2}),
        format="json",
    )
    client.post(
        URL,
        payload(
            "Ended one", start=d(-100), end=d(-1), cycle={"type": "till_achievement", "count": 2}
        ),
        format="json",
    )
    names = lambda q: sorted(g["name"] for g in client.get(URL + q).json())  # noqa: E731
    assert names("?status=upcoming") == ["Upcoming one"]
    assert names("?status=live") == ["Live one"]
    assert names("?status=ended") == ["Ended one"]
    assert {g["name"]: g["status"] for g in client.get(URL).json()} == {
        "Upcoming one": "upcoming",
        "Live one": "live",
        "Ended one": "ended",
    }


def test_list_filters_search_kpi_tracking_type_and_dates(client):
    client.post(URL, payload("Spend A"), format="json")
    client.post(
        URL,
        payload("Visits B", targets=[{"name": "Visits", "kpi": "days_of_activity", "value": 5}]),
        format="json",
    )
    unified = payload(
        "Combo C",
        unified_mode="all",
        targets=[
            {"name": "C1", "kpi": "gross_sales", "value": 1},
            {"name": "C2", "kpi": "transaction_count", "value": 1},
        ],
    )
    client.post(URL, unified, format="json")
    names = lambda q: sorted(g["name"] for g in client.get(URL + q).json())  # noqa: E731
    assert names("?search=visits") == ["Visits B"]
    assert names("?kpi=gross_sales") == ["Combo C", "Spend A"]
    assert names("?tracking_type=unified") == ["Combo C"]
    assert names("?tracking_type=single") == ["Spend A", "Visits B"]
    assert names("?starts_after=2026-01-01&ends_before=2026-12-31") == [
        "Combo C",
        "Spend A",
        "Visits B",
    ]
    assert names("?ends_before=2026-06-30") == []


def test_unified_needs_two_targets(client):
    response = client.post(URL, payload(unified_mode="any"), format="json")
    assert "at least two targets" in response.json()["targets"][0]


def test_activate_and_deactivate(client):
    group = client.post(URL, future(), format="json").json()
    assert client.post(f"{URL}{group['id']}/deactivate/").json()["is_active"] is False
    assert client.get(URL + "?is_active=false").json()[0]["id"] == group["id"]
    assert client.post(f"{URL}{group['id']}/activate/").json()["is_active"] is True


def test_an_ended_milestone_cannot_be_reactivated(client):
    group = client.post(
        URL,
        payload("Ended", start=d(-100), end=d(-1), cycle={"type": "till_achievement", "count": 2}),
        format="json",
    ).json()
    client.post(f"{URL}{group['id']}/deactivate/")
    response = client.post(f"{URL}{group['id']}/activate/")
    assert response.status_code == 400
    assert response.json()["is_active"] == ["An ended milestone cannot be re-activated."]
    assert TargetGroup.objects.get().is_active is False


def test_templates_are_installed_and_prefill_everything(client):
    templates = {t["name"]: t for t in client.get("/api/v1/templates/").json()}
    assert {"Catalyze product sales", "Boost customer spend"} <= set(templates)
    spend = templates["Boost customer spend"]
    response = client.post(
        URL,
        {"name": "From template", "start": d(1), "end": d(200), "template": spend["id"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    target = data["targets"][0]
    assert (
        target["kpi"] == "gross_sales"
        and target["rule"] == "currentTxn.value >= 100"
        and target["value"] == 10000.0
    )
    assert [s["name"] for s in target["sub_targets"]] == ["Spend 20%", "Spend 50%"]
    assert data["cycle"]["frequency"] == "monthly" and len(data["periods"]) == 3


def test_template_values_stay_editable(client):
    spend = next(
        t for t in client.get("/api/v1/templates/").json() if t["name"] == "Boost customer spend"
    )
    body = {"name": "Weekly spend", "start": d(1), "end": d(200), "template": spend["id"], "cycle": {"frequency": "weekly", "count": 4},
            "targets": [{"name": "Weekly 500", "kpi": "net_sales", "value": 500}]}  # fmt: skip
    data = client.post(URL, body, format="json").json()
    assert data["cycle"]["frequency"] == "weekly" and len(data["periods"]) == 4
    assert [(t["name"], t["kpi"], t["value"]) for t in data["targets"]] == [
        ("Weekly 500", "net_sales", 500.0)
    ]


def test_save_as_template_then_start_from_it(client, org):
    group = client.post(URL, payload(), format="json").json()
    saved = client.post(
        f"{URL}{group['id']}/save-as-template/", {"name": "Our spend"}, format="json"
    )
    assert saved.status_code == 201
    assert Template.objects.get(name="Our spend").organisation == org
    data = client.post(
        URL,
        {
            "name": "Again",
            "start": "2026-01-01",
            "end": "2026-12-31",
            "template": saved.json()["id"],
        },
        format="json",
    ).json()
    assert data["targets"][0]["kpi"] == "gross_sales" and len(data["periods"]) == 3


def test_another_orgs_template_is_unknown(client, api, other_configurer):
    group = api(other_configurer).post(URL, payload(), format="json").json()
    tid = (
        api(other_configurer)
        .post(f"{URL}{group['id']}/save-as-template/", {"name": "Theirs"}, format="json")
        .json()["id"]
    )
    assert tid not in [t["id"] for t in client.get("/api/v1/templates/").json()]
    response = client.post(
        URL,
        {"name": "Mine", "start": "2026-01-01", "end": "2026-12-31", "template": tid},
        format="json",
    )
    assert response.status_code == 400 and "Unknown template" in response.json()["template"][0]


def test_clone_copies_configuration_but_not_enrolment(client):
    group = client.post(URL, future(), format="json").json()
    response = client.post(
        f"{URL}{group['id']}/clone/", {"name": "Future spend copy"}, format="json"
    )
    assert response.status_code == 201, response.json()
    clone = response.json()
    assert clone["id"] != group["id"] and clone["name"] == "Future spend copy"
    assert [p["start"] for p in clone["periods"]] == [p["start"] for p in group["periods"]]
    assert (
        clone["targets"][0]["kpi"] == "gross_sales"
        and clone["targets"][0]["id"] != group["targets"][0]["id"]
    )
    assert clone["enrolment"].get("enrolled", 0) == 0


def test_an_ended_milestone_cannot_be_cloned(client):
    group = client.post(
        URL,
        payload("Ended", start=d(-100), end=d(-1), cycle={"type": "till_achievement", "count": 2}),
        format="json",
    ).json()
    response = client.post(f"{URL}{group['id']}/clone/", {"name": "Copy"}, format="json")
    assert response.status_code == 400
    assert "Only a Live or Upcoming milestone can be cloned." in str(response.json())


def test_rules_are_validated_at_save_with_the_position(client):
    bad = payload(
        targets=[{"name": "Spend", "kpi": "gross_sales", "value": 1, "rule": "currentTxn.value >="}]
    )
    response = client.post(URL, bad, format="json")
    assert response.status_code == 400
    assert "position" in response.json()["targets"][0]
    tender = payload(
        targets=[
            {
                "name": "Spend",
                "kpi": "gross_sales",
                "value": 1,
                "rule": 'currentTender.mode == "CARD"',
            }
        ]
    )
    assert (
        "Tender-based rules are not supported"
        in client.post(URL, tender, format="json").json()["targets"][0]
    )
    line = payload(
        targets=[
            {
                "name": "Spend",
                "kpi": "gross_sales",
                "entity": "transaction",
                "value": 1,
                "rule": 'currentLineItem.sku == "P-1"',
            }
        ]
    )
    assert "line-item" in client.post(URL, line, format="json").json()["targets"][0].lower()
    line["targets"][0]["entity"] = "line_item"
    assert client.post(URL, line, format="json").status_code == 201


def test_kpi_needs_its_fields(client):
    cases = [
        ({"kpi": "event_count"}, "event name"),
        ({"kpi": "event_sum", "event_name": "AddToCart"}, "attribute"),
        (
            {"kpi": "customer_event_count", "event_name": "dancing"},
            "customer-level event must be one of",
        ),
        ({"kpi": "extended_field_count", "extended_field": "metal"}, "value to count"),
        ({"kpi": "quantity", "entity": "event"}, "not on 'event'"),
    ]
    for fields, message in cases:
        response = client.post(
            URL, payload(targets=[{"name": "T", "value": 1, **fields}]), format="json"
        )
        assert message in response.json()["targets"][0], (fields, response.json())
    assert not TargetGroup.objects.exists()


def test_scope_names_existing_stores_zones_and_concepts(client, stores):
    bad = payload(
        targets=[
            {
                "name": "T",
                "kpi": "gross_sales",
                "value": 1,
                "scope": {"stores": ["NOPE"], "zones": ["Mars"]},
            }
        ]
    )
    errors = client.post(URL, bad, format="json").json()["targets"]
    assert any("unknown store code(s) in the scope: NOPE" in e for e in errors)
    assert any("no store is in zone(s) Mars" in e for e in errors)
    good = payload(
        targets=[
            {
                "name": "T",
                "kpi": "gross_sales",
                "value": 1,
                "scope": {"stores": ["S1"], "zones": ["North"], "concepts": ["Fuel"]},
            }
        ]
    )
    assert client.post(URL, good, format="json").status_code == 201


def test_milestones_achieved_source_must_meet_the_five_criteria(client):
    daily = client.post(
        URL,
        payload(
            "Daily steps",
            cycle={
                "type": "fixed_calendar",
                "frequency": "daily",
                "start": "2026-01-01",
                "count": 90,
            },
            end="2026-03-31",
        ),
        format="json",
    ).json()
    weekly = payload("Weekly", start="2026-01-01", end="2026-03-31", cycle={"type": "fixed_calendar", "frequency": "weekly", "start": "2026-01-01", "count": 12},
                     targets=[{"name": "5 days", "kpi": "milestones_achieved", "source_target_group": daily["id"], "value": 5}])  # fmt: skip
    response = client.post(URL, weekly, format="json")
    assert response.status_code == 201, response.json()
    # A source with a longer frequency, or an inactive one, is refused.
    quarterly = client.post(
        URL,
        payload(
            "Quarterly",
            cycle={
                "type": "fixed_calendar",
                "frequency": "quarterly",
                "start": "2026-01-01",
                "count": 1,
            },
            end="2026-03-31",
        ),
        format="json",
    ).json()
    client.post(f"{URL}{daily['id']}/deactivate/")
    monthly = payload("Monthly", start="2026-01-01", end="2026-03-31", cycle={"type": "fixed_calendar", "frequency": "monthly", "start": "2026-01-01", "count": 3},
                      targets=[{"name": "m1", "kpi": "milestones_achieved", "source_target_group": quarterly["id"], "value": 1}])  # fmt: skip
    assert "shorter cycle frequency" in str(client.post(URL, monthly, format="json").json())
    monthly["targets"][0]["source_target_group"] = daily["id"]
    assert "must be active" in str(client.post(URL, monthly, format="json").json())


def test_every_change_writes_an_audit_row(client):
    group = client.post(URL, future(), format="json").json()
    client.patch(f"{URL}{group['id']}/", {"description": "Changed"}, format="json")
    client.post(f"{URL}{group['id']}/deactivate/")
    entries = client.get(f"{URL}{group['id']}/audit/").json()
    assert [e["action"] for e in entries] == ["deactivate", "update", "create"]
    assert entries[1]["changes"]["description"] == ["", "Changed"]
    assert all(e["user"] == "alice" for e in entries)
    assert AuditEntry.objects.count() == 3


def test_member_care_and_integration_read_but_do_not_write(api, client, member_care, integration):
    group = client.post(URL, future(), format="json").json()
    for user in (member_care, integration):
        assert api(user).get(f"{URL}{group['id']}/").json()["name"] == "Future spend"
        assert api(user).post(URL, future("Nope"), format="json").status_code == 403
        assert (
            api(user).patch(f"{URL}{group['id']}/", {"description": "x"}, format="json").status_code
            == 403
        )
        assert api(user).post(f"{URL}{group['id']}/deactivate/").status_code == 403
    assert TargetGroup.objects.get().is_active is True


def test_another_orgs_milestone_answers_404(client, api, other_configurer):
    group = client.post(URL, future(), format="json").json()
    other = api(other_configurer)
    assert other.get(URL).json() == []
    assert other.get(f"{URL}{group['id']}/").status_code == 404
    assert (
        other.patch(f"{URL}{group['id']}/", {"description": "x"}, format="json").status_code == 404
    )
    assert other.post(f"{URL}{group['id']}/deactivate/").status_code == 404
    assert (
        other.post(f"{URL}{group['id']}/clone/", {"name": "Stolen"}, format="json").status_code
        == 404
    )


def test_malformed_input_is_a_400_not_a_500(client):
    for body in (
        {"name": "X", "start": "2026-13-01", "end": "2026-12-31"},
        {
            "name": "X",
            "start": "2026-01-01",
            "end": "2025-12-31",
            "targets": [{"name": "t", "kpi": "gross_sales", "value": 1}],
            "cycle": {"type": "till_achievement", "count": 1},
        },
        payload(targets=[{"name": "t", "kpi": "gross_sales", "value": "lots"}]),
        payload(targets=[{"name": "t", "kpi": "gross_sales", "value": -5}]),
        payload(cycle={"type": "weekly"}),
        [1, 2, 3],
    ):
        response = client.post(URL, body, format="json")
        assert response.status_code == 400, (body, response.content)
    assert not TargetGroup.objects.exists()
