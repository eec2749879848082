"""`common.bulk.pg_array`: array literals that PostgreSQL reads back as the values given."""

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import connection

from common.bulk import pg_array

pytestmark = pytest.mark.django_db


def test_ints_are_a_plain_literal():
    assert pg_array([1, 22, 333]) == "{1,22,333}"
    assert pg_array([]) == "{}"


@pytest.mark.parametrize(
    ("values", "cast"),
    [
        ([Decimal("1.5"), None, Decimal("-0.0001"), Decimal("1E+3"), Decimal(10) ** 17], "numeric"),
        (
            [
                datetime(2026, 11, 29, 6, 45, 1, 123456, tzinfo=UTC),
                None,
                datetime(2026, 1, 1, 23, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            ],
            "timestamptz",
        ),
        ([date(2026, 2, 28), None], "date"),
        ([True, False, None], "boolean"),
        ([3, None, 4], "bigint"),
        (['a "quoted" word', "back\\slash", "", "NULL", "{,}", " spaces ", "ünï", None], "text"),
    ],
)
def test_values_come_back_as_they_were(values, cast):
    if connection.vendor != "postgresql":
        pytest.skip("array literals are PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s::{cast}[]", [pg_array(values)])
        (back,) = cursor.fetchone()
    assert back == values
