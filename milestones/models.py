import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown timezone {value!r}: use an IANA name such as Asia/Kolkata.")


class Organisation(models.Model):
    """A brand. Every other row belongs to exactly one organisation."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    award_when_target_achieved = models.BooleanField(
        default=True,
        help_text="ENABLE_AWARD_WHEN_TARGET_ACHIEVED: send an event the moment a target is reached.",
    )
    allow_return_on_target = models.BooleanField(
        default=False, help_text="ALLOW_RETURN_ON_TARGET: returns lower sales and quantity."
    )
    offset_days = models.PositiveIntegerField(
        default=0, help_text="Default delay, in days, between a cycle's end and its evaluation."
    )
    auto_create_customers = models.BooleanField(
        default=True, help_text="Create unknown customers when their activities arrive."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(offset_days__lte=365), name="org_offset_days_max"),
        ]

    def __str__(self):
        return self.name

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class Role(models.TextChoices):
    CONFIGURER = "configurer", "Configurer"
    MEMBER_CARE = "member_care", "Member care"
    INTEGRATION = "integration", "Integration"


class User(AbstractUser):
    """A person or a system account; belongs to one organisation with one role.

    Superusers (operations) may have no organisation.
    """

    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    role = models.CharField(max_length=20, choices=Role.choices, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(is_superuser=True) | (Q(organisation__isnull=False) & ~Q(role="")),
                name="user_has_org_and_role",
            ),
        ]

    def has_role(self, *roles: str) -> bool:
        return self.is_active and self.organisation_id is not None and self.role in roles


class Store(models.Model):
    """A store or a till (a till is where awarded points are attributed)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="stores")
    code = models.CharField(max_length=64)
    name = models.CharField(max_length=200, blank=True)
    zone = models.CharField(max_length=100, blank=True)
    concept = models.CharField(max_length=100, blank=True)
    is_till = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "code"], name="store_code_unique_per_org"
            ),
        ]
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} {self.name}".strip()


class Heartbeat(models.Model):
    """Last time a periodic job ran; lets operations see that beat and a worker are alive."""

    name = models.CharField(max_length=100, unique=True)
    last_seen = models.DateTimeField()
    runs = models.PositiveBigIntegerField(default=0)

    def __str__(self):
        return self.name
