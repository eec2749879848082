"""Every time a person reads is in their organisation's time zone, and labelled."""

from datetime import UTC, datetime

import pytest

from evaluation.models import TargetEvent
from promotions.models import Award
from tests.factories import AwardFactory, OrganisationFactory, TargetEventFactory, UserFactory

pytestmark = pytest.mark.django_db

NOON_UTC = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def test_the_awards_ledger_shows_times_in_the_organisation_zone_with_its_label(
    admin_client_for, configurer, org
):
    award = AwardFactory(event=TargetEventFactory(organisation=org))
    Award.objects.filter(pk=award.pk).update(awarded_at=NOON_UTC)
    html = admin_client_for(configurer).get("/admin/promotions/award/").content.decode()
    assert "Times in Asia/Kolkata" in html
    assert "5:30 p.m." in html  # 12:00 UTC is 17:30 in Kolkata
    assert "noon" not in html and "12:00 p.m." not in html


def test_each_organisation_reads_its_own_zone_and_no_zone_leaks_to_the_next_request(client):
    utc_org = OrganisationFactory(slug="utc-co", timezone="UTC")
    user = UserFactory(organisation=utc_org, role="configurer")
    event = TargetEventFactory(organisation=utc_org)
    TargetEvent.objects.filter(pk=event.pk).update(created_at=NOON_UTC)
    client.force_login(user)
    html = client.get("/admin/evaluation/targetevent/").content.decode()
    assert "Times in UTC" in html and "noon" in html
