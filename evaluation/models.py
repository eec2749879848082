from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from enrolment.models import Customer
from milestones.models import Organisation, Period, SubTarget, Target, TargetGroup, scoping_copy


class ActivityType(models.TextChoices):
    TRANSACTION = "transaction", "Transaction"
    RETURN = "return", "Return"
    EVENT = "event", "Behavioural event"
    CUSTOMER_EVENT = "customer_event", "Customer-level event"
    POINTS = "points", "Points earned"


class ActivityStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Tracked"
    FAILED = "failed", "Failed"


class Activity(models.Model):
    """What a customer did, stored durably before anything is tracked.

    `external_id` is the integrator's idempotency key: unique per organisation, so a retry or
    a replay is recognised as a duplicate and counted once. Its uniqueness lives in
    `ActivityKey` (below), written in the same transaction as the activity: on PostgreSQL
    this table is partitioned by month on `occurred_at` (`evaluation/partitions.py`), and a
    unique constraint on a partitioned table must include the partition key. There the
    primary key is `(id, occurred_at)`; `id` alone stays the pk Django knows, and it is still
    unique (one identity sequence feeds every partition).

    Foreign keys that lead a composite index here or below carry no index of their own
    (`db_index=False`): tracking updates activity and progress rows all the time, and a
    non-HOT update writes an entry into every index of the table.
    """

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    external_id = models.CharField(max_length=200)
    type = models.CharField(max_length=20, choices=ActivityType.choices)
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="activities", db_index=False
    )
    occurred_at = models.DateTimeField()
    store_code = models.CharField(max_length=64, blank=True)
    name = models.CharField(
        max_length=100, blank=True, help_text="Event or customer-level event name."
    )
    bill_number = models.CharField(max_length=100, blank=True)
    payload = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10, choices=ActivityStatus.choices, default=ActivityStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "activities"
        # Migration 0009 recreates these on the partitioned table (PostgreSQL): a change here
        # is an ordinary AddIndex/RemoveIndex migration, which PostgreSQL applies to every
        # partition.
        indexes = [
            models.Index(
                fields=["status", "id"],
                name="activity_pending_idx",
                condition=Q(status=ActivityStatus.PENDING),
            ),
            models.Index(fields=["customer", "occurred_at"]),
            models.Index(fields=["organisation", "occurred_at"]),
            models.Index(
                fields=["customer", "bill_number"],
                name="activity_bill_idx",
                condition=~Q(bill_number=""),
            ),
        ]

    def __str__(self):
        return f"{self.type} {self.external_id}"


class ActivityKey(models.Model):
    """An activity's idempotency key: (organisation, the integrator's id), unique. Ingest
    inserts the batch's keys `ON CONFLICT DO NOTHING RETURNING` and then only the activities
    of the keys it got back, in one transaction (`evaluation/ingest.py`): a retry, a replay or
    a concurrent copy of a batch is recognised and counted once.

    Keys outlive their activities: `prune_activities` drops old months of activities and
    keeps their keys, so a replay of an old id is still answered "duplicate" instead of
    being stored and counted again (a key is a few dozen bytes; an activity is its payload).
    """

    pk = models.CompositePrimaryKey("organisation", "external_id")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    external_id = models.CharField(max_length=200)

    def __str__(self):
        return f"{self.organisation_id}:{self.external_id}"


