"""One customer per person (issue 16): merge the customers that one mobile names once it is
normalised in the organisation's `default_country` ("9000000077", "919000000077" and
"+91 90000 00077" are all +919000000077), and store every mobile in that form.

Why here: a merge moves rows of every engine app (enrolment's enrolments and target values,
evaluation's activities, progress and target events, promotions' awards and coupons), and
promotions is the top engine app, the one allowed to import all the others. Each app's part
lives in that app (`enrolment.merge`, `evaluation.merge`, and the awards here); this module
only runs them in order, so imports point downward and no app learns another's tables.

Each person is merged in one transaction, the customers locked `FOR UPDATE` in id order
(tracking locks them `FOR NO KEY UPDATE` in the same order: it waits, then finds the rows
moved). The customer kept is the oldest. Nothing is summed twice or lost: see
`evaluation.merge` for progress and events; an award stays in the ledger whatever happens
(it was paid), re-pointed at the kept customer, and at the event kept when its own was a
duplicate. A row kind nobody taught the merge to move stops it (enrolment's
`customers_absorb`) rather than being deleted by a cascade. Every merge is audited
(`AuditEntry` "merge_customers" on the kept customer, with the ids and the rows moved), and
the mobiles rewritten alone in one "normalise_mobiles" entry on the organisation.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from enrolment.merge import (
    MergeGroup,
    MergePlan,
    customer_rows,
    customers_absorb,
    customers_merge_plan,
    enrolment_rows_merge,
    move_rows,
)
from enrolment.models import Customer
from evaluation import merge as evaluation_merge
from milestones.models import Organisation

from .models import Award, CommunicationDelivery, Coupon, Message, TargetValueSeen

log = logging.getLogger(__name__)
RENAME_CHUNK = 1000


@dataclass
class MergeReport:
    plan: MergePlan
    dry_run: bool
    merged: list[dict] = field(default_factory=list)  # {"mobile", "into", "from", "rows"}
    renamed: int = 0
    retry: list[str] = field(default_factory=list)  # mobiles that changed while merging


def customers_merge(
    *, organisation: Organisation, dry_run: bool = False, user=None, country: str | None = None
) -> MergeReport:
    """Normalise every mobile of the organisation and merge the customers that then share
    one. `dry_run`: only the plan, with the rows each merge would move (nothing written).
    `country` overrides the organisation's for a dry run ("what would IN merge?")."""
    if country is not None and not dry_run:
        raise ValueError("A country other than the organisation's is for a dry run only.")
    plan = customers_merge_plan(organisation=organisation, country=country)
    report = MergeReport(plan=plan, dry_run=dry_run)
    if dry_run:
        for group in plan.groups:
            report.merged.append(
                {
                    "mobile": group.mobile,
                    "into": group.into_id,
                    "from": group.from_ids,
                    "rows": dict(customer_rows(group.from_ids)),
                }  # fmt: skip
            )
        report.renamed = len(plan.renames)
        return report
    for group in plan.groups:
        _merge_one(organisation, group, report, user)
    report.renamed = _rename(organisation, plan.renames, report, user)
    if report.renamed:
        from milestones.services.target_groups import audit

        audit(organisation=organisation, user=user, action="normalise_mobiles", obj=organisation,
              changes={"country": plan.country, "mobiles_rewritten": report.renamed})  # fmt: skip
    return report


@transaction.atomic
def customer_group_merge(*, organisation: Organisation, group: MergeGroup, user=None) -> dict:
    """Merge the customers holding any spelling of one mobile (as they are now, locked: one
    created meanwhile in the new form is merged too). Returns what was done ({} if nothing)."""
    spellings = set(group.stored) | {group.mobile}
    holders = list(
        Customer.objects.select_for_update()
        .filter(organisation=organisation, mobile__in=spellings)
        .order_by("pk")
    )
    if not holders:
        return {}
    holders.sort(key=lambda c: (c.created_at, c.pk))
    into, others = holders[0], holders[1:]
    from_ids = [c.pk for c in others]
    if not from_ids:
        if into.mobile != group.mobile:
            Customer.objects.filter(pk=into.pk).update(mobile=group.mobile)
        return {}
    counts: Counter = Counter()
    now = timezone.now()
    duplicates = evaluation_merge.events_rekey(into_id=into.pk, from_ids=from_ids, counts=counts)
    counts.update(awards_merge(into_id=into.pk, from_ids=from_ids, duplicates=duplicates))
    evaluation_merge.events_drop_duplicates(duplicates=duplicates, counts=counts)
    tracked = evaluation_merge.progress_rows_merge(
        organisation=organisation, into_id=into.pk, from_ids=from_ids, now=now
    )
    counts.update(tracked.counts)
    counts.update(enrolment_rows_merge(into_id=into.pk, from_ids=from_ids))
    before = {"mobiles": [into.mobile, *(c.mobile for c in others)], "from": from_ids}
    customers_absorb(into=into, from_ids=from_ids, mobile=group.mobile)
    counts = +counts
    from milestones.services.target_groups import audit

    audit(organisation=organisation, user=user, action="merge_customers", obj=into,
          changes={**before, "into": into.pk, "mobile": group.mobile, "rows": dict(counts)})  # fmt: skip
    _after_commit(tracked)
    return {"mobile": group.mobile, "into": into.pk, "from": from_ids, "rows": dict(counts)}


