import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The fuzz tests make users per test; the production hasher's cost is not under test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