class NearMissRule(models.Model):
    """A target's near-miss event (optional): a customer within `within_percent` of the
    target with at most `days_left` days of the cycle left gets one `near_miss` target event
    per cycle (checked daily by beat). Promotions on "Near miss" hear it
    (`currentEvent.isNearMissEvent`), and so do webhooks (`target.near_miss`)."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    target = models.OneToOneField(Target, on_delete=models.CASCADE, related_name="near_miss")
    within_percent = models.DecimalField(
        max_digits=5, decimal_places=2,
        help_text="How close counts as near: within this percent of the target (0 to 50).",
    )  # fmt: skip
    days_left = models.PositiveIntegerField(
        help_text="Only when at most this many days of the cycle are left (1 to 31), today "
        "included, in the organisation's time zone."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(within_percent__gt=0) & Q(within_percent__lte=50),
                name="near_miss_percent_0_to_50",
            ),
            models.CheckConstraint(
                condition=Q(days_left__gte=1) & Q(days_left__lte=31),
                name="near_miss_days_1_to_31",
            ),
        ]

    def __str__(self):
        return f"Near miss of {self.target}: within {self.within_percent}% with {self.days_left} days left"

    def clean(self):
        errors = {}
        if self.within_percent is not None and not (0 < self.within_percent <= 50):
            errors["within_percent"] = ["Give a percent above 0 and at most 50."]
        if self.days_left is not None and not (1 <= self.days_left <= 31):
            errors["days_left"] = ["Give 1 to 31 days."]
        if (
            self.target_id
            and self.organisation_id
            and (self.target.target_group.organisation_id != self.organisation_id)
        ):
            errors["target"] = ["Choose a target of your organisation."]
        if self.target_id and not self.target.target_group.has_fixed_periods:
            errors["target"] = [
                "Near misses need cycles with an end date: fixed calendar or custom periods."
            ]
        if errors:
            raise ValidationError(errors)


class CycleAnchor(models.Model):
    """Per-customer cycles (cyclic window, till achievement) start at the customer's first
    tracked activity on or after the cycle start; retro activities never move it."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    target_group = models.ForeignKey(
        TargetGroup, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    anchor_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["target_group", "customer"], name="cycle_anchor_unique")
        ]

    def __str__(self):
        return f"{self.customer_id}@{self.target_group_id} from {self.anchor_at}"


class Progress(models.Model):
    """A customer's achieved value for one target in one cycle."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    target = models.ForeignKey(
        Target, on_delete=models.CASCADE, related_name="progress", db_index=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="progress", db_index=False
    )
    cycle_ordinal = models.PositiveIntegerField()
    period = models.ForeignKey(
        Period, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    cycle_start = models.DateTimeField()
    cycle_end = models.DateTimeField(
        null=True, blank=True, help_text="Exclusive; open for a till-achievement cycle."
    )
    target_value = models.DecimalField(max_digits=18, decimal_places=4)
    achieved = models.DecimalField(max_digits=22, decimal_places=4, default=0)
    achieved_at = models.DateTimeField(null=True, blank=True)
    reached_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the current value was reached (ties on leaderboards).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "progress"
        constraints = [
            models.UniqueConstraint(
                fields=["target", "customer", "cycle_ordinal"], name="progress_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "target"]),
            models.Index(
                fields=["target", "cycle_ordinal", "-achieved", "reached_at"],
                name="progress_rank_idx",
            ),
        ]

    def __str__(self):
        return f"{self.customer_id} {self.target_id} C{self.cycle_ordinal}: {self.achieved}/{self.target_value}"


class ProgressDay(models.Model):
    """Per-day state for the day-based KPIs (days of activity, sum of each day's highest value)."""

    progress = models.ForeignKey(
        Progress, on_delete=models.CASCADE, related_name="days", db_index=False
    )
    day = models.DateField()
    value = models.DecimalField(max_digits=22, decimal_places=4, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["progress", "day"], name="progress_day_unique")
        ]

    def __str__(self):
        return f"{self.progress_id} {self.day}={self.value}"


class Contribution(models.Model):
    """How much a billed transaction added to a sales/quantity progress row: a return finds
    here the cycle that counted its bill. (Other contributions are not stored.)

    `activity` has no foreign-key constraint in the database: on PostgreSQL activities are
    partitioned and a foreign key to them would have to carry `occurred_at` too. The ORM
    still cascades, and `prune_activities` deletes a month's contributions before the month
    (`evaluation.partitions`)."""

    activity = models.ForeignKey(
        Activity,
        on_delete=models.CASCADE,
        related_name="contributions",
        db_index=False,
        db_constraint=False,
    )
    progress = models.ForeignKey(Progress, on_delete=models.CASCADE, related_name="contributions")
    amount = models.DecimalField(max_digits=22, decimal_places=4)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["activity", "progress"], name="contribution_unique")
        ]

    def __str__(self):
        return f"{self.activity_id}->{self.progress_id} {self.amount}"


class TargetEventType(models.TextChoices):
    TARGET_ACHIEVED = "target_achieved", "Target achieved"
    SUB_TARGET_ACHIEVED = "sub_target_achieved", "Sub-target achieved"
    PERIOD_ELAPSED = "period_elapsed", "Target period elapsed"
    ENROLLED = "enrolled", "Enrolled"
    NEAR_MISS = "near_miss", "Near miss"


