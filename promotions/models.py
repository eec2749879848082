"""Loyalty promotions on target events, their actions, and the awards ledger.

A promotion listens to one target activity, holds a condition in the rule language and
ordered actions. Each action paid for an event is one `Award` row, unique per (promotion,
event, action index): a redelivered event finds its row and pays nothing twice. An award
records the milestone (target group) and target whose event caused it, so the liability of
each milestone is known even when one promotion serves several.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from enrolment.models import Customer
from evaluation.models import TargetEvent, TargetEventType
from milestones.models import Organisation, Store, Target, TargetGroup, User
from rules import MAX_RULE_LENGTH, RuleError, compile_rule

from .templating import TemplateError, validate_template


class PromotionActivity(models.TextChoices):
    TARGET_PERIOD_ELAPSED = "target_period_elapsed", "Target period elapsed"
    SUB_TARGET_REACHED = "sub_target_reached", "Sub-target reached"
    ENROLLED = "enrolled", "Enrolled in a milestone"
    NEAR_MISS = "near_miss", "Near miss (close to the target near the cycle's end)"


#: which promotion activities each kind of target event reaches (reference 001: the
#: immediate achievement, the sub-target and the end-of-cycle events all reach promotions
#: on "target period elapsed"; the two other activities only get their own events).
EVENT_ACTIVITIES: dict[str, tuple[str, ...]] = {
    TargetEventType.TARGET_ACHIEVED: (PromotionActivity.TARGET_PERIOD_ELAPSED,),
    TargetEventType.PERIOD_ELAPSED: (PromotionActivity.TARGET_PERIOD_ELAPSED,),
    TargetEventType.SUB_TARGET_ACHIEVED: (
        PromotionActivity.TARGET_PERIOD_ELAPSED,
        PromotionActivity.SUB_TARGET_REACHED,
    ),
    TargetEventType.ENROLLED: (PromotionActivity.ENROLLED,),
    TargetEventType.NEAR_MISS: (PromotionActivity.NEAR_MISS,),
}

#: the immediate events; with ENABLE_AWARD_WHEN_TARGET_ACHIEVED inactive they do not reach
#: "target period elapsed" promotions (only the end-of-cycle event does).
IMMEDIATE_EVENTS = frozenset({TargetEventType.TARGET_ACHIEVED, TargetEventType.SUB_TARGET_ACHIEVED})


class ActionType(models.TextChoices):
    AWARD_POINTS = "award_points", "Award points"
    ISSUE_COUPON = "issue_coupon", "Issue a coupon"
    SEND_MESSAGE = "send_message", "Send a message"


class PointsBasis(models.TextChoices):
    FIXED = "fixed", "Fixed points"
    PERCENT_OF_ACHIEVED = "percent_of_achieved", "Percent of the achieved value"
    PERCENT_OVER_TARGET = "percent_over_target", "Percent of the over-achievement above the target"


class Rounding(models.TextChoices):
    ACTUAL = "actual", "Actual (keep decimals)"
    FLOOR = "floor", "Floor (drop decimals)"
    ROUND = "round", "Round (half up)"


class AwardPointsType(models.TextChoices):
    REGULAR = "regular", "Regular"
    PROMOTIONAL = "promotional", "Promotional"


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"


class Promotion(models.Model):
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="promotions"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    activity = models.CharField(
        max_length=30,
        choices=PromotionActivity.choices,
        default=PromotionActivity.TARGET_PERIOD_ELAPSED,
    )
    start = models.DateField()
    end = models.DateField()
    is_active = models.BooleanField(default=True)
    condition = models.TextField(
        max_length=MAX_RULE_LENGTH,
        help_text='A rule on currentEvent, e.g. currentEvent.targetAchieved("ABC") > '
        'currentEvent.targetDefined("ABC") && currentEvent.isTargetAchievedEvent == true',
    )
    # Budget caps (blank: no cap). An award that would pass one is recorded as `capped`.
    cap_points_total = models.DecimalField(
        max_digits=18, decimal_places=4, null=True, blank=True,
        help_text="Most points the promotion pays in all.",
    )  # fmt: skip
    cap_coupons_total = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most coupons the promotion issues in all."
    )
    cap_points_per_customer_per_cycle = models.DecimalField(
        max_digits=18, decimal_places=4, null=True, blank=True,
        help_text="Most points one customer gets from it in one cycle of a milestone.",
    )  # fmt: skip
    cap_warned = models.JSONField(
        default=dict, blank=True,
        help_text="The caps whose 80 % warning was sent (cap name -> when), so it is sent once.",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    CAP_FIELDS = ("cap_points_total", "cap_coupons_total", "cap_points_per_customer_per_cycle")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "name"], name="promotion_name_unique_per_org"
            ),
            models.CheckConstraint(
                condition=(Q(cap_points_total__isnull=True) | Q(cap_points_total__gte=0))
                & (
                    Q(cap_points_per_customer_per_cycle__isnull=True)
                    | Q(cap_points_per_customer_per_cycle__gte=0)
                ),
                name="promotion_caps_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(end__gte=F("start")), name="promotion_end_after_start"
            ),
        ]
        indexes = [models.Index(fields=["organisation", "activity", "is_active"])]
        ordering = ["id"]

    def __str__(self):
        return self.name

    def rule(self):
        return compile_rule(self.condition, purpose="promotion")

    @property
    def has_caps(self) -> bool:
        return any(getattr(self, f) is not None for f in self.CAP_FIELDS)

    def is_live_on(self, day) -> bool:
        return self.is_active and self.start <= day <= self.end

    def clean(self):
        errors: dict[str, list[str]] = {}
        if self.start and self.end and self.end < self.start:
            errors.setdefault("end", []).append("The end date is before the start date.")
        rule = None
        try:
            rule = compile_rule(self.condition or "", purpose="promotion")
        except RuleError as exc:
            errors.setdefault("condition", []).append(str(exc))
        if rule is not None and self.organisation_id:
            groups, unknown = named_milestones(self.organisation_id, rule.target_names)
            for name in unknown:
                position = _name_position(self.condition, name)
                errors.setdefault("condition", []).append(
                    str(
                        RuleError(
                            f"Unknown target {name!r}: no target or milestone of this "
                            "organisation has that name",
                            position,
                        )
                    )
                )
            if self.start and self.end:
                for group in groups:
                    if self.start > group.start or self.end < group.end:
                        errors.setdefault("end", []).append(
                            f"The promotion ({self.start} to {self.end}) is shorter than the "
                            f"milestone {group.name!r} it names ({group.start} to {group.end}): "
                            "its duration may not be shorter than the milestone's."
                        )
        if errors:
            raise ValidationError(errors)


def _name_position(source: str, name: str) -> int | None:
    for quote in ('"', "'"):
        at = source.find(f"{quote}{name}{quote}")
        if at >= 0:
            return at
    return None


def named_milestones(organisation_id: int, names) -> tuple[list[TargetGroup], list[str]]:
    """The milestones (target groups) a rule names, by target name or milestone name, and
    the names that match nothing."""
    names = set(names)
    if not names:
        return [], []
    groups: dict[int, TargetGroup] = {}
    found = set()
    for target in Target.objects.filter(
        organisation_id=organisation_id, name__in=names
    ).select_related("target_group"):
        groups[target.target_group_id] = target.target_group
        found.add(target.name)
    for group in TargetGroup.objects.filter(organisation_id=organisation_id, name__in=names):
        groups[group.id] = group
        found.add(group.name)
    ordered = sorted(groups.values(), key=lambda g: g.id)
    return ordered, sorted(names - found)


class CouponSeries(models.Model):
    """A pool of coupon codes; an issue takes one free code (unique per organisation)."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="coupon_series"
    )
    code = models.CharField(max_length=64, help_text="What promotions refer to, e.g. SUMMER10.")
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    valid_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Days an issued coupon stays valid; blank: no expiry."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "coupon series"
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "code"], name="coupon_series_code_unique_per_org"
            ),
        ]
        ordering = ["code"]

    def __str__(self):
        return self.code


