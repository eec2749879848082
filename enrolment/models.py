from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from milestones.models import Organisation, Target, TargetGroup, scoping_copy

from .identifiers import IDENTIFIER_TYPES, IdentifierError, country_of, normalise


class Customer(models.Model):
    """A loyalty customer, found by any of its identifiers (each unique per org when present)."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="customers"
    )
    mobile = models.CharField(max_length=20, null=True, blank=True)
    email = models.CharField(max_length=254, null=True, blank=True)
    external_id = models.CharField(max_length=100, null=True, blank=True)
    name = models.CharField(max_length=200, blank=True)
    joined_on = models.DateField(null=True, blank=True)
    is_loyalty_member = models.BooleanField(default=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "mobile"],
                condition=Q(mobile__isnull=False),
                name="customer_mobile_unique",
            ),
            models.UniqueConstraint(
                fields=["organisation", "email"],
                condition=Q(email__isnull=False),
                name="customer_email_unique",
            ),
            models.UniqueConstraint(
                fields=["organisation", "external_id"],
                condition=Q(external_id__isnull=False),
                name="customer_external_id_unique",
            ),
            models.CheckConstraint(
                condition=Q(mobile__isnull=False)
                | Q(email__isnull=False)
                | Q(external_id__isnull=False),
                name="customer_has_an_identifier",
            ),
        ]
        ordering = ["id"]

    def __str__(self):
        return self.name or self.mobile or self.email or self.external_id or f"#{self.pk}"

    def clean(self):
        """Identifiers in their normal form (enrolment.identifiers), blank ones as NULL, so a
        customer saved from a form is found by the same spellings as one from the API
        (mobiles in E.164 when the organisation has a default country)."""
        errors = {}
        country = country_of(self.organisation) if self.organisation_id else ""
        for kind in IDENTIFIER_TYPES:
            raw = getattr(self, kind)
            if raw is None or (isinstance(raw, str) and raw.strip() == ""):
                setattr(self, kind, None)
                continue
            try:
                setattr(self, kind, normalise(kind, raw, country=country))
            except IdentifierError as exc:
                errors[kind] = [str(exc)]
        if errors:
            raise ValidationError(errors)


class EnrolmentSource(models.TextChoices):
    ALL_CUSTOMERS = "all_customers", "First activity (all customers)"
    AUDIENCE_GROUP = "audience_group", "Audience group"
    CUSTOM_LIST = "custom_list", "Custom list upload"
    API = "api", "API / admin"


class Enrolment(models.Model):
    """A customer is part of a milestone. Un-enrolling clears `is_active` and keeps the history."""

    # Bulk imports write millions of these rows and pay every index and every foreign-key
    # check (PostgreSQL checks each inserted row at commit): FK indexes that the composite
    # indexes below cover are left out, and so is the database constraint on `organisation`,
    # a scoping copy of the milestone's organisation (the ORM still cascades).
    organisation = scoping_copy(Organisation)
    target_group = models.ForeignKey(
        TargetGroup, on_delete=models.CASCADE, related_name="enrolments", db_index=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="enrolments", db_index=False
    )
    source = models.CharField(max_length=20, choices=EnrolmentSource.choices)
    is_active = models.BooleanField(default=True)
    enrolled_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["target_group", "customer"], name="enrolment_unique"),
        ]
        indexes = [
            models.Index(fields=["customer", "is_active"]),
            models.Index(fields=["target_group", "is_active", "customer"]),
        ]

    def __str__(self):
        return f"{self.customer} in {self.target_group}"


class CustomerTargetValue(models.Model):
    """A per-customer target value for one cycle (custom list uploads); blank means the default."""

    # See Enrolment: no FK index the unique/composite indexes cover, no constraint on the
    # scoping copy of the organisation.
    organisation = scoping_copy(Organisation)
    target = models.ForeignKey(
        Target, on_delete=models.CASCADE, related_name="customer_values", db_index=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="target_values", db_index=False
    )
    cycle_ordinal = models.PositiveIntegerField()
    value = models.DecimalField(max_digits=18, decimal_places=4)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["target", "customer", "cycle_ordinal"], name="customer_target_value_unique"
            ),
            models.CheckConstraint(
                condition=Q(value__gte=0), name="customer_target_value_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["customer", "target"])]

    def __str__(self):
        return f"{self.customer_id} {self.target_id} C{self.cycle_ordinal}={self.value}"


# --- Audience groups ---------------------------------------------------------------------------


class AudienceKind(models.TextChoices):
    LIST = "list", "CSV list of identifiers"
    FILTER = "filter", "Filter over customers and target results"
    MERGE = "merge", "Merge of existing groups"


class AudienceRefreshStatus(models.TextChoices):
    OK = "ok", "Up to date"
    INVALID = "invalid", "Invalid filter (skipped until fixed)"
    FAILED = "failed", "Refresh failed"


class AudienceGroup(models.Model):
    """A set of customers a milestone can enrol: a fixed list, a live filter, or a merge.

    Filter and merge groups are recomputed (`enrolment.audiences.audience_group_refresh`);
    their `members` are a materialised snapshot, so enrolment and the API read one table.

    A refresh that cannot run is recorded here, never raised at the other groups: `invalid`
    (the filter no longer holds, e.g. a target it names was renamed) or `failed` (an
    unexpected error), with the reason and the failed attempts in a row. The beat skips an
    invalid group, and a failed one after REFRESH_MAX_ATTEMPTS; "Refresh now" retries.
    """

    REFRESH_MAX_ATTEMPTS = 5

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="audience_groups"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=AudienceKind.choices)
    filter = models.JSONField(
        default=dict, blank=True, help_text="Filter groups: {'conditions': [...]} (see docs)."
    )
    sources = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="merged_into"
    )
    member_count = models.PositiveIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    refresh_status = models.CharField(
        max_length=10,
        choices=AudienceRefreshStatus.choices,
        default=AudienceRefreshStatus.OK,
        editable=False,
    )
    refresh_error = models.TextField(blank=True, editable=False)
    refresh_attempts = models.PositiveIntegerField(
        default=0, editable=False, help_text="Failed refreshes in a row."
    )
    refresh_failed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        "milestones.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "name"], name="audience_group_name_unique_per_org"
            ),
            models.CheckConstraint(
                condition=Q(refresh_status__in=AudienceRefreshStatus.values),
                name="audience_group_refresh_status_valid",
            ),
        ]
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def refresh_parked(self) -> bool:
        """The beat leaves this group alone until someone presses "Refresh now"."""
        return self.refresh_status == AudienceRefreshStatus.INVALID or (
            self.refresh_status == AudienceRefreshStatus.FAILED
            and self.refresh_attempts >= self.REFRESH_MAX_ATTEMPTS
        )

    @classmethod
    def refresh_due_q(cls) -> Q:
        """The groups the beat still refreshes on its own (the opposite of refresh_parked)."""
        return Q(refresh_status=AudienceRefreshStatus.OK) | Q(
            refresh_status=AudienceRefreshStatus.FAILED,
            refresh_attempts__lt=cls.REFRESH_MAX_ATTEMPTS,
        )


class AudienceMember(models.Model):
    audience_group = models.ForeignKey(
        AudienceGroup, on_delete=models.CASCADE, related_name="memberships", db_index=False
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["audience_group", "customer"], name="audience_member_unique"
            ),
        ]
        indexes = [models.Index(fields=["customer"])]

    def __str__(self):
        return f"{self.customer_id} in {self.audience_group_id}"


class TargetGroupAudience(models.Model):
    """Which audience group a milestone with the audience-group enrolment follows."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    target_group = models.OneToOneField(
        TargetGroup, on_delete=models.CASCADE, related_name="audience_link"
    )
    audience_group = models.ForeignKey(
        AudienceGroup, on_delete=models.PROTECT, related_name="target_group_links"
    )
    linked_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.target_group_id} <- {self.audience_group_id}"


