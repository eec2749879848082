import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from common.roles import Role


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown timezone {value!r}: use an IANA name such as Asia/Kolkata.")


def validate_country(value: str) -> None:
    """A region the phone-number rules know (ISO 3166 alpha-2, e.g. IN), or blank."""
    import phonenumbers

    if value and value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(
            f"Unknown country {value!r}: use an ISO 3166 alpha-2 code such as IN, or leave it "
            "blank."
        )


def scoping_copy(to):
    """A foreign key that copies the organisation or milestone of the row it belongs to, for
    scoping queries. It carries no index of its own and no database constraint: the rows it
    sits on are written by the million, PostgreSQL checks every inserted row's foreign keys at
    commit, and the real reference (target, customer, milestone) keeps its constraint. The ORM
    still cascades deletes."""
    return models.ForeignKey(
        to, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )


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
    default_country = models.CharField(
        max_length=2,
        blank=True,
        default="",
        validators=[validate_country],
        help_text="ISO 3166 alpha-2 (e.g. IN): mobiles are read in this country and stored in "
        "E.164 (+919000000077). Blank: mobiles are stored as their digits. After setting it, "
        "run `manage.py merge_customers --org SLUG`.",
    )
    refuse_unknown_events = models.BooleanField(
        default=False,
        verbose_name="refuse events outside the catalogue",
        help_text="Refuse a behavioural or customer-level event whose name is not in the "
        "organisation's event catalogue (the whole batch is answered 400, naming the item). "
        "Off: unknown names are accepted and added to the catalogue.",
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


class EventKind(models.TextChoices):
    BEHAVIOURAL = "behavioural", "Behavioural event"
    CUSTOMER = "customer", "Customer-level event"


class EventSource(models.TextChoices):
    LEARNED = "learned", "Learned from activities"
    CONFIGURED = "configured", "Added by a configurer"


class EventType(models.Model):
    """One event name of the organisation's catalogue, with the attribute names seen on it.

    Learned from received activities (`milestones.services.event_types.event_types_learn`,
    one upsert per batch) or added by a configurer. Names are case-sensitive, as tracking
    compares them: "Review" and "review" are two names (the screens point out the near miss).
    """

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="event_types"
    )
    kind = models.CharField(max_length=20, choices=EventKind.choices)
    name = models.CharField(max_length=100)
    attributes = models.JSONField(
        default=list, blank=True, help_text="The attribute names seen on this event, sorted."
    )
    source = models.CharField(
        max_length=20, choices=EventSource.choices, default=EventSource.CONFIGURED
    )
    first_seen = models.DateTimeField(
        null=True, blank=True, help_text="When an activity first brought this name."
    )
    last_seen = models.DateTimeField(
        null=True, blank=True, help_text="When an activity last brought this name."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "kind", "name"], name="event_type_unique_per_org"
            ),
            models.CheckConstraint(condition=~Q(name=""), name="event_type_name_not_blank"),
        ]
        ordering = ["kind", "name"]

    def __str__(self):
        return self.name


class Heartbeat(models.Model):
    """Last time a periodic job ran; lets operations see that beat and a worker are alive."""

    name = models.CharField(max_length=100, unique=True)
    last_seen = models.DateTimeField()
    runs = models.PositiveBigIntegerField(default=0)

    def __str__(self):
        return self.name


# --- Configuration: target groups (milestones), periods (cycles), targets, sub-targets ------


class TargetValueMode(models.TextChoices):
    SAME_FOR_ALL = "same_for_all", "Same target for all customers"
    PER_CUSTOMER = "per_customer", "Different target for each customer"


class CycleType(models.TextChoices):
    FIXED_CALENDAR = "fixed_calendar", "Fixed calendar window"
    CUSTOM_PERIODS = "custom_periods", "Different duration for each cycle"
    CYCLIC = "cyclic", "Cyclic window (from the customer's first activity)"
    TILL_ACHIEVEMENT = "till_achievement", "Till target achievement (period agnostic)"