class Coupon(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    series = models.ForeignKey(CouponSeries, on_delete=models.CASCADE, related_name="coupons")
    code = models.CharField(max_length=64)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="coupons"
    )
    issued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "code"], name="coupon_code_unique_per_org"
            ),
            models.CheckConstraint(
                condition=Q(issued_at__isnull=True, customer__isnull=True)
                | Q(issued_at__isnull=False, customer__isnull=False),
                name="coupon_issued_to_a_customer",
            ),
        ]
        indexes = [
            models.Index(
                fields=["series", "id"],
                name="coupon_free_idx",
                condition=Q(issued_at__isnull=True),
            ),
        ]
        ordering = ["id"]

    def __str__(self):
        return self.code


class PromotionAction(models.Model):
    """One action of a promotion, in order (`position` 0, 1, ...)."""

    promotion = models.ForeignKey(Promotion, on_delete=models.CASCADE, related_name="actions")
    position = models.PositiveIntegerField(default=0)
    type = models.CharField(max_length=20, choices=ActionType.choices)
    # award_points
    basis = models.CharField(max_length=30, choices=PointsBasis.choices, blank=True)
    points = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    percent = models.DecimalField(max_digits=9, decimal_places=4, null=True, blank=True)
    rounding = models.CharField(
        max_length=10, choices=Rounding.choices, blank=True, default=Rounding.ACTUAL
    )
    expiry_days = models.PositiveIntegerField(null=True, blank=True)
    points_type = models.CharField(
        max_length=20, choices=AwardPointsType.choices, blank=True, default=AwardPointsType.REGULAR
    )
    # issue_coupon
    series = models.ForeignKey(
        CouponSeries, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # send_message
    channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    template = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["promotion", "position"], name="promotion_action_position_unique"
            ),
            models.CheckConstraint(
                condition=Q(points__isnull=True) | Q(points__gte=0),
                name="promotion_action_points_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(percent__isnull=True) | Q(percent__gte=0),
                name="promotion_action_percent_not_negative",
            ),
        ]
        ordering = ["promotion_id", "position"]

    def __str__(self):
        return f"{self.position}: {self.get_type_display()}"

    def clean(self):
        errors: dict[str, list[str]] = {}

        def need(field, message):
            errors.setdefault(field, []).append(message)

        if self.type == ActionType.AWARD_POINTS:
            if self.basis not in PointsBasis.values:
                need("basis", f"Choose the points basis: {', '.join(PointsBasis.values)}.")
            elif self.basis == PointsBasis.FIXED and self.points in (None, ""):
                need("points", "Fixed points need the number of points.")
            elif self.basis != PointsBasis.FIXED and self.percent in (None, ""):
                need("percent", f"{self.get_basis_display()} needs the percent.")
            if self.rounding not in Rounding.values:
                need("rounding", f"Choose the rounding: {', '.join(Rounding.values)}.")
            if self.points_type not in AwardPointsType.values:
                need("points_type", f"Choose the points type: {', '.join(AwardPointsType.values)}.")
        elif self.type == ActionType.ISSUE_COUPON:
            if self.series_id is None:
                need("series", "Choose the coupon series to issue from.")
        elif self.type == ActionType.SEND_MESSAGE:
            if self.channel not in Channel.values:
                need("channel", f"Choose the channel: {', '.join(Channel.values)}.")
            try:
                validate_template(self.template)
            except TemplateError as exc:
                need("template", str(exc))
        else:
            need("type", f"Unknown action type; use one of {', '.join(ActionType.values)}.")
        if errors:
            raise ValidationError(errors)

    def describe(self) -> str:
        if self.type == ActionType.AWARD_POINTS:
            if self.basis == PointsBasis.FIXED:
                what = f"{self.points} points"
            else:
                what = f"{self.percent}% {self.get_basis_display().lower()}"
            return f"Award {what} ({self.points_type}, {self.rounding})"
        if self.type == ActionType.ISSUE_COUPON:
            return f"Issue a coupon from {self.series}"
        return f"Send {self.get_channel_display()}: {self.template[:60]}"


