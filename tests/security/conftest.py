from datetime import date

import pytest

from tests.factories import TargetGroupFactory, monthly_cycle, target_data


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Sign-in tests hash many passwords: a fast hasher here (production keeps PBKDF2)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def group(org, configurer):
    """A live monthly milestone of acme (gross sales, one target)."""
    return TargetGroupFactory(
        organisation=org,
        created_by=configurer,
        name="Spend",
        cycle=monthly_cycle(date(2026, 1, 1), count=12),
        enrolment={"mode": "custom_list"},
        target_value_mode="per_customer",
        leaderboard_enabled=True,
        targets=[target_data("Spend 1000")],
    )
