"""Consuming the evaluation outbox: target events -> promotions -> actions -> the ledger.

Exactly once, by two locks that do not depend on each other:

1. **Claim**: each event is processed in its own transaction that starts with
   `UPDATE targetevent SET consumed_at = now WHERE id = X AND consumed_at IS NULL` (and the
   event's organisation, named in every statement: docs/scaling.md). Only the
   consumer that changed the row goes on; a second consumer blocks on the row lock
   (PostgreSQL) or the write lock (SQLite) until the first commits, then changes nothing.
   A crash rolls the claim back and the sweeper delivers the event again.
2. **Ledger**: every action paid is an `Award` row, unique per (promotion, event, action
   index). An event delivered again (a replay, `consumed_at` reset by an operator) finds
   its rows and pays nothing twice. The action's side effects (the coupon claimed, the
   message written, the points fed back) happen in a savepoint together with the ledger
   row, so a refused row leaves nothing half-done.

Points fed back into tracking (the points KPI) are a `points` activity with the idempotency
key `award-<id>`; the loop guard is a depth marker: an event caused by such points has
depth 1, and the points its awards give are not fed back again (`FEED_MAX_DEPTH`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F, FilteredRelation, Q
from django.utils import timezone

from common import retry as retry_policy
from evaluation.models import Activity, ActivityType, TargetEvent, TargetEventType
from rules import RuleContext, RuleError

from . import caps, messaging
from .models import (
    EVENT_ACTIVITIES,
    IMMEDIATE_EVENTS,
    ActionType,
    Award,
    AwardStatus,
    Communication,
    CommunicationKind,
    ConsumeFailure,
    Coupon,
    PointsBasis,
    Promotion,
    PromotionActivity,
    Rounding,
)
from .selectors import NameIndex, customer_profile, event_day, event_profile, event_target_name
from .signals import awards_written
from .templating import placeholders_of, render

log = logging.getLogger(__name__)
HUNDRED = Decimal(100)
ZERO = Decimal(0)
FEED_PREFIX = "award-"


def feed_enabled() -> bool:
    return getattr(settings, "PROMOTIONS_FEED_POINTS", True)


def feed_max_depth() -> int:
    return getattr(settings, "PROMOTIONS_FEED_MAX_DEPTH", 1)


@dataclass
class ConsumeResult:
    claimed: int = 0
    skipped: int = 0  # already consumed by someone else
    failed: int = 0  # failed and recorded (ConsumeFailure); the others went on
    awards: list = field(default_factory=list)  # ids of Award rows written
    messages: list = field(default_factory=list)  # ids of Message rows written


class _Cache:
    """What one batch reads once: promotions per organisation, names, communications."""

    def __init__(self):
        self._promotions: dict[int, list[tuple[Promotion, object, list]]] = {}
        self._names: dict[int, NameIndex] = {}
        self._comms: dict[int, list[Communication]] = {}

    def promotions(self, organisation_id: int):
        if organisation_id not in self._promotions:
            items = []
            qs = Promotion.objects.filter(
                organisation_id=organisation_id, is_active=True
            ).prefetch_related("actions__series")
            for promotion in qs:
                try:
                    rule = promotion.rule()
                except RuleError as exc:  # validated at save; an old rule may not compile
                    log.warning("promotion %s: condition does not compile: %s", promotion.id, exc)
                    continue
                items.append((promotion, rule, list(promotion.actions.all())))
            self._promotions[organisation_id] = items
        return self._promotions[organisation_id]

    def names(self, organisation_id: int) -> NameIndex:
        if organisation_id not in self._names:
            wanted = set()
            for _p, rule, _a in self.promotions(organisation_id):
                wanted |= set(rule.target_names)
            self._names[organisation_id] = NameIndex.load(organisation_id, wanted)
        return self._names[organisation_id]

    def period_end(self, target_group_id: int) -> list[Communication]:
        if target_group_id not in self._comms:
            self._comms[target_group_id] = list(
                Communication.objects.filter(
                    target_group_id=target_group_id,
                    kind=CommunicationKind.PERIOD_END,
                    is_active=True,
                )
            )
        return self._comms[target_group_id]


def target_events_consume(
    *,
    event_ids=None,
    organisation_id: int | None = None,
    now: datetime | None = None,
    limit: int = 1000,
) -> ConsumeResult:
    """Consume target events (the given ids, or the oldest unconsumed ones): run the
    matching promotions' actions once each. Safe to call twice or concurrently.

    No poison pills: an event whose consumption fails rolls back alone, its error is recorded
    (`ConsumeFailure`, shown in the admin with a retry action) and the others go on. A
    transient database error (`OperationalError`) fails the task, which Celery retries.

    Every statement names the event's organisation (docs/scaling.md, "Past one primary").
    `organisation_id`, when the caller knows it, scopes the first read too (events of
    another organisation among the ids are then skipped); without it, that read, by primary
    key only, finds each event's organisation and whether it failed before."""
    if event_ids is None:
        unconsumed = TargetEvent.objects.filter(consumed_at__isnull=True)
        if organisation_id is not None:
            unconsumed = unconsumed.filter(organisation_id=organisation_id)
        ids = list(
            unconsumed.exclude(consume_failure__attempts__gte=ConsumeFailure.MAX_ATTEMPTS)
            .order_by("id")
            .values_list("id", flat=True)[:limit]
        )
    else:
        ids = sorted(set(event_ids))
    result = ConsumeResult()
    cache = _Cache()
    known = _events_known(ids, organisation_id)
    for event_id in ids:
        if event_id not in known:  # gone (or another organisation's): nothing to claim
            result.skipped += 1
            continue
        org_id, failed_before = known[event_id]
        part = ConsumeResult()
        try:
            _consume_one(event_id, org_id, now or timezone.now(), part, cache, failed_before)
        except OperationalError:
            raise
        except Exception as exc:  # noqa: BLE001 - the poison: recorded on its row, others go on
            log.exception("consuming target event %s failed", event_id)
            event_consume_failed(event_id=event_id, error=exc, organisation_id=org_id)
            result.failed += 1
            continue
        result.claimed += part.claimed
        result.skipped += part.skipped
        result.awards.extend(part.awards)
        result.messages.extend(part.messages)
    return result


