"""A target's scope: the stores, zones and concepts whose activities count (none: all)."""

from __future__ import annotations

from ....models import Store, Target
from .errors import About


def resolve_scope(org, scope: dict | None, existing: Target | None, about: About) -> dict:
    """The target's scope fields; an edit that sends no scope keeps the target's."""
    if scope is None and existing is not None:
        return {
            "scope_stores": existing.scope_stores,
            "scope_zones": existing.scope_zones,
            "scope_concepts": existing.scope_concepts,
        }
    scope = scope or {}
    stores = [str(s) for s in scope.get("stores") or []]
    zones = [str(z) for z in scope.get("zones") or []]
    concepts = [str(c) for c in scope.get("concepts") or []]
    known = Store.objects.filter(organisation=org)
    missing = set(stores) - set(known.filter(code__in=stores).values_list("code", flat=True))
    if missing:
        about.add(
            f"unknown store code(s) in the scope: {', '.join(sorted(missing))}.",
            target_field="scope_stores",
        )
    missing_zones = set(zones) - set(known.filter(zone__in=zones).values_list("zone", flat=True))
    if missing_zones:
        about.add(
            f"no store is in zone(s) {', '.join(sorted(missing_zones))}.",
            target_field="scope_zones",
        )
    missing_concepts = set(concepts) - set(
        known.filter(concept__in=concepts).values_list("concept", flat=True)
    )
    if missing_concepts:
        about.add(
            f"no store has concept(s) {', '.join(sorted(missing_concepts))}.",
            target_field="scope_concepts",
        )
    return {"scope_stores": stores, "scope_zones": zones, "scope_concepts": concepts}
