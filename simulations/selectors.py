"""Reads for the simulation pages: a run of the organisation, and the report of one run or
of two side by side (numbers formatted for people: `common.numbers.grouped`)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.shortcuts import get_object_or_404

from common.api import MAX_ID
from common.numbers import grouped
from milestones.models import Organisation, Target, TargetGroup
from promotions.models import Promotion

from .charts import grouped_bars
from .models import Simulation, SimulationStatus
from .report import BUCKETS

BUCKET_LABELS = {
    "0-25": "Under 25 %",
    "25-50": "25 to 50 %",
    "50-75": "50 to 75 %",
    "75-100": "75 % and over",
    "achieved": "Achieved",
}
RUN_NAMES = ("A", "B")


def simulation_of(*, organisation: Organisation, simulation_id) -> Simulation:
    """The organisation's simulation, or 404 (another organisation's is not found)."""
    try:
        pk = int(simulation_id)
    except (TypeError, ValueError):
        pk = 0
    return get_object_or_404(
        Simulation.objects.select_related("created_by"),
        pk=pk if 0 < pk <= MAX_ID else 0,
        organisation=organisation,
    )


def milestone_of(*, organisation: Organisation, target_group_id) -> TargetGroup:
    try:
        pk = int(target_group_id)
    except (TypeError, ValueError):
        pk = 0
    return get_object_or_404(
        TargetGroup.objects.select_related("organisation").prefetch_related("targets"),
        pk=pk if 0 < pk <= MAX_ID else 0,
        organisation=organisation,
    )


def promotions_for(*, group: TargetGroup) -> list[Promotion]:
    """The organisation's active promotions a simulation of the milestone may run with:
    those whose condition names it or one of its targets, or names nothing (they hear every
    event)."""
    names = {group.name, *group.targets.values_list("name", flat=True)}
    out = []
    for promotion in Promotion.objects.filter(
        organisation_id=group.organisation_id, is_active=True
    ).order_by("name"):
        try:
            named = set(promotion.rule().target_names)
        except Exception:  # noqa: BLE001 - an old condition that no longer compiles
            continue
        if not named or named & names:
            out.append(promotion)
    return out


def simulation_milestone(simulation: Simulation) -> TargetGroup | None:
    """The existing milestone a run simulated (None for an unsaved configuration or when
    it is gone)."""
    pk = (simulation.input or {}).get("target_group_id")
    if not isinstance(pk, int):
        return None
    return TargetGroup.objects.filter(pk=pk, organisation_id=simulation.organisation_id).first()


def simulation_name(simulation: Simulation) -> str:
    group = simulation_milestone(simulation)
    if group is not None:
        return group.name
    data = (simulation.input or {}).get("target_group")
    return str(data.get("name") or "An unsaved milestone") if isinstance(data, dict) else "—"


def _pct(part: int, whole: int) -> str:
    return f"{round(part * 100 / whole)} %" if whole else "—"


def _dates(start: str | None, end: str | None) -> str:
    """'1 Aug – 31 Aug 2026' for a fixed cycle; per-customer cycles have no dates."""
    if not start or not end:
        return "Each customer's own dates"
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    year = "" if first.year == last.year else f" {first.year}"
    return f"{first.day} {first:%b}{year} – {last.day} {last:%b %Y}"


def _cycle_row(cycle: dict) -> dict:
    awards = cycle.get("awards") or {}
    return {
        "name": cycle["name"],
        "dates": _dates(cycle.get("start"), cycle.get("end")),
        "target": grouped(cycle.get("target")),
        "participants": grouped(cycle["participants"]),
        "achieved": grouped(cycle["achieved"]),
        "rate": _pct(cycle["achieved"], cycle["participants"]),
        "subs": [
            {
                "name": s["name"],
                "reached": grouped(s["reached"]),
                "rate": _pct(s["reached"], cycle["participants"]),
            }
            for s in cycle["sub_targets"]
        ],  # fmt: skip
        "distribution": [
            {"label": BUCKET_LABELS[b], "count": grouped(cycle["distribution"][b])} for b in BUCKETS
        ],
        "median": grouped(cycle.get("median")),
        "top": grouped(cycle.get("top")),
        "awards": grouped(awards.get("count", 0)),
        "points": grouped(awards.get("points", 0)),
        "coupons": grouped(awards.get("coupons", 0)),
        "capped": awards.get("capped", 0),
    }


def _totals(target: dict) -> dict:
    cycles = target["cycles"]
    participants = sum(c["participants"] for c in cycles)
    achieved = sum(c["achieved"] for c in cycles)
    return {
        "participants": participants,
        "achieved": achieved,
        "rate": _pct(achieved, participants),
        "points": sum(Decimal(str(c["awards"]["points"])) for c in cycles),
        "coupons": sum(c["awards"]["coupons"] for c in cycles),
        "awards": sum(c["awards"]["count"] for c in cycles),
        "subs": {
            s["name"]: sum(
                next((x["reached"] for x in c["sub_targets"] if x["name"] == s["name"]), 0)
                for c in cycles
            )
            for s in (cycles[0]["sub_targets"] if cycles else [])
        },
    }


def report(simulations: list[Simulation]) -> dict:
    """The report page's data for one run, or two side by side (runs A and B). Targets are
    matched by name; charts put the runs' bars next to each other."""
    runs = []
    for name, simulation in zip(RUN_NAMES, simulations, strict=False):
        runs.append(
            {
                "name": name,
                "simulation": simulation,
                "title": simulation.label or simulation_name(simulation),
                "done": simulation.status == SimulationStatus.DONE,
                "result": simulation.result if simulation.status == SimulationStatus.DONE else None,
            }
        )
    finished = all(r["done"] for r in runs)
    polling = any(
        r["simulation"].status in (SimulationStatus.PENDING, SimulationStatus.RUNNING) for r in runs
    )
    out = {"runs": runs, "finished": finished, "polling": polling, "comparing": len(runs) > 1,
           "targets": []}  # fmt: skip
    if not finished:
        return out
    first = runs[0]["result"]
    out["window"] = first.get("window", {})
    out["notes"] = first.get("notes", [])
    out["liability"] = [
        {"run": r["name"], "title": r["title"], "points": grouped(r["result"]["liability"]["points"]),
         "coupons": grouped(r["result"]["liability"]["coupons"])}
        for r in runs
    ]  # fmt: skip
    for target in first["targets"]:
        per_run = []
        for r in runs:
            mine = next((t for t in r["result"]["targets"] if t["name"] == target["name"]), None)
            per_run.append((r, mine))
        present = [(r, t) for r, t in per_run if t is not None]
        cycle_names = [c["name"] for c in target["cycles"]]
        label = [f"{r['name']}: {r['title']}" for r, _t in present]
        out["targets"].append(
            {
                "name": target["name"],
                "kpi": target.get("kpi", ""),
                "runs": [
                    {
                        "run": r["name"],
                        "title": r["title"],
                        "value": grouped(t.get("value")),
                        "cycles": [_cycle_row(c) for c in t["cycles"]],
                        "totals": _totals(t),
                    }
                    for r, t in present
                ],  # fmt: skip
                "comparison": _comparison(present),
                "achieved_chart": grouped_bars(
                    title=f"{target['name']}: customers reaching the target, per cycle",
                    categories=cycle_names,
                    series=[
                        (lbl, [c["achieved"] for c in t["cycles"]])
                        for lbl, (_r, t) in zip(label, present, strict=True)
                    ],  # fmt: skip
                ),
                "distribution_chart": grouped_bars(
                    title=f"{target['name']}: progress at the cycles' end (all cycles)",
                    categories=[BUCKET_LABELS[b] for b in BUCKETS],
                    series=[
                        (lbl, [sum(c["distribution"][b] for c in t["cycles"]) for b in BUCKETS])
                        for lbl, (_r, t) in zip(label, present, strict=True)
                    ],  # fmt: skip
                ),
            }
        )
    return out


