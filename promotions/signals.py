"""Signals the promotions app sends to the apps above it (webhooks).

- `awards_written`: ledger rows were just written for one target event, sent INSIDE the
  consumer's transaction (`consumer._consume_one`), so what a receiver writes (the webhooks
  outbox) commits or rolls back with the awards. kwargs `organisation_id`, `award_ids`
  (every row written: done, capped, failed or skipped). A receiver that raises rolls the
  event's consumption back (it is retried): keep receivers small.
"""

from django.dispatch import Signal

awards_written = Signal()
