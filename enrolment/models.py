from django.db import models
from django.db.models import Q

from milestones.models import Organisation, Target, TargetGroup


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


class EnrolmentSource(models.TextChoices):
    ALL_CUSTOMERS = "all_customers", "First activity (all customers)"
    AUDIENCE_GROUP = "audience_group", "Audience group"
    CUSTOM_LIST = "custom_list", "Custom list upload"
    API = "api", "API / admin"


class Enrolment(models.Model):
    """A customer is part of a milestone. Un-enrolling clears `is_active` and keeps the history."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    target_group = models.ForeignKey(
        TargetGroup, on_delete=models.CASCADE, related_name="enrolments"
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="enrolments")
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

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="customer_values")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="target_values")
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