class TargetEvent(models.Model):
    """The outbox of events sent to loyalty promotions. `dedupe_key` makes each event unique:
    one per (type, target, customer, cycle[, sub-target])."""

    # Foreign keys already leading a composite index carry no index of their own: a cycle end
    # writes a row per enrolled customer, and every index costs on that path.
    # Organisation and target group are scoping copies of the target's (as on enrolment
    # notifications): no foreign-key constraint, whose check at commit would cost two lookups
    # per row on the million-row cycle-end path; the target and the customer keep theirs.
    organisation = scoping_copy(Organisation)
    type = models.CharField(max_length=30, choices=TargetEventType.choices)
    dedupe_key = models.CharField(max_length=200)
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="target_events", db_index=False
    )
    target_group = scoping_copy(TargetGroup)
    target = models.ForeignKey(
        Target, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    sub_target = models.ForeignKey(
        SubTarget,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    cycle_ordinal = models.PositiveIntegerField(null=True, blank=True)
    period_name = models.CharField(max_length=200, blank=True)
    achieved = models.DecimalField(max_digits=22, decimal_places=4, null=True, blank=True)
    defined = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    milestone_triggers = models.JSONField(default=list, blank=True)
    milestone_value_defined = models.DecimalField(
        max_digits=18, decimal_places=4, null=True, blank=True
    )
    is_target_achieved_event = models.BooleanField(default=False)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "dedupe_key"], name="target_event_once"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "created_at"]),
            # The sub-targets a cycle's customers reached, read at cycle end; partial, so the
            # period-elapsed rows of a cycle end never enter it.
            models.Index(
                fields=["target", "cycle_ordinal", "customer"],
                name="target_event_sub_reached_idx",
                condition=Q(type=TargetEventType.SUB_TARGET_ACHIEVED),
            ),
            models.Index(
                fields=["id"],
                name="target_event_unconsumed_idx",
                condition=Q(consumed_at__isnull=True),
            ),
        ]
        ordering = ["id"]

    def __str__(self):
        return f"{self.type} {self.dedupe_key}"

    @property
    def achievement(self) -> str:
        """What this event reports, as one key: the customer, the target (or the milestone of
        a unified one), the cycle and the trigger (target reached, sub-target S reached, cycle
        end, enrolled). A promotion pays an achievement at most once (promotions' ledger)."""
        return achievement_key(
            self.type, self.target_id, self.target_group_id, self.customer_id,
            self.cycle_ordinal, self.sub_target_id,
        )  # fmt: skip


def achievement_key(etype, target_id, group_id, customer_id, cycle, sub_target_id) -> str:
    what = f"t{target_id}" if target_id else f"g{group_id}"
    return f"{etype}:{what}:c{customer_id}:{cycle or 0}" + (
        f":s{sub_target_id}" if sub_target_id else ""
    )


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class EvaluationRun(models.Model):
    """One cycle-end evaluation of one fixed period: planned once (the unique period stops
    two overlapping runs), then worked in chunks of customers by id range."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    target_group = models.ForeignKey(TargetGroup, on_delete=models.CASCADE, related_name="+")
    period = models.OneToOneField(Period, on_delete=models.CASCADE, related_name="evaluation_run")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING)
    chunks = models.JSONField(
        default=list, help_text="[[first customer id, last customer id], ...]"
    )
    chunks_done = models.JSONField(default=list)
    total = models.PositiveIntegerField(default=0, help_text="Enrolled customers to evaluate.")
    processed = models.PositiveIntegerField(default=0)
    events_written = models.PositiveIntegerField(default=0)
    planned_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(
        null=True, blank=True, help_text="Lease: when chunks were last queued."
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"evaluation of {self.period_id}: {self.status}"


class ReprocessRun(models.Model):
    """Replaying stored activities for one milestone, with progress for the person waiting."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    target_group = models.ForeignKey(TargetGroup, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"reprocess {self.target_group_id}: {self.status}"


class GroupAchievement(models.Model):
    """A customer reached a whole target group in one cycle (every target; for unified groups,
    ALL or ANY as configured). Feeds the 'milestones achieved' KPI exactly once."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    target_group = models.ForeignKey(TargetGroup, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    cycle_ordinal = models.PositiveIntegerField()
    achieved_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["target_group", "customer", "cycle_ordinal"], name="group_achievement_once"
            ),
        ]

    def __str__(self):
        return f"{self.customer_id} reached {self.target_group_id} C{self.cycle_ordinal}"
