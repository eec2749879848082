"""Customer ranks from Redis sorted sets, when Redis is there (production broker).

One sorted set per target and cycle, score = achieved. A competition rank is 1 + the number
of scores strictly above the customer's (`ZCOUNT`), O(log N) instead of counting rows. The
set is a cache: built from the progress rows on first read, kept up to date after each
tracking commit, dropped when a write fails (the next read rebuilds it) and ignored when
Redis does not answer (the SQL count takes over). Without Redis (embedded default) every
rank is the SQL count.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from django.conf import settings

log = logging.getLogger(__name__)
BUILD_CHUNK = 10_000


@lru_cache(maxsize=1)
def _client():
    url = getattr(settings, "RANKS_REDIS_URL", "")
    if not url:
        return None
    import redis

    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def _key(target_id: int, ordinal: int) -> str:
    return f"{settings.RANKS_KEY_PREFIX}rank:{target_id}:{ordinal}"


def enabled() -> bool:
    return _client() is not None


def _build(r, target_id: int, ordinal: int) -> None:
    from milestones.models import Target

    from .models import Progress

    key = _key(target_id, ordinal)
    tmp = key + ":building"
    r.delete(tmp)
    # the organisation from the (reference) target table, so the read of progress is routed
    # to one shard (docs/scaling.md, "Past one primary")
    organisation_id = Target.objects.values_list("target_group__organisation_id", flat=True).get(
        pk=target_id
    )
    rows = Progress.objects.filter(
        organisation_id=organisation_id, target_id=target_id, cycle_ordinal=ordinal,
        achieved__gt=0,
    ).values_list("customer_id", "achieved")  # fmt: skip
    batch = {}
    for customer_id, achieved in rows.iterator(chunk_size=BUILD_CHUNK):
        batch[str(customer_id)] = float(achieved)
        if len(batch) >= BUILD_CHUNK:
            r.zadd(tmp, batch)
            batch = {}
    if batch:
        r.zadd(tmp, batch)
    if r.exists(tmp):
        r.rename(tmp, key)
    else:
        r.zadd(key, {"__empty__": -1})  # an empty board is still built


def rank(*, target_id: int, ordinal: int, achieved) -> int | None:
    """1 + customers strictly above `achieved`; None when Redis is not available."""
    r = _client()
    if r is None:
        return None
    try:
        key = _key(target_id, ordinal)
        if not r.exists(key):
            _build(r, target_id, ordinal)
        return int(r.zcount(key, f"({float(achieved)}", "+inf")) + 1
    except Exception:  # noqa: BLE001 - any Redis trouble: fall back to SQL
        log.warning("rank from Redis failed; using SQL", exc_info=True)
        return None


def record(rows) -> None:
    """After a tracking commit: [(target_id, ordinal, customer_id, achieved)] into built sets."""
    r = _client()
    if r is None or not rows:
        return
    by_key: dict[str, dict] = {}
    for target_id, ordinal, customer_id, achieved in rows:
        by_key.setdefault(_key(target_id, ordinal), {})[str(customer_id)] = float(achieved)
    keys = list(by_key)
    try:
        pipe = r.pipeline(transaction=False)
        for key in keys:
            pipe.exists(key)
        present = pipe.execute()
        pipe = r.pipeline(transaction=False)
        for key, exists in zip(keys, present, strict=True):
            if exists:
                members = by_key[key]
                positive = {m: s for m, s in members.items() if s > 0}
                if positive:
                    pipe.zadd(key, positive)
                gone = [m for m, s in members.items() if s <= 0]
                if gone:
                    pipe.zrem(key, *gone)
        pipe.execute()
    except Exception:  # noqa: BLE001
        log.warning("could not update ranks in Redis; dropping the sets", exc_info=True)
        try:
            r.delete(*keys)
        except Exception:  # noqa: BLE001
            pass


def forget(target_ids) -> None:
    """Drop every set of these targets (reprocessing rebuilt their progress)."""
    r = _client()
    if r is None:
        return
    try:
        for target_id in target_ids:
            keys = list(r.scan_iter(match=f"{settings.RANKS_KEY_PREFIX}rank:{target_id}:*"))
            if keys:
                r.delete(*keys)
    except Exception:  # noqa: BLE001
        log.warning("could not drop rank sets", exc_info=True)