def _after_commit(tracked) -> None:
    """As after tracking: new events to promotions, achieved targets to the audience
    hand-off, and the leaderboards' cached ranks of the targets whose progress changed."""
    from enrolment.tasks import refresh_audience_groups_for_targets
    from evaluation import ranks

    from .tasks import queue_consumption

    queue_consumption(tracked.event_ids)
    targets, achieved = sorted(tracked.targets), sorted(tracked.achieved_targets)

    def send():
        ranks.forget(targets)
        if achieved:
            try:
                refresh_audience_groups_for_targets.delay(achieved)
            except Exception:  # noqa: BLE001 - the beat refreshes the groups
                log.warning("could not queue the audience hand-off after a merge", exc_info=True)

    transaction.on_commit(send)


def _reachieve(achievement: str, from_id: int, into_id: int) -> str:
    """An award's achievement for the kept customer (`evaluation.models.achievement_key`:
    `<kind>:<target>:c<customer>:<cycle>...`)."""
    parts = achievement.split(":")
    if len(parts) >= 3 and parts[2] == f"c{from_id}":
        parts[2] = f"c{into_id}"
    return ":".join(parts)


def awards_merge(*, into_id: int, from_ids: list[int], duplicates: dict[int, int]) -> Counter:
    """Promotions' rows. Every award stays (the ledger says what was given): it takes the
    kept customer, its achievement re-spelt for them, and the kept event if its own was a
    duplicate, unless the kept customer already has that (promotion, achievement, action),
    or the kept event that (promotion, event, action): paid for both customers, both rows
    stay as they were paid (`awards_paid_for_both` counts them). Coupons and messages follow
    the customer; a communication delivered to both counts once."""
    counts: Counter = Counter()
    paid = set(
        Award.objects.filter(customer_id=into_id).values_list(
            "promotion_id", "achievement", "action_index"
        )
    )
    on_event = set(
        Award.objects.filter(event_id__in=set(duplicates.values())).values_list(
            "promotion_id", "event_id", "action_index"
        )
    )
    for award in Award.objects.filter(customer_id__in=from_ids).order_by("id"):
        changes: dict = {"customer_id": into_id}
        achievement = _reachieve(award.achievement, award.customer_id, into_id)
        if (award.promotion_id, achievement, award.action_index) in paid:
            counts["awards_paid_for_both"] += 1
        else:
            changes["achievement"] = achievement
            paid.add((award.promotion_id, achievement, award.action_index))
        kept_event = duplicates.get(award.event_id)
        if kept_event is not None:
            if (award.promotion_id, kept_event, award.action_index) in on_event:
                counts["awards_left_on_duplicate_event"] += 1  # which then stays
            else:
                changes["event_id"] = kept_event
                on_event.add((award.promotion_id, kept_event, award.action_index))
        Award.objects.filter(pk=award.pk).update(**changes)
        counts["awards_moved"] += 1
    counts["coupons_moved"] = Coupon.objects.filter(customer_id__in=from_ids).update(
        customer_id=into_id
    )
    counts["messages_moved"] = Message.objects.filter(customer_id__in=from_ids).update(
        customer_id=into_id
    )
    for model, key, name in (
        (CommunicationDelivery, ("communication_id", "cycle_ordinal", "key"), "deliveries"),
        (TargetValueSeen, ("communication_id", "target_id", "cycle_ordinal"), "values_seen"),
    ):
        moved = move_rows(model, into_id=into_id, from_ids=from_ids, key_fields=key)
        counts.update({f"{name}_{k}": v for k, v in moved.items()})
    return +counts


def _rename(organisation, renames, report: MergeReport, user) -> int:
    """Customers whose mobile only changes spelling: rewritten set-based, a chunk per
    transaction. One whose new form another customer took meanwhile is merged instead."""
    done = 0
    for start in range(0, len(renames), RENAME_CHUNK):
        chunk = renames[start : start + RENAME_CHUNK]
        late: list[MergeGroup] = []
        with transaction.atomic():
            current = dict(
                Customer.objects.select_for_update()
                .filter(pk__in=[cid for cid, _, _ in chunk])
                .order_by("pk")
                .values_list("pk", "mobile")
            )
            taken = set(
                Customer.objects.filter(
                    organisation=organisation, mobile__in=[form for _, _, form in chunk]
                ).values_list("mobile", flat=True)
            )
            rows = []
            for cid, stored, form in chunk:
                if current.get(cid) != stored:
                    continue  # changed or gone since the plan: the next run sees it
                if form in taken:
                    late.append(MergeGroup(mobile=form, into_id=cid, from_ids=[], stored=[stored]))
                    continue
                rows.append(Customer(pk=cid, mobile=form))
            Customer.objects.bulk_update(rows, ["mobile"], batch_size=RENAME_CHUNK)
            done += len(rows)
        for group in late:
            _merge_one(organisation, group, report, user)
    return done


def _merge_one(organisation, group: MergeGroup, report: MergeReport, user) -> None:
    """One person; if a customer took the number meanwhile (an activity in the new form
    arrived during the merge), that person is left for the next run, the others go on."""
    try:
        merged = customer_group_merge(organisation=organisation, group=group, user=user)
    except IntegrityError:
        log.warning("customers of %s changed while merging; run again", group.mobile)
        report.retry.append(group.mobile)
        return
    if merged:
        report.merged.append(merged)
