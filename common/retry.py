"""The poison-pill retry policy, shared by the sweeps that retry failed rows (tracking's
activities, promotions' target events): a backoff after each failure (1 minute, then 4, then
16...), a cap on automatic attempts, and work taken per organisation so that one tenant's
backlog never delays another's."""

from datetime import datetime, timedelta

from django.db.models import Q


def backoff(attempts: int) -> timedelta:
    """How long a row waits after its `attempts`-th failure."""
    return timedelta(minutes=4 ** (attempts - 1))


def due(*, attempts: str, failed_at: str, max_attempts: int, now: datetime) -> Q:
    """Rows whose last failure has waited out its backoff and that have attempts left
    (`attempts` and `failed_at` are the field paths)."""
    condition = Q(pk__in=[])
    for n in range(1, max_attempts):
        condition |= Q(**{attempts: n, f"{failed_at}__lt": now - backoff(n)})
    return condition


def oldest_per_organisation(queryset, per_organisation: int) -> list[int]:
    """The ids of the oldest `per_organisation` rows of each organisation in `queryset`."""
    ids: list[int] = []
    orgs = queryset.values_list("organisation_id", flat=True).distinct()
    for org_id in sorted(set(orgs)):
        ids += list(
            queryset.filter(organisation_id=org_id)
            .order_by("id")
            .values_list("id", flat=True)[:per_organisation]
        )
    return ids