class AwardStatus(models.TextChoices):
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped (nothing to give)"
    CAPPED = "capped", "Capped (a budget cap was reached; nothing given)"


class Award(models.Model):
    """The ledger: one row per action run for an event (done, failed or skipped)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    promotion = models.ForeignKey(Promotion, on_delete=models.PROTECT, related_name="awards")
    event = models.ForeignKey(TargetEvent, on_delete=models.PROTECT, related_name="awards")
    achievement = models.CharField(
        max_length=200,
        help_text="What was paid for: the customer, target, cycle and trigger (target reached, "
        "sub-target S reached, cycle end), as TargetEvent.achievement spells it.",
    )
    action_index = models.PositiveIntegerField()
    type = models.CharField(max_length=20, choices=ActionType.choices)
    status = models.CharField(max_length=10, choices=AwardStatus.choices)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="awards")
    target_group = models.ForeignKey(TargetGroup, on_delete=models.PROTECT, related_name="+")
    target = models.ForeignKey(
        Target, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    period = models.CharField(max_length=200, blank=True)
    cycle_ordinal = models.PositiveIntegerField(null=True, blank=True)
    points = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    points_type = models.CharField(max_length=20, choices=AwardPointsType.choices, blank=True)
    expires_on = models.DateField(null=True, blank=True)
    till = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    coupon = models.OneToOneField(
        Coupon, null=True, blank=True, on_delete=models.PROTECT, related_name="award"
    )
    coupon_code = models.CharField(max_length=64, blank=True)
    channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    message = models.TextField(blank=True)
    error = models.TextField(blank=True)
    depth = models.PositiveSmallIntegerField(
        default=0, help_text="1 when the event was caused by points from another award."
    )
    fed_activity = models.CharField(
        max_length=200, blank=True, help_text="The points activity written back to tracking."
    )
    awarded_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["promotion", "event", "action_index"], name="award_once_per_action"
            ),
            # exactly once per achievement: whatever event carries it again
            models.UniqueConstraint(
                fields=["promotion", "achievement", "action_index"],
                name="award_once_per_achievement",
            ),
            models.CheckConstraint(
                condition=Q(points__isnull=True) | Q(points__gte=0),
                name="award_points_not_negative",
            ),
        ]
        indexes = [
            models.Index(fields=["organisation", "target_group", "target"]),
            models.Index(fields=["customer", "id"]),
            models.Index(fields=["promotion", "id"]),
        ]
        ordering = ["id"]

    def __str__(self):
        return f"{self.type} #{self.action_index} of {self.promotion_id} for event {self.event_id}"


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class CommunicationKind(models.TextChoices):
    PERIOD_START = "period_start", "Start of evaluation period"
    PERIOD_END = "period_end", "End of evaluation period"
    TARGET_VALUE_CHANGED = "target_value_changed", "Change of target value"


class Communication(models.Model):
    """The old flow's communications of a milestone (reference 004), sent through the same
    message machinery as promotion messages."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    target_group = models.ForeignKey(
        TargetGroup, on_delete=models.CASCADE, related_name="communications"
    )
    kind = models.CharField(max_length=30, choices=CommunicationKind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    subject = models.CharField(max_length=200, blank=True)
    template = models.TextField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["target_group", "kind", "channel"], name="communication_once_per_kind"
            ),
        ]
        ordering = ["target_group_id", "kind", "channel"]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.channel}) of {self.target_group_id}"

    def clean(self):
        try:
            validate_template(self.template)
        except TemplateError as exc:
            raise ValidationError({"template": [str(exc)]})