def _comparison(present) -> list[dict]:
    """Rows of the side-by-side summary: a figure, its value in each run, the difference."""
    if len(present) < 2:
        return []
    (_ra, a), (_rb, b) = present[0], present[1]
    ta, tb = _totals(a), _totals(b)
    rows = [
        ("Target value", Decimal(str(a.get("value", 0))), Decimal(str(b.get("value", 0)))),
        ("Participants (all cycles)", ta["participants"], tb["participants"]),
        ("Reaching the target (all cycles)", ta["achieved"], tb["achieved"]),
    ]
    rows += [(f"Reaching {name}", ta["subs"][name], tb["subs"].get(name, 0)) for name in ta["subs"]]
    rows += [
        ("Awards", ta["awards"], tb["awards"]),
        ("Points", ta["points"], tb["points"]),
        ("Coupons", ta["coupons"], tb["coupons"]),
    ]
    return [
        {
            "label": label,
            "a": grouped(x),
            "b": grouped(y),
            "difference": _signed(Decimal(y) - Decimal(x)),
        }
        for label, x, y in rows
    ]


def _signed(value: Decimal) -> str:
    if value > 0:
        return f"+{grouped(value)}"
    return grouped(value) if value else "0"


def target_values(group: TargetGroup) -> list[Target]:
    return list(group.targets.order_by("ordinal", "id"))
