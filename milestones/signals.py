"""Signals other apps listen to (enrolment follows a milestone's audience)."""

from django.dispatch import Signal

# kwargs: target_group, created (bool), audience_group (id or None, as given by the caller)
target_group_saved = Signal()
