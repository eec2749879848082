"""`common.services.model_update`: the one way the milestone writes change a row."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from common.services import model_update
from milestones.models import Store, TargetGroup
from milestones.services.target_groups import target_group_create
from tests.factories import StoreFactory, TillFactory

pytestmark = pytest.mark.django_db


def test_only_the_fields_that_changed_are_written(org):
    store = StoreFactory(organisation=org, name="Main", zone="")
    Store.objects.filter(pk=store.pk).update(name="Renamed elsewhere")
    _, changed = model_update(
        instance=store, fields=["name", "zone"], data={"name": "Main", "zone": "North"}
    )
    store.refresh_from_db()
    assert changed and store.zone == "North" and store.name == "Renamed elsewhere"


def test_nothing_is_written_when_nothing_changed(org):
    store = StoreFactory(organisation=org, zone="North")
    Store.objects.filter(pk=store.pk).update(zone="South")
    _, changed = model_update(instance=store, fields=["zone"], data={"zone": "North"})
    store.refresh_from_db()
    assert not changed and store.zone == "South"


def test_a_field_absent_from_the_data_is_left_as_it_is(org):
    store = StoreFactory(organisation=org, zone="North", concept="Fuel")
    _, changed = model_update(instance=store, fields=["zone", "concept"], data={"zone": "East"})
    store.refresh_from_db()
    assert changed and (store.zone, store.concept) == ("East", "Fuel")


def test_an_invalid_value_is_refused_before_anything_is_saved(org):
    store = StoreFactory(organisation=org, code="S1")
    with pytest.raises(ValidationError) as refused:
        model_update(instance=store, fields=["code"], data={"code": ""})
    assert "code" in refused.value.error_dict
    assert Store.objects.get(pk=store.pk).code == "S1"


def test_updated_at_moves_with_a_change(org):
    TillFactory(organisation=org)
    group, _ = target_group_create(
        organisation=org,
        data={
            "name": "Spend",
            "start": date(2026, 1, 1),
            "end": date(2026, 12, 31),
            "till_code": "T1",
            "cycle": {"type": "fixed_calendar", "frequency": "monthly"},
            "targets": [{"name": "Spend 1000", "kpi": "gross_sales", "value": Decimal(1000)}],
        },
        via_api=True,
    )
    before = TargetGroup.objects.get(pk=group.pk).updated_at
    model_update(instance=group, fields=["description"], data={"description": "Now described"})
    assert TargetGroup.objects.get(pk=group.pk).updated_at > before