class Frequency(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"
    QUARTERLY = "quarterly", "Quarterly"
    HALF_YEARLY = "half_yearly", "Half-yearly"
    YEARLY = "yearly", "Yearly"
    DAYS = "days", "Every N days"


class EnrolmentMode(models.TextChoices):
    ALL_CUSTOMERS = "all_customers", "All customers"
    AUDIENCE_GROUP = "audience_group", "Audience group"
    CUSTOM_LIST = "custom_list", "Custom list (target per customer)"


class UnifiedMode(models.TextChoices):
    NONE = "", "Single targets"
    ALL = "all", "Unified: every target reached"
    ANY = "any", "Unified: any target reached"


class Kpi(models.TextChoices):
    GROSS_SALES = "gross_sales", "Gross sales"
    NET_SALES = "net_sales", "Net sales"
    QUANTITY = "quantity", "Quantity"
    TRANSACTION_COUNT = "transaction_count", "Transaction count"
    DAYS_OF_ACTIVITY = "days_of_activity", "Days of activity"
    EXTENDED_FIELD_COUNT = "extended_field_count", "Extended field COUNT of a value"
    EXTENDED_FIELD_SUM = "extended_field_sum", "Extended field SUM"
    POINTS = "points", "Points earned"
    EVENT_COUNT = "event_count", "Behavioural event count"
    EVENT_DAYS = "event_days", "Behavioural event days of activity"
    EVENT_SUM = "event_sum", "Behavioural event sum of an attribute"
    EVENT_DAILY_MAX_SUM = "event_daily_max_sum", "Behavioural event sum of each day's highest value"
    CUSTOMER_EVENT_COUNT = "customer_event_count", "Customer-level event count"
    CUSTOMER_EVENT_DAYS = "customer_event_days", "Customer-level event days"
    MILESTONES_ACHIEVED = "milestones_achieved", "Milestones achieved"


class Entity(models.TextChoices):
    TRANSACTION = "transaction", "Transaction (bill)"
    LINE_ITEM = "line_item", "Line item"
    EVENT = "event", "Behavioural event"
    CUSTOMER_EVENT = "customer_event", "Customer-level event"
    POINTS = "points", "Points"
    MILESTONE = "milestone", "Milestone"


class PointsType(models.TextChoices):
    REGULAR = "regular", "Regular"
    PROMOTIONAL = "promotional", "Promotional"
    BOTH = "both", "Both"


class SubTargetCriteria(models.TextChoices):
    PERCENTAGE = "percentage", "Percentage of the target"
    ABSOLUTE = "absolute", "Absolute value"


class MilestoneStatus(models.TextChoices):
    """Where a milestone stands on its dates (`TargetGroup.status()`); not stored."""

    UPCOMING = "upcoming", "Upcoming"
    LIVE = "live", "Live"
    ENDED = "ended", "Ended"


class TargetGroup(models.Model):
    """A milestone: a duration, a cycle configuration, an enrolment and up to 50 targets."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="target_groups"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    start = models.DateField()
    end = models.DateField()
    till = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    target_value_mode = models.CharField(
        max_length=20, choices=TargetValueMode.choices, default=TargetValueMode.SAME_FOR_ALL
    )
    cycle_type = models.CharField(
        max_length=20, choices=CycleType.choices, default=CycleType.FIXED_CALENDAR
    )
    cycle_frequency = models.CharField(max_length=20, choices=Frequency.choices, blank=True)
    cycle_days = models.PositiveIntegerField(null=True, blank=True)
    cycle_start = models.DateField(null=True, blank=True)
    cycle_count = models.PositiveIntegerField(null=True, blank=True)
    enrolment_mode = models.CharField(
        max_length=20, choices=EnrolmentMode.choices, default=EnrolmentMode.ALL_CUSTOMERS
    )
    offset_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Blank: the organisation's default."
    )
    leaderboard_enabled = models.BooleanField(default=False)
    unified_mode = models.CharField(
        max_length=3, choices=UnifiedMode.choices, blank=True, default=""
    )
    is_active = models.BooleanField(default=True)
    send_enrolment_trigger = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_role = models.CharField(max_length=20, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "name"], name="target_group_name_unique_per_org"
            ),
            models.CheckConstraint(
                condition=Q(end__gte=F("start")), name="target_group_end_after_start"
            ),
            models.CheckConstraint(
                condition=Q(cycle_count__isnull=True) | Q(cycle_count__gte=1, cycle_count__lte=100),
                name="target_group_cycle_count_1_100",
            ),
            models.CheckConstraint(
                condition=~Q(cycle_type="till_achievement") | Q(target_value_mode="same_for_all"),
                name="till_achievement_same_target_for_all",
            ),
        ]
        indexes = [models.Index(fields=["organisation", "is_active", "start", "end"])]
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.name

    def status(self, today=None) -> MilestoneStatus:
        """Upcoming / Live / Ended, from the dates in the organisation's timezone."""
        from django.utils import timezone

        if today is None:
            today = timezone.now().astimezone(self.organisation.tzinfo).date()
        if today < self.start:
            return MilestoneStatus.UPCOMING
        if today > self.end:
            return MilestoneStatus.ENDED
        return MilestoneStatus.LIVE

    @property
    def tracking_type(self) -> str:
        return "unified" if self.unified_mode else "single"

    @property
    def has_fixed_periods(self) -> bool:
        return self.cycle_type in (CycleType.FIXED_CALENDAR, CycleType.CUSTOM_PERIODS)

    @property
    def effective_offset_days(self) -> int:
        return self.offset_days if self.offset_days is not None else self.organisation.offset_days


class Period(models.Model):
    """One cycle with fixed dates (fixed calendar windows and custom periods).

    `starts_at`/`ends_at` are the exact instants (UTC, end exclusive) computed from the
    calendar dates at 00:00 in the organisation's timezone; `start`/`end` are the inclusive
    calendar dates shown to people.
    """

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    target_group = models.ForeignKey(TargetGroup, on_delete=models.CASCADE, related_name="periods")
    ordinal = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    start = models.DateField()
    end = models.DateField()
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "name"], name="period_name_unique_per_org"
            ),
            models.UniqueConstraint(
                fields=["target_group", "ordinal"], name="period_ordinal_unique"
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="period_ends_after_start"
            ),
        ]
        indexes = [models.Index(fields=["target_group", "starts_at", "ends_at"])]
        ordering = ["target_group_id", "ordinal"]

    def __str__(self):
        return self.name


