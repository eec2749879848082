"""Signals the evaluation engine sends to the apps above it (promotions, member care).

- `activities_tracked`: a tracking run wrote its rows and committed. kwargs `result`
  (`tracking.TrackResult`: `events`, the ids of the target events written;
  `achieved_targets`). Sent by the tracking task and by reprocessing, after commit.
- `cycles_evaluated`: a cycle-end evaluation wrote period-elapsed events and committed.
  kwargs `event_ids`.
- `target_events_written`: target events were just written, sent INSIDE the writing
  transaction (unlike the two above), so what a receiver writes (the webhooks outbox) commits
  or rolls back with them. kwargs `organisation_id`, `event_ids` (only the rows this writer
  inserted). Sent by tracking (`tracking._flush`), the cycle-end evaluation (`cycle_end`)
  and the near-miss check (`near_miss`). A receiver that raises rolls the events back: keep receivers small.
- `timeline_actions`: asked while the customer's milestones timeline is built. kwargs
  `event_ids`; each receiver answers `{event_id: [action dicts]}` (promotions: what its
  ledger paid for each event).
"""

from django.db import transaction
from django.dispatch import Signal

activities_tracked = Signal()
cycles_evaluated = Signal()
target_events_written = Signal()
timeline_actions = Signal()


def send_after_commit(signal: Signal, **kwargs) -> None:
    """Send once the current transaction commits (at once when there is none)."""
    transaction.on_commit(lambda: signal.send(sender=Signal, **kwargs))