def _events_known(ids, organisation_id: int | None) -> dict[int, tuple[int, bool]]:
    """{event id: (its organisation, whether its consumption failed before)}, in one read."""
    events = TargetEvent.objects.filter(id__in=ids)
    if organisation_id is not None:
        events = events.filter(organisation_id=organisation_id)
    failure = FilteredRelation(  # the join names the organisation too: co-located
        "consume_failure", condition=Q(consume_failure__organisation_id=F("organisation_id"))
    )
    rows = events.annotate(failure=failure).values_list("id", "organisation_id", "failure__id")
    return {event_id: (org_id, failed is not None) for event_id, org_id, failed in rows}


def event_consume_failed(
    *, event_id: int, error: Exception | str, organisation_id: int | None = None
) -> None:
    """One more failed attempt at consuming the event, with its error."""
    text = (str(error) or type(error).__name__)[:2000]
    now = timezone.now()
    failures = ConsumeFailure.objects.filter(event_id=event_id)
    if organisation_id is not None:
        failures = failures.filter(organisation_id=organisation_id)
    with transaction.atomic():
        updated = failures.update(attempts=F("attempts") + 1, error=text, failed_at=now)
        if updated:
            return
        org_id = organisation_id
        if org_id is None:
            org_id = (
                TargetEvent.objects.filter(pk=event_id)
                .values_list("organisation_id", flat=True)
                .first()
            )
        if org_id is None:
            return
        try:
            with transaction.atomic():
                ConsumeFailure.objects.create(
                    organisation_id=org_id, event_id=event_id, error=text, failed_at=now
                )
        except IntegrityError:  # a racing consumer recorded it first
            failures.update(attempts=F("attempts") + 1, error=text, failed_at=now)


def events_retry(*, organisation_id: int, event_ids) -> list[int]:
    """A person's retry: forget the failures of these events (of this organisation) so the
    automatic attempts start again; returns the ids to queue."""
    ids = list(
        ConsumeFailure.objects.filter(
            organisation_id=organisation_id, event_id__in=list(event_ids)
        ).values_list("event_id", flat=True)
    )
    ConsumeFailure.objects.filter(event_id__in=ids).delete()
    return ids


def events_due(*, older_than: timedelta, per_organisation: int) -> list[int]:
    """What the sweep queues: per organisation (one tenant's backlog never delays another's),
    its oldest unconsumed events, without those whose failures used up their automatic
    attempts or wait for their backoff (1 minute after the first, then 4)."""
    now = timezone.now()
    unconsumed = TargetEvent.objects.filter(
        consumed_at__isnull=True, created_at__lt=now - older_than
    )
    failed = Q(consume_failure__isnull=False)
    retryable = retry_policy.due(
        attempts="consume_failure__attempts",
        failed_at="consume_failure__failed_at",
        max_attempts=ConsumeFailure.MAX_ATTEMPTS,
        now=now,
    )
    due = unconsumed.filter(~failed | retryable)
    return retry_policy.oldest_per_organisation(due, per_organisation)