SMS_SENDER_RE = r"^(?:[A-Za-z0-9]{3,11}|\+?[0-9]{3,15})$"


class Sender(models.Model):
    """A sender the organisation may send as: an SMS sender id ("ACMEIN", or a number) or an
    email address with its display name. Milestones pick theirs in their delivery settings."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    sender_id = models.CharField(
        max_length=254,
        help_text="SMS: 3 to 11 letters and digits, or a number. Email: the address.",
    )
    name = models.CharField(max_length=100, blank=True, help_text="Email: the sender's name.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "channel", "sender_id"], name="sender_unique_per_org"
            )
        ]
        ordering = ["channel", "sender_id"]

    def __str__(self):
        if self.channel == Channel.EMAIL and self.name:
            return f"{self.name} <{self.sender_id}> (email)"
        return f"{self.sender_id} ({self.get_channel_display()})"

    def clean(self):
        import re

        from django.core.validators import validate_email

        if self.channel == Channel.SMS and not re.match(SMS_SENDER_RE, self.sender_id or ""):
            raise ValidationError(
                {"sender_id": ["An SMS sender id is 3 to 11 letters and digits, or a number."]}
            )
        if self.channel == Channel.EMAIL:
            try:
                validate_email(self.sender_id)
            except ValidationError:
                raise ValidationError({"sender_id": ["An email sender id is an email address."]})
        if self.channel == Channel.SMS and self.name:
            raise ValidationError({"name": ["Only an email sender has a name."]})

    @property
    def from_header(self) -> str:
        """What a message's sender field holds: the SMS id, or `Name <address>`."""
        if self.channel == Channel.EMAIL and self.name:
            from email.utils import formataddr

            return formataddr((self.name, self.sender_id))
        return self.sender_id


MAX_OFFSET_HOURS = 720


