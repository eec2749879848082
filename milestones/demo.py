"""Demo data loader, shared by `manage.py seed_demo` and the tests that check it."""

from django.db import transaction

from . import services
from .models import Organisation, Role, Store, User
from .signals import DEMO_STAGES, demo_loaded

DEMO_USERS = [
    ("configurer", "configurer-demo-pass", Role.CONFIGURER),
    ("care", "care-demo-pass", Role.MEMBER_CARE),
    ("integrator", "integrator-demo-pass", Role.INTEGRATION),
]
DEMO_STORES = [
    # code, name, zone, concept, is_till
    ("S1", "Main Street", "North", "Fuel", False),
    ("S2", "Harbour Road", "South", "Fuel", False),
    ("S3", "City Mall", "North", "Retail", False),
    ("T1", "Milestones till", "North", "Retail", True),
]
DEMO_TILL = "T1"  # the till of every demo milestone (a till is required)


def load_demo_milestones(org, user) -> None:
    """A few milestones of different cycle types, one from each built-in template."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from .models import TargetGroup, Template
    from .services.target_groups import target_group_create

    today = timezone.now().astimezone(org.tzinfo).date()
    # the month of a week ago: the demo activities of the last two days always fall inside,
    # even on the first of a month
    first = (today - timedelta(days=7)).replace(day=1)
    year_end = first + timedelta(days=370)
    specs = [
        {"name": "Demo: boost spend", "template": "Boost customer spend", "start": first, "end": year_end,
         "cycle": {"start": first, "count": 6}, "leaderboard_enabled": True},
        {"name": "Demo: catalyze petrol", "template": "Catalyze product sales", "start": first, "end": year_end,
         "cycle": {"start": first, "count": 3},
         "targets": [{"name": "Petrol litres (demo)", "kpi": "quantity", "entity": "line_item", "value": Decimal(100),
                      "rule": 'currentLineItem.category == "petrol"',
                      "sub_targets": [{"name": "Half tank", "criteria": "absolute", "value": Decimal(50)}]}]},
        {"name": "Demo: 5 visits in 30 days", "start": first, "end": year_end,
         "cycle": {"type": "cyclic", "frequency": "days", "days": 30, "start": first, "count": 3},
         "targets": [{"name": "Visits (demo)", "kpi": "transaction_count", "value": Decimal(5), "rule": "currentTxn.value >= 50"}]},
        {"name": "Demo: festive seasons", "start": first, "end": year_end,
         "cycle": {"type": "custom_periods", "periods": [
             {"name": "Demo festive 1", "start": first, "end": first + timedelta(days=44)},
             {"name": "Demo festive 2", "start": first + timedelta(days=90), "end": first + timedelta(days=120)}]},
         "targets": [{"name": "Festive net sales (demo)", "kpi": "net_sales", "value": Decimal(20000),
                      "sub_targets": [{"name": "Festive 80%", "criteria": "percentage", "value": Decimal(80)}]}]},
        {"name": "Demo: reviews till achieved", "start": first, "end": year_end,
         "cycle": {"type": "till_achievement", "start": first, "count": 5},
         "targets": [{"name": "Three reviews (demo)", "kpi": "event_count", "event_name": "Review", "value": Decimal(3)}]},
    ]  # fmt: skip
    templates = {t.name: t.id for t in Template.objects.filter(organisation__isnull=True)}
    for spec in specs:
        if TargetGroup.objects.filter(organisation=org, name=spec["name"]).exists():
            continue
        data = {"till_code": DEMO_TILL, **spec}  # every milestone attributes its points to a till
        if "template" in data:
            data["template"] = templates[data["template"]]
        target_group_create(organisation=org, data=data, user=user, via_api=True)


@transaction.atomic
def load_demo():
    org = services.organisation_get_or_create(slug="demo", name="Demo Brand", tz="Asia/Kolkata")
    for code, name, zone, concept, is_till in DEMO_STORES:
        if not Store.objects.filter(organisation=org, code=code).exists():
            services.store_create(
                organisation=org, code=code, name=name, zone=zone, concept=concept, is_till=is_till
            )
    logins = []
    for username, password, role in DEMO_USERS:
        user, token = services.user_get_or_create(
            organisation=org, username=username, role=role, password=password
        )
        logins.append((username, password, role, token.key))
    if not User.objects.filter(username="ops").exists():
        User.objects.create_superuser("ops", "ops@localhost", "ops-demo-pass")
    logins.append(("ops", "ops-demo-pass", "superuser", "-"))
    load_demo_milestones(org, User.objects.get(username="configurer"))
    for stage in DEMO_STAGES:
        demo_loaded.send(sender=Organisation, organisation=org, stage=stage)
    return logins
