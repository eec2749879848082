"""The roles a user can have (one per user, in one organisation)."""

from django.db import models


class Role(models.TextChoices):
    CONFIGURER = "configurer", "Configurer"
    MEMBER_CARE = "member_care", "Member care"
    INTEGRATION = "integration", "Integration"
