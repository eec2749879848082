"""Payouts a brand can trust (issue 16): every milestone names its till, and once a milestone
is live what its targets track (KPI, tracked on, event name) is locked."""

import re
from datetime import timedelta

import pytest

from milestones.demo import load_demo
from milestones.models import Target, TargetGroup, Template
from milestones.selectors import org_today
from tests.factories import StoreFactory, TillFactory
from tests.milestones.test_admin_config import rendered_post_data, scratch_post

pytestmark = pytest.mark.django_db
URL = "/api/v1/target-groups/"


def body(org, name="Monthly spend", *, starts_in=-5, targets=None, **over):
    """A milestone starting `starts_in` days from today (negative: live), with monthly cycles."""
    start = org_today(org) + timedelta(days=starts_in)
    data = {
        "name": name,
        "start": start.isoformat(),
        "end": (start + timedelta(days=200)).isoformat(),
        "till_code": "T1",
        "cycle": {"type": "fixed_calendar", "frequency": "monthly", "start": start.isoformat(), "count": 3},
        "targets": targets
        or [
            {"name": "Spend", "kpi": "gross_sales", "entity": "line_item", "value": 1000},
            {"name": "Reviews", "kpi": "event_count", "event_name": "Review", "value": 3},
        ],
    }  # fmt: skip
    data.update(over)
    return data


@pytest.fixture
def client(api, configurer, org):
    TillFactory(organisation=org)
    return api(configurer)


