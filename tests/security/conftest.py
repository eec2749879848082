import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Sign-in tests hash many passwords: a fast hasher here (production keeps PBKDF2)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def group(org, configurer):
    """A live monthly milestone of acme (gross sales, one target)."""
    from datetime import date
    from decimal import Decimal

    from milestones.services.target_groups import target_group_create
    from tests.factories import TillFactory

    data = {
        "name": "Spend",
        "start": date(2026, 1, 1),
        "end": date(2026, 12, 31),
        "till_code": TillFactory(organisation=org).code,
        "cycle": {"type": "fixed_calendar", "frequency": "monthly", "start": date(2026, 1, 1),
                  "count": 12},
        "enrolment": {"mode": "custom_list"},
        "target_value_mode": "per_customer",
        "leaderboard_enabled": True,
        "targets": [{"name": "Spend 1000", "kpi": "gross_sales", "value": Decimal(1000)}],
    }  # fmt: skip
    made, _ = target_group_create(organisation=org, data=data, user=configurer, via_api=True)
    return made
