"""How evaluation answers the configuration screens (connected in EvaluationConfig.ready):
whether a milestone's stored activities can be re-processed, and "Re-process now"."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError

from milestones.cycles import day_start


def reprocess_available(sender=None, target_group=None, **kwargs) -> bool:
    """milestones.signals.reprocess_available: stored (tracked) activities fall inside the
    milestone's dates, so re-processing would count something."""
    from .models import Activity, ActivityStatus

    tz = target_group.organisation.tzinfo
    return Activity.objects.filter(
        organisation_id=target_group.organisation_id,
        status=ActivityStatus.DONE,
        occurred_at__gte=day_start(target_group.start, tz),
        occurred_at__lt=day_start(target_group.end + timedelta(days=1), tz),
    ).exists()


def reprocess_requested(sender=None, target_group=None, **kwargs) -> int:
    """milestones.signals.reprocess_requested: start a reprocessing run (queued after commit,
    as the API's POST .../reprocess/ does) and answer its id."""
    from .reprocess import reprocess_start

    if not target_group.is_active:
        raise ValidationError(
            "An inactive milestone tracks nothing: activate it before re-processing."
        )
    return reprocess_start(target_group=target_group).pk
