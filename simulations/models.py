"""A simulation (backtest): a milestone configuration, and the promotions it would trigger,
replayed over a past window of the organisation's stored activities. It writes nothing of
real milestones; its only row is this one, with the request, the progress of the run and
the result (`docs/simulation.md`)."""

from django.db import models
from django.db.models import Q

from milestones.models import Organisation, User


class SimulationStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a worker"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Simulation(models.Model):
    """One run. `input` is the request as accepted (the API's shape, validated); `result`
    the numbers per target and cycle once done (`simulations.report`).

    The status moves pending -> running -> done | failed, each move a conditional update in
    `simulations.services` (a second worker finds the run claimed and stops)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    label = models.CharField(
        max_length=200, blank=True, help_text="What this run tries, shown on the report page."
    )
    input = models.JSONField(default=dict, help_text="The request, as accepted.")
    status = models.CharField(
        max_length=10, choices=SimulationStatus.choices, default=SimulationStatus.PENDING
    )
    total = models.PositiveIntegerField(default=0, help_text="Customers to replay.")
    processed = models.PositiveIntegerField(default=0, help_text="Customers replayed so far.")
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["organisation", "-id"]),
            models.Index(
                fields=["status"],
                name="simulation_open_idx",
                condition=Q(status__in=["pending", "running"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(processed__lte=models.F("total")) | Q(total=0),
                name="simulation_processed_within_total",
            ),
        ]

    def __str__(self):
        return f"simulation {self.pk}: {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in (SimulationStatus.DONE, SimulationStatus.FAILED)

    @property
    def percent(self) -> int:
        """How far the run is, 0..100, for the progress bar."""
        if self.status == SimulationStatus.DONE:
            return 100
        if not self.total:
            return 0
        return min(100, self.processed * 100 // self.total)
