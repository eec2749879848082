"""Signals the evaluation engine sends to the apps above it (promotions, member care).

- `activities_tracked`: a tracking run wrote its rows and committed. kwargs `result`
  (`tracking.TrackResult`: `events`, the ids of the target events written;
  `achieved_targets`). Sent by the tracking task and by reprocessing, after commit.
- `cycles_evaluated`: a cycle-end evaluation wrote period-elapsed events and committed.
  kwargs `event_ids`.
- `timeline_actions`: asked while the customer's milestones timeline is built. kwargs
  `event_ids`; each receiver answers `{event_id: [action dicts]}` (promotions: what its
  ledger paid for each event).
"""

from django.db import transaction
from django.dispatch import Signal

activities_tracked = Signal()
cycles_evaluated = Signal()
timeline_actions = Signal()


def send_after_commit(signal: Signal, **kwargs) -> None:
    """Send once the current transaction commits (at once when there is none)."""
    transaction.on_commit(lambda: signal.send(sender=Signal, **kwargs))
