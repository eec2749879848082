"""Live leaderboards from the progress rows (no nightly snapshot).

Ranks are competition ranks: equal achieved values share a rank (1, 1, 3); within a tie,
whoever got there first is listed first (`reached_at`: when the value was reached).
Customers with nothing achieved are not ranked.
"""

from __future__ import annotations

import re

from django.utils import timezone

from enrolment.models import Enrolment
from milestones.models import Target

from . import ranks
from .models import Progress

MAX_TOP = 100
MAX_RANKS = 25
MAX_OFFSET = 1_000_000_000  # the API's bound too (common.api.MAX_OFFSET)


class LeaderboardError(ValueError):
    pass


def resolve_cycle(target: Target, period: str | None, now=None) -> tuple[int, str]:
    """(ordinal, name) of the cycle a `period` parameter names; default: the current one."""
    group = target.target_group
    periods = list(group.periods.all()) if group.has_fixed_periods else []
    if period:
        for p in periods:
            if p.name == period:
                return p.ordinal, p.name
        match = re.fullmatch(r"[PpCc]?(\d+)", period.strip())
        limit = len(periods) if periods else (group.cycle_count or 0)
        if match and 1 <= int(match.group(1)) <= limit:
            n = int(match.group(1))
            return n, periods[n - 1].name if periods else f"{group.name} C{n}"
        raise LeaderboardError(f"Unknown period {period!r} for {target.name!r}.")
    if not periods:
        return 1, f"{group.name} C1"
    now = now or timezone.now()
    started = [p for p in periods if p.starts_at <= now]
    current = started[-1] if started else periods[0]
    return current.ordinal, current.name


def _ranked(target_id: int, ordinal: int, organisation_id: int | None = None):
    """The ranked rows; with the organisation (the target's) named, as a database
    distributed by organisation needs (docs/scaling.md, "Past one primary")."""
    rows = Progress.objects.filter(target_id=target_id, cycle_ordinal=ordinal, achieved__gt=0)
    return rows if organisation_id is None else rows.filter(organisation_id=organisation_id)


def top(*, target: Target, ordinal: int, limit: int = 10, offset: int = 0) -> list[dict]:
    if not 1 <= limit <= MAX_TOP:
        raise LeaderboardError(f"limit must be between 1 and {MAX_TOP}.")
    if not 0 <= offset <= MAX_OFFSET:
        raise LeaderboardError(f"offset must be between 0 and {MAX_OFFSET}.")
    org_id = target.organisation_id
    rows = list(
        _ranked(target.id, ordinal, org_id)
        .filter(customer__organisation_id=org_id)  # the join, co-located
        .order_by("-achieved", "reached_at", "id")
        .values("customer_id", "achieved", "customer__name")[offset : offset + limit]
    )
    out = []
    rank = None
    previous = None
    for i, row in enumerate(rows):
        if row["achieved"] != previous:
            rank = (
                (
                    _ranked(target.id, ordinal, org_id).filter(achieved__gt=row["achieved"]).count()
                    + 1
                )
                if i == 0
                else offset + i + 1
            )
            previous = row["achieved"]
        out.append(
            {
                "rank": rank,
                "customer": row["customer_id"],
                "customer_name": row["customer__name"],
                "achieved": row["achieved"],
            }
        )
    return out


def rank_of(
    *, target_id: int, ordinal: int, customer_id: int, organisation_id: int | None = None
) -> tuple[int | None, object]:
    row = (
        _ranked(target_id, ordinal, organisation_id)
        .filter(customer_id=customer_id)
        .values_list("achieved", flat=True)
        .first()
    )
    if row is None:
        return None, 0
    fast = ranks.rank(target_id=target_id, ordinal=ordinal, achieved=row)
    if fast is not None:
        return fast, row
    return _ranked(target_id, ordinal, organisation_id).filter(achieved__gt=row).count() + 1, row


def customer_ranks(*, customer, limit: int = MAX_RANKS, offset: int = 0) -> list[dict]:
    if not 1 <= limit <= MAX_RANKS:
        raise LeaderboardError(f"limit must be between 1 and {MAX_RANKS}.")
    if not 0 <= offset <= MAX_OFFSET:
        raise LeaderboardError(f"offset must be between 0 and {MAX_OFFSET}.")
    group_ids = Enrolment.objects.filter(
        organisation_id=customer.organisation_id,
        customer=customer,
        is_active=True,
        target_group__leaderboard_enabled=True,
    ).values_list("target_group_id", flat=True)
    targets = (
        Target.objects.filter(target_group_id__in=group_ids)
        .select_related("target_group")
        .prefetch_related("target_group__periods")
        .order_by("target_group_id", "ordinal", "id")[offset : offset + limit]
    )
    out = []
    for target in targets:
        ordinal, name = resolve_cycle(target, None)
        rank, achieved = rank_of(
            target_id=target.id,
            ordinal=ordinal,
            customer_id=customer.id,
            organisation_id=customer.organisation_id,
        )
        out.append(
            {
                "target_group": target.target_group.name,
                "target": target.name,
                "target_id": target.id,
                "period": name,
                "rank": rank,
                "achieved": achieved,
            }
        )
    return out
