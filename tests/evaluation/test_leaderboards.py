from decimal import Decimal

import pytest

from enrolment.models import Customer
from tests.evaluation.conftest import txn

pytestmark = pytest.mark.django_db


@pytest.fixture
def board(make_group, post, track, stores):
    group = make_group("Board", leaderboard_enabled=True)
    post(
        txn(1, "2026-03-04T11:00:00+00:00", 500, mobile="9000000001"),
        txn(2, "2026-03-04T12:00:00+00:00", 700, mobile="9000000002"),
        txn(3, "2026-03-04T13:00:00+00:00", 500, mobile="9000000003"),
        txn(4, "2026-03-04T09:00:00+00:00", 100, mobile="9000000004"),
        txn(5, "2026-03-04T10:00:00+00:00", 400, mobile="9000000004"),
        txn(6, "2026-04-04T10:00:00+00:00", 50, mobile="9000000001"),
    )
    track()
    return group.targets.get()


def ids(*mobiles):
    return [Customer.objects.get(mobile=m).id for m in mobiles]


def test_top_n_with_shared_ranks_ordered_by_who_got_there_first(api, member_care, board):
    rows = (
        api(member_care).get(f"/api/v1/targets/{board.id}/leaderboard/?period=P3&limit=10").json()
    )
    assert [(r["rank"], r["customer"], r["achieved"]) for r in rows] == list(
        zip(
            [1, 2, 2, 2],
            ids("9000000002", "9000000004", "9000000001", "9000000003"),
            [700.0, 500.0, 500.0, 500.0],
            strict=True,
        )
    )
    assert rows[0]["period"] == "Board P3"


def test_the_period_can_be_named_in_full_and_pages_keep_ranks(api, member_care, board):
    client = api(member_care)
    page = client.get(
        f"/api/v1/targets/{board.id}/leaderboard/?period=Board P3&limit=2&offset=2"
    ).json()
    assert [(r["rank"], r["customer"]) for r in page] == [
        (2, ids("9000000001")[0]),
        (2, ids("9000000003")[0]),
    ]
    april = client.get(f"/api/v1/targets/{board.id}/leaderboard/?period=P4").json()
    assert [(r["rank"], r["achieved"]) for r in april] == [(1, 50.0)]


def test_limits_and_unknown_periods_are_clear_400s(api, member_care, board):
    client = api(member_care)
    assert (
        "between 1 and 100"
        in client.get(f"/api/v1/targets/{board.id}/leaderboard/?limit=101").json()["detail"]
    )
    assert (
        "Unknown period"
        in client.get(f"/api/v1/targets/{board.id}/leaderboard/?period=P99").json()["detail"]
    )


def test_no_leaderboard_unless_enabled_and_never_another_orgs(
    api, member_care, other_configurer, make_group, board
):
    plain = make_group("Plain").targets.get()
    assert api(member_care).get(f"/api/v1/targets/{plain.id}/leaderboard/").status_code == 404
    assert (
        api(other_configurer).get(f"/api/v1/targets/{board.id}/leaderboard/?period=P3").status_code
        == 404
    )


def test_a_customers_ranks_across_targets(api, member_care, board):
    customer = Customer.objects.get(mobile="9000000003")
    rows = api(member_care).get(f"/api/v1/customers/{customer.id}/ranks/").json()
    assert len(rows) == 1
    assert rows[0]["target"] == "Board target" and rows[0]["target_group"] == "Board"
    from evaluation.leaderboards import rank_of

    assert rank_of(target_id=board.id, ordinal=3, customer_id=customer.id) == (2, Decimal(500))
    assert (
        api(member_care).get(f"/api/v1/customers/{customer.id}/ranks/?limit=26").status_code == 400
    )


@pytest.fixture
def redis_ranks(settings):
    from evaluation import ranks

    settings.RANKS_REDIS_URL = "redis://127.0.0.1:6379/0"
    ranks._client.cache_clear()
    yield ranks
    ranks._client.cache_clear()


def test_ranks_from_redis_match_sql_and_follow_new_activity(
    redis_ranks, board, post, track, django_capture_on_commit_callbacks
):
    from evaluation.leaderboards import rank_of

    first, third, fourth = ids("9000000001", "9000000003", "9000000004")
    assert rank_of(target_id=board.id, ordinal=3, customer_id=third) == (
        2,
        Decimal(500),
    )  # builds the set
    assert redis_ranks._client().zcard(redis_ranks._key(board.id, 3)) == 4
    with django_capture_on_commit_callbacks(execute=True):
        post(txn(9, "2026-03-05T11:00:00+00:00", 300, mobile="9000000003"))
        track()
    assert rank_of(target_id=board.id, ordinal=3, customer_id=third) == (1, Decimal(800))
    assert rank_of(target_id=board.id, ordinal=3, customer_id=first)[0] == 3
    assert rank_of(target_id=board.id, ordinal=3, customer_id=fourth)[0] == 3


def test_ranks_fall_back_to_sql_when_redis_does_not_answer(settings, board):
    from evaluation import ranks
    from evaluation.leaderboards import rank_of

    settings.RANKS_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    ranks._client.cache_clear()
    try:
        assert rank_of(target_id=board.id, ordinal=3, customer_id=ids("9000000002")[0]) == (
            1,
            Decimal(700),
        )
    finally:
        ranks._client.cache_clear()