# --- CSV imports of per-customer target values -------------------------------------------------


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """One upload of a custom list (identifier column + one value column per cycle).

    `errors` holds the first MAX_STORED_ERRORS problems as {"row", "column", "message"};
    `error_count` counts them all.
    """

    MAX_STORED_ERRORS = 1000

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    target_group = models.ForeignKey(TargetGroup, on_delete=models.CASCADE, related_name="imports")
    created_by = models.ForeignKey(
        "milestones.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    file = models.FileField(upload_to="imports/%Y/%m/", max_length=300)
    original_name = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    identifier_type = models.CharField(max_length=20, default="mobile")
    identifier_column = models.CharField(max_length=200, blank=True)
    mapping = models.JSONField(default=dict, blank=True)
    send_trigger = models.BooleanField(default=True)
    skip_bad_rows = models.BooleanField(default=False)
    create_customers = models.BooleanField(default=True)
    status = models.CharField(
        max_length=10, choices=ImportStatus.choices, default=ImportStatus.PENDING
    )
    method = models.CharField(max_length=20, blank=True)
    total = models.PositiveBigIntegerField(default=0)
    processed = models.PositiveBigIntegerField(default=0)
    error_count = models.PositiveBigIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    skipped_rows = models.PositiveBigIntegerField(default=0)
    created_customers = models.PositiveBigIntegerField(default=0)
    newly_enrolled = models.PositiveBigIntegerField(default=0)
    values_written = models.PositiveBigIntegerField(default=0)
    values_cleared = models.PositiveBigIntegerField(default=0)
    notifications = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target_group", "-created_at"])]

    def __str__(self):
        return f"Import #{self.pk} ({self.status})"

    @property
    def percent(self) -> int:
        return int(self.processed * 100 / self.total) if self.total else 0


# --- Enrolment notifications (outbox) ----------------------------------------------------------


class EnrolmentNotification(models.Model):
    """A `targetLoyaltyCustomerEnrollment` event (reference 004), one per customer and target.

    The unique constraint means re-uploading or re-enrolling never notifies twice.
    """

    EVENT_NAME = "targetLoyaltyCustomerEnrollment"

    # See Enrolment: organisation and target group are scoping copies of the target's.
    organisation = scoping_copy(Organisation)
    target_group = scoping_copy(TargetGroup)
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="+", db_index=False)
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    event_name = models.CharField(max_length=60, default=EVENT_NAME)
    source = models.CharField(max_length=20, choices=EnrolmentSource.choices)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["target", "customer"], name="enrolment_notification_once"
            ),
        ]
        indexes = [
            models.Index(
                fields=["id"],
                name="enrol_notification_unsent_idx",
                condition=Q(sent_at__isnull=True),
            ),
            # (target, customer) lookups use the unique constraint's index: no second index
            # to keep up on the million-row import path
        ]
        ordering = ["id"]

    def __str__(self):
        return f"{self.event_name} {self.customer_id} {self.target_id}"