def activities_for(event: TargetEvent) -> tuple[str, ...]:
    """The promotion activities an event reaches. With ENABLE_AWARD_WHEN_TARGET_ACHIEVED
    inactive, immediate events do not reach "target period elapsed" promotions: only the
    end-of-cycle event does (reference 001, the five-row table and use case 6)."""
    activities = EVENT_ACTIVITIES.get(event.type, ())
    if event.type in IMMEDIATE_EVENTS and not event.organisation.award_when_target_achieved:
        activities = tuple(a for a in activities if a != PromotionActivity.TARGET_PERIOD_ELAPSED)
    return activities


def hears(rule, event: TargetEvent) -> bool:
    """A promotion hears the events of the targets its condition names (by target or
    milestone name), or every target event when it names none. So an achievement of another
    milestone never makes a condition about ABC pay again, booked to the wrong milestone."""
    names = rule.target_names
    if not names:
        return True
    own = event.target.name if event.target_id else None
    return own in names or event.target_group.name in names


@transaction.atomic
def _consume_one(
    event_id: int,
    org_id: int,
    now: datetime,
    result: ConsumeResult,
    cache: _Cache,
    failed_before: bool,
) -> None:
    claimed = TargetEvent.objects.filter(
        organisation_id=org_id, pk=event_id, consumed_at__isnull=True
    ).update(consumed_at=now)
    if not claimed:
        result.skipped += 1
        return
    result.claimed += 1
    awards_before = len(result.awards)
    if failed_before:
        ConsumeFailure.objects.filter(organisation_id=org_id, event_id=event_id).delete()
    event = (
        TargetEvent.objects.select_related(
            "organisation",
            "customer",
            "target_group__organisation",
            "target_group__till",
            "target",
        )
        .filter(organisation_id=org_id, pk=event_id, customer__organisation_id=org_id)
        .first()
    )
    if event is None:
        return
    activities = activities_for(event)
    day = event_day(event)
    live = [
        (p, rule, actions)
        for p, rule, actions in cache.promotions(event.organisation_id)
        if p.activity in activities and p.is_live_on(day) and hears(rule, event)
    ]
    if live:
        names = set()
        for _p, rule, _a in live:
            names |= set(rule.target_names)
        context = RuleContext(
            event=event_profile(event, names, cache.names(event.organisation_id)),
            customer=customer_profile(event.customer),
        )
        run = _EventRun(event, now, result)
        for promotion, rule, actions in live:
            try:
                matched = rule.evaluate(context)
            except RuleError as exc:
                log.info("promotion %s on event %s: %s", promotion.id, event.id, exc)
                continue
            if matched:
                run.promotion(promotion, actions)
        if len(result.awards) > awards_before:  # in this transaction (see promotions.signals)
            awards_written.send(
                sender=Award,
                organisation_id=event.organisation_id,
                award_ids=result.awards[awards_before:],
            )
    if event.type == TargetEventType.PERIOD_ELAPSED:
        comms = cache.period_end(event.target_group_id)
        if comms:
            messages = messaging.period_end_communications(event=event, communications=comms)
            result.messages.extend(m.id for m in messages)


