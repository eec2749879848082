"""Milestone insights: who is enrolled, how each cycle went, and charts drawn as SVG here.

`milestone_insights` reads a fixed number of queries whatever the number of cycles, targets
or customers (aggregates are computed by the database). The SVG helpers are plain functions
of numbers, so they are tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from common.numbers import grouped
from enrolment.models import Enrolment
from evaluation import leaderboards
from evaluation.models import Progress, TargetEvent, TargetEventType
from evaluation.selectors import cycle_status
from milestones.models import CycleType, SubTargetCriteria, Target, TargetGroup
from promotions.forecast import milestone_forecast
from promotions.selectors import awards_per_cycle

BUCKETS = [
    ("0–25%", "b0"),
    ("25–50%", "b25"),
    ("50–75%", "b50"),
    ("75–100%", "b75"),
    ("Achieved", "hit"),
]
LEADERBOARD_SIZE = 10
# Names the promotions ledger may have; the first installed one is used.


# --- SVG -----------------------------------------------------------------------------------


@dataclass
class Bar:
    label: str
    value: Decimal | int
    text: str = ""
    css: str = ""
    hint: str = ""


def _fmt(value) -> str:
    value = Decimal(value)
    if value == value.to_integral_value():
        return f"{value.quantize(Decimal(1)):,f}"
    return f"{value.quantize(Decimal('0.1')):,f}"


def column_chart(bars: list[Bar], *, title: str, max_value=None, height: int = 180) -> SafeString:
    """Vertical bars, one per item, the value written above each and the label below."""
    slot, top, bottom = 56, 20, 34
    width = max(len(bars), 1) * slot + 10
    peak = Decimal(max_value if max_value is not None else max([b.value for b in bars] or [0]))
    peak = peak if peak > 0 else Decimal(1)
    plot = height - top - bottom
    parts = [
        format_html(
            '<svg class="ins-chart ins-columns" viewBox="0 0 {} {}" width="{}" height="{}" '
            'role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>',
            width,
            height,
            width,
            height,
            title,
            title,
        ),  # fmt: skip
        format_html(
            '<line class="ins-axis" x1="4" y1="{}" x2="{}" y2="{}" stroke="#999"/>',
            height - bottom,
            width - 4,
            height - bottom,
        ),
    ]
    for i, bar in enumerate(bars):
        value = min(Decimal(bar.value), peak)
        h = int(plot * value / peak) if value > 0 else 0
        x = 8 + i * slot
        y = height - bottom - h
        parts.append(
            format_html(
                '<g class="ins-item {}"><title>{}</title>'
                '<rect class="ins-bar" x="{}" y="{}" width="{}" height="{}" rx="2" fill="#2e7d32"/>'
                '<text class="ins-value" x="{}" y="{}" text-anchor="middle">{}</text>'
                '<text class="ins-label" x="{}" y="{}" text-anchor="middle">{}</text></g>',
                bar.css,
                bar.hint or f"{bar.label}: {bar.text or _fmt(bar.value)}",
                x,
                y,
                slot - 16,
                h,
                x + (slot - 16) // 2,
                y - 4,
                bar.text or _fmt(bar.value),
                x + (slot - 16) // 2,
                height - bottom + 14,
                bar.label[:9],
            )  # fmt: skip
        )
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))


def row_chart(bars: list[Bar], *, title: str, max_value=None, width: int = 460) -> SafeString:
    """Horizontal bars, one row per item: label, bar, value."""
    row, label_w, value_w = 26, 130, 90
    height = max(len(bars), 1) * row + 6
    peak = Decimal(max_value if max_value is not None else max([b.value for b in bars] or [0]))
    peak = peak if peak > 0 else Decimal(1)
    plot = width - label_w - value_w
    parts = [
        format_html(
            '<svg class="ins-chart ins-rows" viewBox="0 0 {} {}" width="{}" height="{}" '
            'role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>',
            width,
            height,
            width,
            height,
            title,
            title,
        )  # fmt: skip
    ]
    for i, bar in enumerate(bars):
        value = min(Decimal(bar.value), peak)
        w = int(plot * value / peak) if value > 0 else 0
        y = 4 + i * row
        parts.append(
            format_html(
                '<g class="ins-item {}"><title>{}</title>'
                '<text class="ins-label" x="{}" y="{}" text-anchor="end">{}</text>'
                '<rect class="ins-track" x="{}" y="{}" width="{}" height="16" rx="2" fill="#eee"/>'
                '<rect class="ins-bar" x="{}" y="{}" width="{}" height="16" rx="2" fill="#2e7d32"/>'
                '<text class="ins-value" x="{}" y="{}">{}</text></g>',
                bar.css,
                bar.hint or f"{bar.label}: {bar.text or _fmt(bar.value)}",
                label_w - 8,
                y + 12,
                bar.label[:20],
                label_w,
                y,
                plot,
                label_w,
                y,
                w,
                label_w + plot + 6,
                y + 12,
                bar.text or _fmt(bar.value),
            )  # fmt: skip
        )
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))


# --- data ----------------------------------------------------------------------------------


def _rate(part, whole) -> Decimal:
    if not whole:
        return Decimal(0)
    return min(Decimal(100), Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"))


def group_cycles(group: TargetGroup, now: datetime) -> list[dict]:
    """The milestone's cycles as [{ordinal, name, start, end, status}]. Per-customer cycles
    (cyclic, till achievement) have ordinals only: each customer has their own dates."""
    if group.has_fixed_periods:
        out = []
        for p in sorted(group.periods.all(), key=lambda p: p.ordinal):
            out.append({"ordinal": p.ordinal, "name": p.name, "start": p.start, "end": p.end,
                        "status": cycle_status(p.starts_at, p.ends_at, now)})  # fmt: skip
        return out
    return [
        {"ordinal": k, "name": f"Cycle {k}", "start": None, "end": None, "status": ""}
        for k in range(1, (group.cycle_count or 0) + 1)
    ]


def _current_cycle(cycles: list[dict], used: set[int]) -> int | None:
    if not cycles:
        return None
    if cycles[0]["start"] is None:  # per-customer cycles: the furthest any customer has got
        return max(used) if used else cycles[0]["ordinal"]
    for c in cycles:
        if c["status"] == "ongoing":
            return c["ordinal"]
    if cycles[0]["status"] == "upcoming":
        return cycles[0]["ordinal"]
    return cycles[-1]["ordinal"]


def _progress_stats(target_ids: list[int]) -> dict[tuple[int, int], dict]:
    """(target, cycle) -> {rows, hit, b0, b25, b50, b75}: one grouped query (`hit`: achieved)."""
    done = Q(achieved_at__isnull=False)
    rows = (
        Progress.objects.filter(target_id__in=target_ids)
        .values("target_id", "cycle_ordinal")
        .annotate(
            rows=Count("id"),
            hit=Count("id", filter=done),
            b0=Count("id", filter=~done & Q(achieved__lt=F("target_value") * Decimal("0.25"))),
            b25=Count(
                "id",
                filter=~done
                & Q(
                    achieved__gte=F("target_value") * Decimal("0.25"),
                    achieved__lt=F("target_value") * Decimal("0.5"),
                ),
            ),
            b50=Count(
                "id",
                filter=~done
                & Q(
                    achieved__gte=F("target_value") * Decimal("0.5"),
                    achieved__lt=F("target_value") * Decimal("0.75"),
                ),
            ),
            b75=Count("id", filter=~done & Q(achieved__gte=F("target_value") * Decimal("0.75"))),
        )  # fmt: skip
        .order_by()
    )
    return {(r["target_id"], r["cycle_ordinal"]): r for r in rows}


def _sub_target_reach(target_ids: list[int]) -> dict[tuple[int, int], int]:
    """(sub-target, cycle) -> customers who reached it: one grouped query. An event is written
    once per (customer, sub-target, cycle) (its dedupe key), so counting rows counts customers."""
    rows = (
        TargetEvent.objects.filter(  # by target: the outbox is indexed on target, not group
            target_id__in=target_ids,
            type=TargetEventType.SUB_TARGET_ACHIEVED,
            sub_target__isnull=False,
        )
        .values("sub_target_id", "cycle_ordinal")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(r["sub_target_id"], r["cycle_ordinal"]): r["n"] for r in rows}


def _leaderboards(targets: list[Target], ordinal: int) -> dict[int, list[dict]]:
    """Top LEADERBOARD_SIZE of each target in one cycle, as the leaderboard API ranks them
    (evaluation.leaderboards: equal values share a rank, whoever got there first listed first)."""
    return {
        t.id: [
            {**row, "customer_label": row["customer_name"] or f"Customer #{row['customer']}"}
            for row in leaderboards.top(target=t, ordinal=ordinal, limit=LEADERBOARD_SIZE)
        ]
        for t in targets
    }


def milestone_insights(*, target_group: TargetGroup, cycle: int | None = None, now=None) -> dict:
    """Everything the insights page shows, with its charts. A bounded number of queries."""
    now = now or timezone.now()
    group = (
        TargetGroup.objects.select_related("organisation")
        .prefetch_related("periods")
        .get(pk=target_group.pk)
    )
    targets = list(
        Target.objects.filter(target_group=group)
        .prefetch_related("sub_targets")
        .order_by("ordinal", "id")  # fmt: skip
    )
    target_ids = [t.id for t in targets]
    enrolled = Enrolment.objects.filter(target_group=group, is_active=True).count()
    cycles = group_cycles(group, now)
    stats = _progress_stats(target_ids)
    used = {o for (_, o) in stats}
    ordinals = [c["ordinal"] for c in cycles]
    current = cycle if cycle in ordinals else _current_cycle(cycles, used)
    reach = _sub_target_reach(target_ids)
    reach_all_cycles: dict[int, int] = {}
    for (sub_id, _), n in reach.items():
        reach_all_cycles[sub_id] = reach_all_cycles.get(sub_id, 0) + n
    boards = _leaderboards(targets, current) if group.leaderboard_enabled and current else {}
    per_customer = group.cycle_type in (CycleType.CYCLIC, CycleType.TILL_ACHIEVEMENT)

    out_targets = []
    for t in targets:
        per_cycle = []
        for c in cycles:
            s = stats.get((t.id, c["ordinal"]), {})
            achieved = s.get("hit", 0)
            per_cycle.append({**c, "rows": s.get("rows", 0), "achieved": achieved,
                              "rate": _rate(achieved, enrolled)})  # fmt: skip
        s = stats.get((t.id, current), {}) if current else {}
        # Enrolled customers without a progress row in this cycle have done nothing: 0–25%.
        without_rows = max(enrolled - s.get("rows", 0), 0)
        distribution = [
            {"label": label, "key": key,
             "count": s.get(key, 0) + (without_rows if key == "b0" else 0)}
            for label, key in BUCKETS
        ]  # fmt: skip
        subs = []
        for sub in t.sub_targets.all():
            reached = reach.get((sub.id, current), 0) if current else 0
            subs.append(
                {
                    "name": sub.name,
                    "criteria": (
                        f"{_fmt(sub.value)}% of the target"
                        if sub.criteria == SubTargetCriteria.PERCENTAGE
                        else f"on reaching {_fmt(sub.value)}"
                    ),
                    "reached": reached,
                    "rate": _rate(reached, enrolled),
                    "reached_all_cycles": reach_all_cycles.get(sub.id, 0),
                }
            )
        rate_chart = column_chart(
            [
                Bar(
                    label=f"C{c['ordinal']}",
                    value=c["rate"],
                    text=f"{_fmt(c['rate'])}%",
                    css=f"ins-{c['status'] or 'cycle'}"
                    + (" ins-current" if c["ordinal"] == current else ""),
                    hint=f"{c['name']}: {c['achieved']} of {enrolled} achieved ({_fmt(c['rate'])}%)",
                )
                for c in per_cycle
            ],
            title=f"Achievement rate per cycle: {t.name}",
            max_value=100,
        )
        distribution_chart = row_chart(
            [
                Bar(
                    label=d["label"],
                    value=d["count"],
                    css=f"ins-bucket-{d['key']}",
                    hint=f"{d['label']}: {d['count']} customers",
                )
                for d in distribution
            ],
            title=f"Progress distribution: {t.name}",
        )
        subs_chart = (
            row_chart(
                [
                    Bar(
                        label=s["name"],
                        value=s["rate"],
                        text=f"{s['reached']} ({_fmt(s['rate'])}%)",
                        css="ins-sub",
                        hint=f"{s['name']}: {s['reached']} of {enrolled} customers",
                    )
                    for s in subs
                ],
                title=f"Sub-target reach: {t.name}",
                max_value=100,
            )  # fmt: skip
            if subs
            else None
        )
        out_targets.append(
            {
                "target": t,
                "kpi": t.get_kpi_display(),
                "value": t.value,
                "per_cycle": per_cycle,
                "distribution": distribution,
                "sub_targets": subs,
                "leaderboard": boards.get(t.id, []) if group.leaderboard_enabled else None,
                "rate_chart": rate_chart,
                "distribution_chart": distribution_chart,
                "subs_chart": subs_chart,
            }
        )

    by_ordinal = {a["ordinal"]: a for a in awards_per_cycle(target_group_id=group.id)}
    awards = [
        {**c, "awards": by_ordinal.get(c["ordinal"], {}).get("awards", 0),
         "points": by_ordinal.get(c["ordinal"], {}).get("points", Decimal(0))}
        for c in cycles
    ]  # fmt: skip
    awards_chart = column_chart(
        [
            Bar(label=f"C{a['ordinal']}", value=a["awards"],
                css="ins-award", hint=f"{a['name']}: {a['awards']} awards, {_fmt(a['points'])} points")
            for a in awards
        ],
        title="Awards paid per cycle",
    )  # fmt: skip
    current_cycle = next((c for c in cycles if c["ordinal"] == current), None)
    return {
        "group": group,
        "status": group.status(),
        "enrolled": enrolled,
        "cycles": cycles,
        "current": current,
        "current_cycle": current_cycle,
        "per_customer": per_customer,
        "targets": out_targets,
        "awards": awards,
        "awards_chart": awards_chart,
        "leaderboard_enabled": group.leaderboard_enabled,
        "forecast": forecast_view(milestone_forecast(group, now=now)),
    }


def forecast_view(forecast: dict) -> dict:
    """The forecast (promotions.forecast) with its numbers written for people."""
    rows = []
    for t in forecast["targets"]:
        projected = t["liability"]["projected_total"]
        rows.append({
            "name": t["target"],
            "customers": grouped(t["customers"]),
            "achieved": grouped(t["achieved_so_far"]),
            "on_pace": grouped(t["on_pace"]),
            "expected": grouped(t["expected_achievers"].quantize(Decimal("0.1"))),
            "sub_targets": [
                {"name": s["name"], "reached": grouped(s["reached_so_far"]),
                 "on_pace": grouped(s["on_pace"])} for s in t["sub_targets"]
            ],
            "paid_points": grouped(t["liability"]["paid"]["points"]),
            "paid_coupons": grouped(t["liability"]["paid"]["coupons"]),
            "projected_points": grouped(projected["points"], empty="not known yet"),
            "projected_coupons": grouped(projected["coupons"], empty="not known yet"),
        })  # fmt: skip
    return {**forecast, "rows": rows}