class Target(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    target_group = models.ForeignKey(TargetGroup, on_delete=models.CASCADE, related_name="targets")
    ordinal = models.PositiveIntegerField(default=1)
    name = models.CharField(max_length=200)
    kpi = models.CharField(max_length=30, choices=Kpi.choices)
    entity = models.CharField(max_length=20, choices=Entity.choices)
    event_name = models.CharField(max_length=100, blank=True)
    attribute = models.CharField(max_length=100, blank=True)
    extended_field = models.CharField(max_length=100, blank=True)
    extended_field_value = models.CharField(max_length=200, blank=True)
    points_type = models.CharField(max_length=20, choices=PointsType.choices, blank=True)
    source_target_group = models.ForeignKey(
        TargetGroup, null=True, blank=True, on_delete=models.PROTECT, related_name="feeds_targets"
    )
    value = models.DecimalField(max_digits=18, decimal_places=4)
    cycle_values = models.JSONField(
        default=dict,
        blank=True,
        help_text="Target value per cycle ordinal, as strings: {'2': '1500'}.",
    )
    scope_stores = models.JSONField(default=list, blank=True)
    scope_zones = models.JSONField(default=list, blank=True)
    scope_concepts = models.JSONField(default=list, blank=True)
    rule = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "name"], name="target_name_unique_per_org"
            ),
            models.CheckConstraint(condition=Q(value__gte=0), name="target_value_not_negative"),
        ]
        ordering = ["target_group_id", "ordinal", "id"]

    def __str__(self):
        return self.name

    def value_for_cycle(self, ordinal: int):
        """The target value of a cycle: its own period value, else the target's. Rounded to the
        4 places a progress row keeps (half away from zero, as PostgreSQL rounds), so that a
        crossing is decided against the value that is stored."""
        from decimal import ROUND_HALF_UP, Decimal

        raw = (self.cycle_values or {}).get(str(ordinal))
        if raw in (None, ""):
            return self.value
        return Decimal(str(raw)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


class SubTarget(models.Model):
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="sub_targets")
    name = models.CharField(max_length=200)
    criteria = models.CharField(max_length=20, choices=SubTargetCriteria.choices)
    value = models.DecimalField(max_digits=18, decimal_places=4)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["target", "name"], name="sub_target_name_unique_per_target"
            ),
            models.CheckConstraint(condition=Q(value__gt=0), name="sub_target_value_positive"),
            models.CheckConstraint(
                condition=~Q(criteria="percentage") | Q(value__lte=100),
                name="sub_target_percentage_max_100",
            ),
        ]
        ordering = ["target_id", "value", "id"]

    def __str__(self):
        return self.name

    def threshold(self, target_value):
        """The achieved value at which this sub-target is reached, for a given target value:
        the one rule of `milestones.thresholds` (4 decimal places, half up), the value
        tracking fires at and the enrolment notification shows."""
        from .thresholds import threshold

        return threshold(self.criteria, self.value, target_value)


class Template(models.Model):
    """A pre-filled milestone: `payload` has the API's create shape (without name and dates)."""

    organisation = models.ForeignKey(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="templates",
        help_text="Blank: a built-in template every organisation sees.",
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "name"], name="template_name_unique_per_org"
            ),
        ]
        ordering = ["name"]

    def __str__(self):
        return self.name


class AuditEntry(models.Model):
    """Who changed which configuration, when, and what changed."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=40)
    object_type = models.CharField(max_length=40)
    object_id = models.BigIntegerField()
    object_name = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["organisation", "object_type", "object_id"])]
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self):
        return f"{self.action} {self.object_type} {self.object_name}"