def create(client, org, **kw):
    response = client.post(URL, body(org, **kw), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def edit(client, group, *targets, **fields):
    return client.patch(f"{URL}{group['id']}/", {"targets": list(targets), **fields}, format="json")


def target_id(group, name):
    return next(t["id"] for t in group["targets"] if t["name"] == name)


# --- the till ------------------------------------------------------------------------------


def test_a_milestone_without_a_till_is_refused_at_till_code(client, org):
    for missing in ({"till_code": None}, {"till_code": ""}):
        response = client.post(URL, body(org, **missing), format="json")
        assert response.status_code == 400
        assert "A till is required" in response.json()["till_code"][0]
    without = body(org)
    del without["till_code"]
    response = client.post(URL, without, format="json")
    assert response.status_code == 400 and "A till is required" in response.json()["till_code"][0]
    assert not TargetGroup.objects.exists()


def test_a_store_that_is_not_a_till_is_refused_at_till_code(client, org):
    StoreFactory(organisation=org, code="S1", is_till=False)
    response = client.post(URL, body(org, till_code="S1"), format="json")
    assert response.status_code == 400
    assert "'S1' is not a till" in response.json()["till_code"][0]
    response = client.post(URL, body(org, till_code="NOPE"), format="json")
    assert response.status_code == 400
    assert "Unknown till code 'NOPE'" in response.json()["till_code"][0]
    assert not TargetGroup.objects.exists()


def test_another_organisations_till_is_unknown(client, org, other_org):
    TillFactory(organisation=other_org, code="G1")
    response = client.post(URL, body(org, till_code="G1"), format="json")
    assert response.status_code == 400 and "Unknown till code" in response.json()["till_code"][0]


def test_an_edit_may_change_the_till_only_to_another_till(client, org):
    group = create(client, org)
    StoreFactory(organisation=org, code="S1")
    TillFactory(organisation=org, code="T2")
    response = client.patch(f"{URL}{group['id']}/", {"till_code": "S1"}, format="json")
    assert response.status_code == 400 and "not a till" in response.json()["till_code"][0]
    response = client.patch(f"{URL}{group['id']}/", {"till_code": None}, format="json")
    assert response.status_code == 400 and "A till is required" in response.json()["till_code"][0]
    response = client.patch(f"{URL}{group['id']}/", {"till_code": "T2"}, format="json")
    assert response.status_code == 200 and response.json()["till_code"] == "T2"
    # an edit that leaves the till alone keeps it
    response = client.patch(f"{URL}{group['id']}/", {"description": "x"}, format="json")
    assert response.status_code == 200 and response.json()["till_code"] == "T2"


@pytest.mark.parametrize("template_name", ["Catalyze product sales", "Boost customer spend"])
def test_a_template_picks_the_organisation_s_only_till(client, org, template_name):
    template = Template.objects.get(organisation__isnull=True, name=template_name)
    start = org_today(org) + timedelta(days=1)
    response = client.post(
        URL,
        {"name": "From template", "start": start.isoformat(), "end": (start + timedelta(days=120)).isoformat(),
         "template": template.id},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    assert response.json()["till_code"] == "T1"


def test_with_two_tills_a_template_milestone_must_name_one(client, org):
    TillFactory(organisation=org, code="T2")
    template = Template.objects.get(organisation__isnull=True, name="Boost customer spend")
    start = org_today(org) + timedelta(days=1)
    data = {"name": "From template", "start": start.isoformat(),
            "end": (start + timedelta(days=120)).isoformat(), "template": template.id}  # fmt: skip
    response = client.post(URL, data, format="json")
    assert response.status_code == 400 and "A till is required" in response.json()["till_code"][0]
    response = client.post(URL, {**data, "till_code": "T2"}, format="json")
    assert response.status_code == 201 and response.json()["till_code"] == "T2"


def test_a_clone_keeps_the_till(client, org):
    TillFactory(organisation=org, code="T2")
    group = create(client, org, till_code="T2")
    response = client.post(f"{URL}{group['id']}/clone/", {"name": "Copy"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["till_code"] == "T2"


def test_the_demo_milestones_use_the_demo_till():
    load_demo()
    groups = TargetGroup.objects.filter(organisation__slug="demo").select_related("till")
    assert groups.count() == 5
    assert {(g.till.code, g.till.is_till) for g in groups} == {("T1", True)}


# --- live locks ----------------------------------------------------------------------------


def test_a_live_milestone_refuses_a_new_kpi(client, org):
    group = create(client, org)
    assert group["status"] == "live"
    response = edit(client, group, {"id": target_id(group, "Spend"), "kpi": "net_sales"})
    assert response.status_code == 400
    (message,) = [m for m in response.json()["targets"] if "(kpi)" in m]
    assert message.startswith("Target 1 (Spend): the KPI (kpi) cannot be changed once the milestone is live")  # fmt: skip
    assert Target.objects.get(name="Spend").kpi == "gross_sales"


def test_a_live_milestone_refuses_a_new_entity(client, org):
    group = create(client, org)
    response = edit(client, group, {"id": target_id(group, "Spend"), "entity": "transaction"})
    assert response.status_code == 400
    assert "(entity) cannot be changed once the milestone is live" in response.json()["targets"][0]
    assert Target.objects.get(name="Spend").entity == "line_item"


def test_a_live_milestone_refuses_a_new_event_name(client, org):
    group = create(client, org)
    response = edit(client, group, {"id": target_id(group, "Reviews"), "event_name": "Rating"})
    assert response.status_code == 400
    message = response.json()["targets"][0]
    assert message.startswith("Target 1 (Reviews): the event name (event_name) cannot be changed")
    assert "it stays Review, not Rating" in message
    assert Target.objects.get(name="Reviews").event_name == "Review"


def test_a_live_milestone_still_takes_the_other_edits(client, org):
    group = create(client, org)
    spend = target_id(group, "Spend")
    response = edit(
        client,
        group,
        # the same KPI sent again (without the entity) is no change: line_item is kept
        {"id": spend, "kpi": "gross_sales", "value": 2500, "rule": "currentLineItem.quantity >= 1"},
        {"id": target_id(group, "Reviews"), "name": "Three reviews", "event_name": "Review"},
        {"name": "New target", "kpi": "net_sales", "value": 10},
        description="Changed",
        end=(org_today(org) + timedelta(days=300)).isoformat(),
    )
    assert response.status_code == 200, response.json()
    targets = {t["name"]: t for t in response.json()["targets"]}
    assert (targets["Spend"]["kpi"], targets["Spend"]["entity"], targets["Spend"]["value"]) == (
        "gross_sales", "line_item", 2500.0)  # fmt: skip
    assert targets["Three reviews"]["event_name"] == "Review"
    assert targets["New target"]["kpi"] == "net_sales"


def test_an_upcoming_milestone_may_change_what_it_tracks(client, org):
    group = create(client, org, starts_in=10)
    assert group["status"] == "upcoming"
    response = edit(
        client,
        group,
        {"id": target_id(group, "Spend"), "kpi": "net_sales", "entity": "transaction"},
        {"id": target_id(group, "Reviews"), "event_name": "Rating"},
    )
    assert response.status_code == 200, response.json()
    targets = {t["name"]: t for t in response.json()["targets"]}
    assert (targets["Spend"]["kpi"], targets["Spend"]["entity"]) == ("net_sales", "transaction")
    assert targets["Reviews"]["event_name"] == "Rating"


def test_an_ended_milestone_keeps_them_locked(client, org):
    group = create(client, org, starts_in=-300)
    assert group["status"] == "ended"
    response = edit(client, group, {"id": target_id(group, "Spend"), "kpi": "net_sales"})
    assert (
        response.status_code == 400 and "(kpi) cannot be changed" in response.json()["targets"][0]
    )


# --- the admin screens ---------------------------------------------------------------------


def change_url(group):
    return f"/admin/milestones/targetgroup/{group['id']}/change/"


def test_the_edit_screen_shows_a_live_milestone_s_tracking_as_text(
    client, org, configurer, admin_client_for
):
    group = create(client, org)
    page = admin_client_for(configurer).get(change_url(group))
    html = page.content.decode()
    assert not re.search(r'<select[^>]*name="targets-0-kpi"', html)
    assert not re.search(r'<select[^>]*name="targets-0-entity"', html)
    assert not re.search(r'<input type="text"[^>]*name="targets-1-event_name"', html)
    assert '<div class="readonly ms-readonly">Gross sales' in html
    assert '<div class="readonly ms-readonly">Line item' in html
    assert '<div class="readonly ms-readonly">Review</div>' in html
    assert "Also rename it in the promotions that name it" in html
    # a target added now is free to choose
    assert re.search(r'<select[^>]*name="targets-2-kpi"', html)


def test_the_edit_screen_of_an_upcoming_milestone_keeps_the_fields_editable(
    client, org, configurer, admin_client_for
):
    group = create(client, org, starts_in=10)
    html = admin_client_for(configurer).get(change_url(group)).content.decode()
    assert re.search(r'<select[^>]*name="targets-0-kpi"', html)
    # what the targets track stays editable (the milestone's name, read-only after creation,
    # now renders as text too: issue 18, item 7)
    assert "ms-readonly" not in html[html.index('id="part-targets"') :]


def test_the_edit_screen_puts_a_locked_change_at_the_field(
    client, org, configurer, admin_client_for
):
    group = create(client, org)
    admin = admin_client_for(configurer)
    data = rendered_post_data(admin.get(change_url(group)))
    assert data["targets-0-kpi"] == "gross_sales"  # sent back unchanged by the hidden input
    data.update({"targets-0-kpi": "net_sales", "targets-1-event_name": "Rating"})
    response = admin.post(change_url(group), data)
    assert response.status_code == 200
    forms = response.context["formset"].forms
    assert "the KPI (kpi) cannot be changed once the milestone is live" in forms[0].errors["kpi"][0]
    assert "(event_name) cannot be changed" in forms[1].errors["event_name"][0]
    assert Target.objects.get(name="Spend").kpi == "gross_sales"
    # posted back as rendered, the other edits go through
    data = rendered_post_data(admin.get(change_url(group)))
    data.update({"targets-0-value": "1500"})
    assert admin.post(change_url(group), data).status_code == 302
    assert Target.objects.get(name="Spend").value == 1500


def test_the_create_screen_needs_a_till(org, configurer, admin_client_for):
    admin = admin_client_for(configurer)
    StoreFactory(organisation=org, code="S1")
    response = admin.post("/admin/milestones/targetgroup/add/", scratch_post(org, till=""))
    assert response.status_code == 200
    assert "A till is required" in response.context["form"].errors["till"][0]
    response = admin.post("/admin/milestones/targetgroup/add/", scratch_post(org, till="S1"))
    assert "not a till" in response.context["form"].errors["till"][0]
    assert not TargetGroup.objects.exists()


def test_the_create_screen_picks_the_only_till(org, configurer, admin_client_for):
    TillFactory(organisation=org)
    template = Template.objects.get(organisation__isnull=True, name="Catalyze product sales")
    admin = admin_client_for(configurer)
    page = admin.get("/admin/milestones/targetgroup/add/", {"template": template.pk})
    assert page.context["form"]["till"].value() == "T1"
    TillFactory(organisation=org, code="T2")
    page = admin.get("/admin/milestones/targetgroup/add/", {"template": template.pk})
    assert page.context["form"]["till"].value() is None
