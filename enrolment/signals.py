"""Signals the enrolment app sends.

`customers_enrolled` is sent after the enrolling transaction commits (transaction.on_commit),
with kwargs `target_group` (TargetGroup), `customer_ids` (list of int, at most
SIGNAL_CHUNK per send: big imports send several times) and `source` (an EnrolmentSource value).
Only customers newly enrolled (new row, or an inactive enrolment re-activated) are listed.
"""

from django.dispatch import Signal

SIGNAL_CHUNK = 5000

customers_enrolled = Signal()
