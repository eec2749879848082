"""Signals other apps listen to (enrolment follows a milestone's audience; promotions
follow a target's name).

The rename signals are sent *inside* the milestones service's transaction, unlike
`target_group_saved`: the apps above answer before the rename (`target_rename_check`) or
change their rows in the same transaction (`target_renamed`), so a refusal of theirs (a
rewritten promotion condition that no longer validates) rolls the rename back too.
"""

from django.dispatch import Signal

# kwargs: target_group, created (bool), audience_group (id or None, as given by the caller)
target_group_saved = Signal()

# Sent before a target is renamed. kwargs: organisation_id, old, new (target names).
# Each receiver answers a list of the names of what would stop matching, e.g. promotions
# answers the names of the promotions whose condition names `old`; [] when nothing does.
target_rename_check = Signal()

# Sent in the rename's transaction when the caller asked to rename the target everywhere
# ("rename_in_promotions"). kwargs: organisation_id, old, new. A receiver may raise
# django.core.exceptions.ValidationError to refuse the whole change.
target_renamed = Signal()

# Sent when a milestone's Active switch changes (`target_group_set_active`), INSIDE its
# transaction, so what a receiver writes (the webhooks outbox) commits or rolls back with the
# change. kwargs: target_group (after the change: `is_active` is the new value).
target_group_activation_changed = Signal()

# Sent before the organisation's award switch (ENABLE_AWARD_WHEN_TARGET_ACHIEVED) changes.
# kwargs: organisation, new_value (bool). Each receiver answers a list of
# {"id", "name", "warnings"} for what changes meaning (promotions: the "target period
# elapsed" promotions, with what the condition doctor will say under the new value).
award_switch_changing = Signal()

# Asked while a milestone's enrolment is summarised (API, screens). kwargs: target_group.
# Each receiver answers a dict of extra fields (enrolment: the audience group, the counts).
enrolment_summary_requested = Signal()

# Asked by the configuration screens for the audience groups a milestone may enrol from.
# kwargs: organisation. Each receiver answers a list of (id, label) pairs (enrolment: the
# organisation's audience groups, with their member counts).
audience_groups_requested = Signal()

# Asked by the configuration screens after an edit that changes what is counted: would
# re-processing find anything? kwargs: target_group. Each receiver answers True or False
# (evaluation: whether stored activities fall inside the milestone's dates).
reprocess_available = Signal()

# Sent when a configurer presses "Re-process now". kwargs: target_group, user. The receiver
# (evaluation) starts a reprocessing run and answers its id; it raises
# django.core.exceptions.ValidationError when it refuses (an inactive milestone).
reprocess_requested = Signal()

# Sent when the demo data's milestones exist (`manage.py seed_demo`), once per stage, in
# order: kwargs organisation, stage. The apps above add their part at their stage:
#   "configure" (promotions: promotions, a coupon series, a sub-target message),
#   "activity"  (evaluation: a few weeks of activities, tracked),
#   "settle"    (promotions: pay the events those activities wrote, so awards show at once).
demo_loaded = Signal()
DEMO_STAGES = ("configure", "activity", "settle")