class _EventRun:
    """The actions of the matching promotions for one claimed event."""

    def __init__(self, event: TargetEvent, now: datetime, result: ConsumeResult):
        self.event, self.now, self.result = event, now, result
        self._existing: dict | None = None
        self._depth: int | None = None
        self.today = now.astimezone(event.organisation.tzinfo).date()

    @property
    def existing(self) -> dict:
        """Ledger rows already written for the event, read when a promotion first matches."""
        if self._existing is None:
            awards = Award.objects.filter(
                organisation_id=self.event.organisation_id, event=self.event
            )
            self._existing = {(a.promotion_id, a.action_index): a for a in awards}
        return self._existing

    @property
    def depth(self) -> int:
        if self._depth is None:
            self._depth = event_depth(self.event)
        return self._depth

    def promotion(self, promotion: Promotion, actions) -> None:
        state = {"points": None, "points_expiry": None, "coupon_code": ""}
        for action in actions:
            key = (promotion.id, action.position)
            award = self.existing.get(key)
            if award is None:
                try:
                    with transaction.atomic():
                        award = self._run(promotion, action, state)
                except IntegrityError:
                    # Someone else wrote this (promotion, event, action) meanwhile.
                    award = Award.objects.filter(
                        organisation_id=self.event.organisation_id,
                        promotion=promotion,
                        event=self.event,
                        action_index=action.position,
                    ).first()
                except OperationalError:
                    raise  # transient: the whole event is retried
                except Exception as exc:  # noqa: BLE001 - a failed action is a ledger row
                    log.exception("action %s of promotion %s failed", action.position, promotion.id)
                    award = self._failed(promotion, action, f"Unexpected error: {exc}")
                else:
                    self.result.awards.append(award.id)
                if award is not None:
                    self.existing[key] = award
            if award is not None and award.status == AwardStatus.DONE:
                if award.type == ActionType.AWARD_POINTS:
                    state["points"] = (state["points"] or ZERO) + award.points
                    state["points_expiry"] = award.expires_on
                elif award.type == ActionType.ISSUE_COUPON:
                    state["coupon_code"] = award.coupon_code

    # --- ledger rows -------------------------------------------------------------------
    def _row(self, promotion, action, **fields) -> Award:
        event = self.event
        return Award.objects.create(
            organisation_id=event.organisation_id,
            promotion=promotion,
            event=event,
            achievement=event.achievement,
            action_index=action.position,
            type=action.type,
            customer_id=event.customer_id,
            target_group_id=event.target_group_id,
            target_id=event.target_id,
            period=event.period_name or "",
            cycle_ordinal=event.cycle_ordinal,
            awarded_at=self.now,
            **fields,
        )

    def _failed(self, promotion, action, error: str) -> Award | None:
        try:
            with transaction.atomic():
                award = self._row(promotion, action, status=AwardStatus.FAILED, error=error)
        except IntegrityError:
            return None
        self.result.awards.append(award.id)
        return award

    def _run(self, promotion, action, state) -> Award:
        if action.type == ActionType.AWARD_POINTS:
            return self._points(promotion, action)
        if action.type == ActionType.ISSUE_COUPON:
            return self._coupon(promotion, action)
        return self._message(promotion, action, state)

    def _points(self, promotion, action) -> Award:
        event = self.event
        points = points_for(action, achieved=event.achieved, defined=event.defined)
        if points <= 0:
            return self._row(
                promotion,
                action,
                status=AwardStatus.SKIPPED,
                points=ZERO,
                points_type=action.points_type,
                error="Nothing to award: the points come to 0.",
            )
        refused = caps.cap_refusal(
            promotion=promotion, action_type=action.type, event=event, points=points
        )
        if refused:
            return self._capped(promotion, action, refused, points_type=action.points_type)
        expires = (
            self.today + timedelta(days=action.expiry_days)
            if action.expiry_days is not None
            else None
        )
        till = event.target_group.till
        award = self._row(
            promotion,
            action,
            status=AwardStatus.DONE,
            points=points,
            points_type=action.points_type,
            expires_on=expires,
            till=till,
            depth=self.depth,
        )
        caps.warn_near_caps(promotion=promotion)
        if feed_enabled() and self.depth < feed_max_depth():
            award.fed_activity = self._feed(award, promotion)
            if award.fed_activity:
                Award.objects.filter(organisation_id=award.organisation_id, pk=award.pk).update(
                    fed_activity=award.fed_activity
                )
        return award

    def _capped(self, promotion, action, reason: str, **fields) -> Award:
        """A cap refused the action: a ledger row that says so, and nothing given."""
        return self._row(promotion, action, status=AwardStatus.CAPPED, error=reason, **fields)

    def _feed(self, award: Award, promotion: Promotion) -> str:
        """Write the points back as a `points` activity (tracked like any other)."""
        from evaluation.ingest import activities_ingest

        customer = self.event.customer
        ident = {
            k: getattr(customer, k)
            for k in ("mobile", "email", "external_id")
            if getattr(customer, k)
        }
        if not ident:
            return ""
        external_id = f"{FEED_PREFIX}{award.id}"
        item = {
            "id": external_id,
            "type": "points",
            "customer": ident,
            "occurred_at": self.now,
            award.points_type: award.points,
            "attributes": {
                "award": award.id,
                "promotion": promotion.id,
                "target_group": award.target_group_id,
                "award_depth": award.depth + 1,
            },
        }
        if award.till_id:
            item["store"] = award.till.code
        activities_ingest(organisation=self.event.organisation, items=[item])
        return external_id

    def _coupon(self, promotion, action) -> Award:
        refused = caps.cap_refusal(promotion=promotion, action_type=action.type, event=self.event)
        if refused:
            return self._capped(promotion, action, refused)
        series = action.series
        coupon = claim_coupon(series=series, customer_id=self.event.customer_id, now=self.now)
        if coupon is None:
            return self._row(
                promotion,
                action,
                status=AwardStatus.FAILED,
                error=f"Coupon series {series.code!r} has run out: no code is left to issue, "
                "nothing was issued.",
            )
        expires = self.today + timedelta(days=series.valid_days) if series.valid_days else None
        award = self._row(
            promotion,
            action,
            status=AwardStatus.DONE,
            coupon=coupon,
            coupon_code=coupon.code,
            expires_on=expires,
        )
        caps.warn_near_caps(promotion=promotion)
        return award

    def _message(self, promotion, action, state) -> Award:
        event = self.event
        values = messaging.message_values(
            customer=event.customer,
            group=event.target_group,
            target_name=event_target_name(event),
            period=event.period_name,
            achieved=event.achieved,
            defined=event.defined,
            triggers=event.milestone_triggers,
            sub_target_value=event.milestone_value_defined,
            promotion=promotion,
            points=state["points"],
            points_expiry=state["points_expiry"],
            coupon_code=state["coupon_code"],
        )
        body = render(action.template, values)
        subject = render(action.subject, values) if action.subject else ""
        uses = placeholders_of(action.template) + (
            placeholders_of(action.subject) if action.subject else []
        )
        if "coupon.code" in uses and not state["coupon_code"]:
            return self._row(
                promotion,
                action,
                status=AwardStatus.FAILED,
                channel=action.channel,
                message=body,
                error="Not sent: the message shows {coupon.code} and no coupon was issued.",
            )
        try:
            messaging.recipient_for(event.customer, action.channel)
        except messaging.NoRecipient as exc:
            return self._row(
                promotion,
                action,
                status=AwardStatus.FAILED,
                channel=action.channel,
                message=body,
                error=str(exc),
            )
        award = self._row(
            promotion, action, status=AwardStatus.DONE, channel=action.channel, message=body
        )
        message = messaging.message_write(
            customer=event.customer,
            channel=action.channel,
            body=body,
            subject=subject,
            award=award,
        )
        self.result.messages.append(message.id)
        return award


