"""Demo data loader, shared by `manage.py seed_demo` and the tests that check it."""

from django.db import transaction

from . import services
from .models import Role, Store, User

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
DEMO_HOOKS = []  # later apps append loaders: fn(organisation) -> None


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
    for hook in DEMO_HOOKS:
        hook(org)
    return logins
