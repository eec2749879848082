"""The audience groups admin (issue 15, findings 3 and 7): a filter is checked on save, a
group whose refresh failed shows why, and "Refresh now" retries it."""

from datetime import date
from decimal import Decimal

import pytest

from enrolment import tasks
from enrolment.audiences import audience_group_create
from enrolment.models import AudienceGroup, Customer
from milestones.models import Target
from milestones.services.target_groups import target_group_create
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db

ADMIN = "/admin/enrolment/audiencegroup/"


@pytest.fixture
def gold(org, configurer):
    StoreFactory(organisation=org, code="T1", is_till=True)
    group, _ = target_group_create(
        organisation=org, user=configurer, via_api=True,
        data={"name": "Fuel", "start": date(2026, 1, 1), "end": date(2026, 12, 31),
              "till_code": "T1", "enrolment": {"mode": "all_customers"},
              "cycle": {"type": "fixed_calendar", "frequency": "monthly", "count": 3,
                        "start": date(2026, 1, 1)},
              "targets": [{"name": "Gold", "kpi": "quantity", "value": Decimal(1)}]},
    )  # fmt: skip
    return group.targets.get()


def test_a_bad_filter_is_refused_on_save_naming_its_condition(admin_client_for, configurer, gold):
    response = admin_client_for(configurer).post(
        f"{ADMIN}add/",
        {"name": "Recent", "kind": "filter", "description": "",
         "filter": '{"conditions": [{"target": "Gold", "last_days": 1000000000000}]}'},
    )  # fmt: skip
    assert response.status_code == 200  # the form again, with the error
    assert "Condition 1: last_days must be between 1 and 36500" in response.content.decode()
    assert not AudienceGroup.objects.exists()


def test_a_good_filter_saved_in_the_admin_is_refreshed(admin_client_for, configurer, org, gold):
    customer = Customer.objects.create(organisation=org, mobile="9000000001",
                                       attributes={"tier": "gold"})  # fmt: skip
    response = admin_client_for(configurer).post(
        f"{ADMIN}add/",
        {"name": "Gold tier", "kind": "filter", "description": "",
         "filter": '{"conditions": [{"field": "attributes.tier", "op": "eq", "value": "gold"}]}'},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[-2000:]
    group = AudienceGroup.objects.get()
    assert group.organisation == org and group.refresh_status == "ok"
    assert list(group.memberships.values_list("customer_id", flat=True)) == [customer.id]


def test_the_reason_shows_and_refresh_now_retries(admin_client_for, configurer, org, gold):
    group = audience_group_create(
        organisation=org, name="Achievers", kind="filter",
        filter={"conditions": [{"target": "Gold", "achieved": True}]},
    )  # fmt: skip
    Target.objects.filter(pk=gold.pk).update(name="Platinum")
    tasks.refresh_filter_audience_groups()
    client = admin_client_for(configurer)
    listing = client.get(ADMIN).content.decode()
    assert "Invalid filter (skipped until fixed)" in listing
    assert "no target named &#x27;Gold&#x27;" in listing
    page = client.get(f"{ADMIN}{group.id}/change/").content.decode()
    assert "no target named &#x27;Gold&#x27;" in page
    action = {"action": "refresh_now", "_selected_action": [group.id]}
    refused = client.post(ADMIN, action, follow=True).content.decode()
    assert "Achievers: The filter no longer holds" in refused
    Target.objects.filter(pk=gold.pk).update(name="Gold")
    done = client.post(ADMIN, action, follow=True).content.decode()
    assert "1 audience group(s) refreshed." in done
    group.refresh_from_db()
    assert (group.refresh_status, group.refresh_error, group.refresh_attempts) == ("ok", "", 0)