def points_for(action, *, achieved, defined) -> Decimal:
    """Points of an award_points action for an event's achieved and defined values."""
    achieved = Decimal(achieved or 0)
    defined = Decimal(defined or 0)
    if action.basis == PointsBasis.FIXED:
        raw = Decimal(action.points or 0)
    elif action.basis == PointsBasis.PERCENT_OF_ACHIEVED:
        raw = achieved * Decimal(action.percent or 0) / HUNDRED
    else:
        raw = max(achieved - defined, ZERO) * Decimal(action.percent or 0) / HUNDRED
    if action.rounding == Rounding.FLOOR:
        return raw.to_integral_value(rounding=ROUND_FLOOR)
    if action.rounding == Rounding.ROUND:
        return raw.to_integral_value(rounding=ROUND_HALF_UP)
    return raw.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def claim_coupon(*, series, customer_id: int, now: datetime) -> Coupon | None:
    """Take one free code of the series for the customer (None when it has run out)."""
    codes = Coupon.objects.filter(organisation_id=series.organisation_id)
    for _ in range(5):
        qs = codes.filter(series=series, issued_at__isnull=True).order_by("id")
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        coupon = qs.first()
        if coupon is None:
            return None
        taken = codes.filter(pk=coupon.pk, issued_at__isnull=True).update(
            issued_at=now, customer_id=customer_id
        )
        if taken:
            coupon.issued_at, coupon.customer_id = now, customer_id
            return coupon
    return None


def event_depth(event: TargetEvent) -> int:
    """1 when the activity that made this event happen was points fed back from an award."""
    if event.type not in IMMEDIATE_EVENTS:
        return 0
    payloads = Activity.objects.filter(
        organisation_id=event.organisation_id,
        customer_id=event.customer_id,
        type=ActivityType.POINTS,
        occurred_at=event.occurred_at,
        external_id__startswith=FEED_PREFIX,
    ).values_list("payload", flat=True)
    depth = 0
    for payload in payloads:
        attributes = (payload or {}).get("attributes") or {}
        try:
            depth = max(depth, int(attributes.get("award_depth", 1)))
        except (TypeError, ValueError):
            depth = max(depth, 1)
    return depth


def events_redeliver(*, event_ids) -> int:
    """Mark events unconsumed so they are delivered again (the ledger pays nothing twice)."""
    return TargetEvent.objects.filter(id__in=list(event_ids)).update(consumed_at=None)