class DeliverySettings(models.Model):
    """A milestone's delivery settings for its communications (reference 004: "Delivery
    settings": SMS sender details, email sender details, delivery offset)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    target_group = models.OneToOneField(
        TargetGroup, on_delete=models.CASCADE, related_name="delivery_settings"
    )
    sms_sender = models.ForeignKey(
        Sender, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        limit_choices_to={"channel": Channel.SMS}, verbose_name="SMS sender id",
    )  # fmt: skip
    email_sender = models.ForeignKey(
        Sender, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        limit_choices_to={"channel": Channel.EMAIL}, verbose_name="Email sender",
    )  # fmt: skip
    delivery_offset_hours = models.PositiveIntegerField(
        default=0,
        help_text=f"Send each communication this many hours after its trigger (0 to "
        f"{MAX_OFFSET_HOURS}).",
    )

    class Meta:
        verbose_name_plural = "delivery settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(delivery_offset_hours__lte=MAX_OFFSET_HOURS),
                name="delivery_offset_at_most_30_days",
            )
        ]

    def __str__(self):
        return f"Delivery settings of {self.target_group}"

    def clean(self):
        errors = {}
        if self.delivery_offset_hours is not None and self.delivery_offset_hours > MAX_OFFSET_HOURS:
            errors["delivery_offset_hours"] = [f"At most {MAX_OFFSET_HOURS} hours (30 days)."]
        for field, channel in (("sms_sender", Channel.SMS), ("email_sender", Channel.EMAIL)):
            sender = getattr(self, field)
            if sender is not None and (
                sender.channel != channel or sender.organisation_id != self.organisation_id
            ):
                errors[field] = [f"Choose one of the organisation's {channel} senders."]
        if errors:
            raise ValidationError(errors)

    def sender_for(self, channel: str) -> str:
        sender = self.sms_sender if channel == Channel.SMS else self.email_sender
        return sender.from_header if sender is not None else ""


class Message(models.Model):
    """The outbox of messages: emails are sent through Django's email backend; SMS rows wait
    here for the SMS gateway (status pending). `send_after`: not before (a delivery offset)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="messages")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    recipient = models.CharField(max_length=254)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    status = models.CharField(
        max_length=10, choices=MessageStatus.choices, default=MessageStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    award = models.ForeignKey(
        Award, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    communication = models.ForeignKey(
        Communication, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    sender = models.CharField(
        max_length=254, blank=True, help_text="The SMS sender id or the email From; blank: default."
    )
    send_after = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["channel", "id"],
                name="message_pending_idx",
                condition=Q(status__in=[MessageStatus.PENDING, MessageStatus.SENDING]),
            ),
            models.Index(fields=["customer", "id"]),
        ]
        ordering = ["id"]

    def __str__(self):
        return f"{self.channel} to {self.recipient}: {self.body[:40]}"


class CommunicationDelivery(models.Model):
    """A communication sent to one customer for one cycle (once; `key` tells target-value
    changes apart)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    communication = models.ForeignKey(
        Communication, on_delete=models.CASCADE, related_name="deliveries"
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    cycle_ordinal = models.PositiveIntegerField()
    key = models.CharField(max_length=100, blank=True, default="")
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["communication", "customer", "cycle_ordinal", "key"],
                name="communication_delivered_once",
            ),
        ]

    def __str__(self):
        return f"{self.communication_id} -> {self.customer_id} C{self.cycle_ordinal} {self.key}"


class TargetValueSeen(models.Model):
    """The target value last seen for a customer in a cycle, to notice a change."""

    communication = models.ForeignKey(Communication, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="+")
    cycle_ordinal = models.PositiveIntegerField()
    value = models.DecimalField(max_digits=18, decimal_places=4, default=Decimal(0))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["communication", "customer", "target", "cycle_ordinal"],
                name="target_value_seen_unique",
            ),
        ]

    def __str__(self):
        return f"{self.customer_id} {self.target_id} C{self.cycle_ordinal} = {self.value}"


class ConsumeFailure(models.Model):
    """A target event whose consumption failed (the poison-pill policy): the error, how many
    automatic attempts it had, and when. The event stays unconsumed; the sweep retries it
    after a backoff until MAX_ATTEMPTS, then it waits for a person (the admin's retry action).
    Consumed successfully, the row is deleted."""

    MAX_ATTEMPTS = 3

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    event = models.OneToOneField(
        TargetEvent, on_delete=models.CASCADE, related_name="consume_failure"
    )
    attempts = models.PositiveIntegerField(default=1)
    error = models.TextField()
    failed_at = models.DateTimeField()

    class Meta:
        verbose_name = "target event that failed consumption"

    def __str__(self):
        return f"event {self.event_id}: {self.attempts} attempt(s)"

    @property
    def exhausted(self) -> bool:
        return self.attempts >= self.MAX_ATTEMPTS
