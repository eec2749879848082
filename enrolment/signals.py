"""Signals the enrolment app sends.

`customers_enrolled` is sent after the enrolling transaction commits (transaction.on_commit),
with kwargs `target_group` (TargetGroup), `customer_ids` (list of int, at most
SIGNAL_CHUNK per send: big imports send several times) and `source` (an EnrolmentSource value).
Only customers newly enrolled (new row, or an inactive enrolment re-activated) are listed.

`notifications_written` is sent INSIDE the transaction that writes enrolment notifications
(`notifications.notifications_write`, the PostgreSQL import's `_notify`), so what a receiver
writes (the webhooks outbox) commits or rolls back with them. kwargs `organisation_id`,
`notification_ids` (the rows written; the payloads' `eventId` is stamped already).
"""

from django.dispatch import Signal

SIGNAL_CHUNK = 5000

customers_enrolled = Signal()
notifications_written = Signal()
