"""Issue 18, item 10: agents land on member care, linked from the admin header; a refused
page is a branded 403 that names what the role may do and links home."""

import pytest

pytestmark = pytest.mark.django_db


def test_a_member_care_agent_lands_on_member_care_after_signing_in(client, member_care):
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "bob", "password": "pass-1234-word"}
    )
    assert response.status_code == 302
    landing = client.get(response["Location"], follow=True)
    assert landing.redirect_chain[-1][0] == "/care/"
    assert "Find a customer" in landing.content.decode()


def test_the_admin_header_links_to_member_care_for_configurers(client, configurer):
    client.force_login(configurer)
    html = client.get("/admin/").content.decode()
    assert 'id="care-link"' in html and 'href="/care/"' in html


def test_a_refused_page_is_branded_and_says_what_the_role_may_do(client, member_care):
    client.force_login(member_care)
    response = client.get("/care/milestones/1/insights/")  # configurers only
    assert response.status_code == 403
    html = response.content.decode()
    assert "This page is not open to your role" in html
    assert "Member care" in html and "find customers and read their milestone timelines" in html
    assert 'href="/care/"' in html  # home for an agent
    assert "<h1>403 Forbidden</h1>" not in html


def test_the_api_keeps_its_json_403(api, member_care):
    response = api(member_care).post("/api/v1/promotions/", {}, format="json")
    assert response.status_code == 403
    assert response.json() == {"detail": "Your role does not allow this."}


def test_the_care_panes_are_grouped_by_milestone_with_a_filter_box(
    client, member_care, stores, make_group, post, track
):
    from decimal import Decimal

    make_group("Spend", targets=[{"name": "Spend A", "kpi": "gross_sales", "value": Decimal(1000)},
                                 {"name": "Spend B", "kpi": "net_sales", "value": Decimal(900)}])  # fmt: skip
    make_group("Visits", targets=[{"name": "Visit count", "kpi": "transaction_count", "value": 5}])
    from tests.evaluation.conftest import txn

    post(txn(1, "2026-03-04T10:00:00+00:00", 100))
    track()
    from enrolment.models import Customer

    client.force_login(member_care)
    html = client.get(f"/care/customers/{Customer.objects.get().pk}/milestones/").content.decode()
    assert (
        'id="mc-pane-filter"' in html
        and '<label class="mc-pane-filter-label" for="mc-pane-filter">' in html
    )
    groups = html.split('<section class="mc-pane-group"')[1:]
    assert [g.split('class="mc-pane-group-name">')[1].split("<")[0] for g in groups] == [
        "Spend",
        "Visits",
    ]
    assert "Spend A" in groups[0] and "Spend B" in groups[0] and "Visit count" in groups[1]
