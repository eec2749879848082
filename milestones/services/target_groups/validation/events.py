"""Warnings (never refusals) about the events a milestone's targets count: a behavioural
event name the organisation's event catalogue does not know (never received, never added by
a configurer) counts nothing until activities bring that exact, case-sensitive name; the
warning names the closest known name, if any ("review" -> "Review")."""

from __future__ import annotations

from ....models import EventKind, Organisation
from ....selectors import closest_event_name, event_catalogue


def warn_unknown_events(org: Organisation, targets: list[tuple[int, dict]], warnings: list[str]):
    """`targets`: (position in the request, the target's checked fields) pairs. One query
    for the catalogue, only when a target counts a behavioural event."""
    counting = [(i, t) for i, t in targets if t.get("kpi", "").startswith("event_")]
    if not counting:
        return
    catalogue = {
        row["name"]: row for row in event_catalogue(org) if row["kind"] == EventKind.BEHAVIOURAL
    }
    for i, target in counting:
        name = target.get("event_name") or ""
        if not name:
            continue
        about = f"Target {i} ({target.get('name') or '?'})"
        if name not in catalogue:
            near = closest_event_name(name, catalogue)
            hint = f" Did you mean {near!r}? Names are case-sensitive." if near else ""
            warnings.append(
                f"{about}: the event {name!r} has never been received and is not in the event "
                f"catalogue, so the target counts nothing until activities with this exact "
                f"name arrive.{hint}"
            )
            continue
        attribute = target.get("attribute") or ""
        seen = catalogue[name]["attributes"]
        if attribute and seen and attribute not in seen:
            near = closest_event_name(attribute, seen)
            hint = f" Did you mean {near!r}?" if near else ""
            warnings.append(
                f"{about}: the attribute {attribute!r} has not been seen on {name!r} (seen: "
                f"{', '.join(seen)}).{hint}"
            )
