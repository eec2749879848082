"""Webhooks: an organisation's endpoints, the delivery outbox and the log of attempts.

A `WebhookDelivery` is written in the same transaction as the fact it reports (a target
event, an award, an enrolment notification, a milestone switched on or off), once per
subscribed endpoint: `(endpoint, fact_key)` is unique, so a replay or a reprocess that writes
the same fact again adds no second delivery. Its `webhook_id` is fixed when it is written and
sent with every attempt, so a receiver can de-duplicate (Standard Webhooks `webhook-id`).
"""

from __future__ import annotations

import base64
import secrets
import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from milestones.models import Organisation


class WebhookEventType(models.TextChoices):
    TARGET_ACHIEVED = "target.achieved", "Target achieved"
    SUB_TARGET_ACHIEVED = "sub_target.achieved", "Sub-target achieved"
    CYCLE_ELAPSED = "cycle.elapsed", "Cycle elapsed"
    TARGET_NEAR_MISS = "target.near_miss", "Target near miss"
    CUSTOMER_ENROLLED = "customer.enrolled", "Customer enrolled"
    AWARD_CREATED = "award.created", "Award created"
    AWARD_CAPPED = "award.capped", "Award capped"
    MILESTONE_ACTIVATED = "milestone.activated", "Milestone activated"
    MILESTONE_DEACTIVATED = "milestone.deactivated", "Milestone deactivated"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up; resend to try again)"


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes (the Standard Webhooks secret format)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_webhook_id() -> str:
    return "msg_" + uuid.uuid4().hex


class WebhookEndpoint(models.Model):
    """Where an organisation wants its events POSTed, and which ones."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=2000, help_text="http:// or https:// address to POST to.")
    secret = models.CharField(max_length=100, default=new_secret, editable=False)
    events = models.JSONField(default=list, help_text="The event types sent to this endpoint.")
    description = models.CharField(max_length=500, blank=True)
    is_active = models.BooleanField(default=True)
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="First failed attempt without a later success."
    )
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["organisation", "is_active"])]

    def __str__(self):
        return self.url

    def wants(self, event_type: str) -> bool:
        return self.is_active and event_type in (self.events or ())


class WebhookDelivery(models.Model):
    """One event for one endpoint: the outbox row and its delivery state."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    # indexed by the (endpoint, fact_key) unique constraint and the list index
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    webhook_id = models.CharField(max_length=40, unique=True, default=new_webhook_id)
    event_type = models.CharField(max_length=40, choices=WebhookEventType.choices)
    fact_key = models.CharField(
        max_length=255, help_text="What the event reports; one delivery per endpoint and fact."
    )
    body = models.JSONField(help_text='What is POSTed: {"type", "timestamp", "data"}.')
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    attempts_before_resend = models.PositiveIntegerField(
        default=0, help_text="Attempts made before the last resend (the retry budget restarts)."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_response_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "fact_key"], name="webhook_delivery_once_per_fact"
            ),
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="webhook_delivery_status"
            ),
        ]
        indexes = [
            # the sender's "what is due" scan: pending rows only
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due_idx",
                condition=Q(status="pending"),
            ),
            models.Index(fields=["endpoint", "id"], name="webhook_delivery_list_idx"),
        ]

    def __str__(self):
        return f"{self.event_type} {self.webhook_id}"


class WebhookAttempt(models.Model):
    """One POST of a delivery: what the receiver answered, how fast, or what went wrong."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["delivery_id", "number"]

    def __str__(self):
        return f"attempt {self.number} of {self.delivery_id}"

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
