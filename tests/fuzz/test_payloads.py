"""Property-based tests of POST /api/v1/activities/: whatever the body, never a 5xx; a bad
activity (alone or in a batch) is a 400 that says what is wrong and stores nothing (no
activity, no auto-created customer); good ones are accepted once and only once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import count

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from enrolment.models import Customer
from evaluation.models import Activity
from milestones.services.target_groups import CUSTOMER_EVENTS
from tests.factories import StoreFactory

URL = "/api/v1/activities/"
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
STORES = ("S1", "S2")
KINDS = ("transaction", "return", "event", "customer_event", "points")
_ids = count(1)

# --- good activities ------------------------------------------------------------------------

amounts = st.one_of(
    st.integers(min_value=0, max_value=10**9),
    st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False).map(str),
    st.floats(min_value=0, max_value=1e9, allow_nan=False).map(lambda x: round(x, 2)),
)
moments = st.datetimes(
    min_value=datetime(2000, 1, 2),
    max_value=datetime(2026, 11, 1),
    timezones=st.just(UTC),
).map(lambda d: d.isoformat())
customers = st.one_of(
    st.from_regex(r"9[0-9]{9}", fullmatch=True).map(lambda m: {"mobile": m}),
    st.from_regex(r"C-[0-9]{1,8}", fullmatch=True).map(lambda e: {"external_id": e}),
)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text(max_size=20))
small_dicts = st.dictionaries(st.text(min_size=1, max_size=10), json_leaf, max_size=3)
line_items = st.fixed_dictionaries(
    {"sku": st.text(max_size=20), "quantity": st.integers(1, 100), "gross": amounts},
    optional={"category": st.text(max_size=20), "net": amounts, "extended_fields": small_dicts},
)


def _activity(kind: str, fields: dict) -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {
            "type": st.just(kind),
            "customer": customers,
            "occurred_at": moments,
            **fields,
        }
    )


good_activity = st.one_of(
    _activity(
        "transaction",
        {
            "store": st.sampled_from(STORES),
            "gross": amounts,
            "bill_number": st.text(max_size=30),
            "line_items": st.lists(line_items, max_size=3),
            "extended_fields": small_dicts,
        },
    ),
    _activity("return", {"bill_number": st.text(max_size=30), "gross": amounts}),
    _activity(
        "event",
        {"name": st.text(min_size=1, max_size=50).filter(str.strip), "attributes": small_dicts},
    ),
    _activity("customer_event", {"name": st.sampled_from(CUSTOMER_EVENTS)}),
    _activity("points", {"regular": amounts, "promotional": amounts}),
)


def _with_fresh_id(item: dict) -> dict:
    return {"id": f"fuzz-{next(_ids)}", **item}


# --- bad activities: a good one with one thing broken -------------------------------------

junk = st.recursive(
    json_leaf | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
NUMBER_FIELDS = ("gross", "discount", "net", "regular", "promotional")
not_a_number = st.one_of(
    # A blank string in an optional number is DRF's "no value" (null), not an error.
    st.text(max_size=10).filter(lambda s: s.strip() and not _is_number(s)),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.booleans(),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "0x10", "1,000"]),
)
huge = st.one_of(
    st.integers(min_value=10**14 + 1, max_value=10**60),
    st.integers(min_value=-(10**60), max_value=-(10**14) - 1),
    st.floats(min_value=1e15, max_value=1e300),
    st.just("9" * 500),
)
bad_dates = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(1999, 12, 31)).map(
        lambda d: d.replace(tzinfo=UTC).isoformat()
    ),
    st.datetimes(min_value=datetime(2027, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: d.replace(tzinfo=UTC).isoformat()
    ),
    st.text(max_size=30),
    st.integers(),
    st.sampled_from(["2026-02-30T10:00:00Z", "2026-13-01", "yesterday", "", "0000-00-00"]),
)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@st.composite
def bad_activity(draw) -> tuple[dict, str]:
    """(activity, the field the error must name)."""
    item = _with_fresh_id(draw(good_activity))
    how = draw(
        st.sampled_from(
            ["missing", "wrong type", "huge", "date", "store", "customer", "lines", "kind", "id"]
        )
    )
    if how == "missing":
        field = draw(st.sampled_from(["id", "type", "customer", "occurred_at"]))
        del item[field]
    elif how == "wrong type":
        field = draw(st.sampled_from(NUMBER_FIELDS))
        item[field] = draw(not_a_number)
    elif how == "huge":
        field = draw(st.sampled_from(NUMBER_FIELDS))
        item[field] = draw(huge)
    elif how == "date":
        field = "occurred_at"
        item[field] = draw(bad_dates)
    elif how == "store":
        field = "store"
        item["type"] = "transaction"
        item[field] = draw(st.text(min_size=1, max_size=64).filter(lambda s: s not in STORES))
    elif how == "customer":
        field = "customer"
        item[field] = draw(
            st.one_of(
                st.just({}),
                st.just({"mobile": ""}),
                st.text(max_size=10),
                st.lists(junk, max_size=2),
                st.integers(),
                st.none(),
            )
        )
    elif how == "lines":
        field = "line_items"
        item["type"] = "transaction"
        item.pop("store", None)
        item[field] = draw(
            st.one_of(
                st.text(max_size=5),
                st.lists(st.one_of(st.integers(), st.text(max_size=3)), min_size=1, max_size=3),
                st.just([{"quantity": "lots"}]),
                st.just([{"gross": 10**20}]),
                st.dictionaries(st.text(max_size=3), junk, min_size=1, max_size=2),
            )
        )
    elif how == "kind":
        field = "type"
        item[field] = draw(
            st.one_of(
                st.text(max_size=15).filter(lambda s: s not in KINDS),
                st.integers(),
                st.none(),
                st.lists(st.text(max_size=3), max_size=1),
            )
        )
    else:
        field = "id"
        item[field] = draw(st.one_of(st.just(""), st.just("x" * 201), st.none(), st.just([])))
    return item, field


@pytest.fixture
def integ(org, integration, api):
    for code in STORES:
        StoreFactory(organisation=org, code=code)
    return api(integration)


def _counts():
    return Activity.objects.count(), Customer.objects.count()


def _messages(body) -> list[str]:
    if isinstance(body, dict):
        return [m for v in body.values() for m in _messages(v)]
    if isinstance(body, list):
        return [m for v in body for m in _messages(v)]
    return [str(body)]


def _assert_refused(response, before, field: str | None = None):
    assert response.status_code == 400, (response.status_code, response.content[:500])
    body = response.json()
    assert isinstance(body, dict) and body
    messages = _messages(body)
    assert messages and all(m.strip() for m in messages), body
    if field is not None:
        assert field in json.dumps(body), (field, body)
    assert _counts() == before, "a refused request changed the database"


@FUZZ
@given(batch=st.lists(good_activity, min_size=1, max_size=5))
def test_good_activities_are_accepted_once(integ, batch):
    batch = [_with_fresh_id(item) for item in batch]
    before = Activity.objects.count()
    first = integ.post(URL, batch, format="json")
    assert first.status_code == 202, first.content
    assert first.json()["accepted"] == len(batch)
    assert Activity.objects.count() == before + len(batch)
    again = integ.post(URL, batch, format="json")
    assert again.status_code == 202, again.content
    assert again.json()["accepted"] == 0 and again.json()["duplicates"] == len(batch)
    assert Activity.objects.count() == before + len(batch)


@FUZZ
@given(case=bad_activity())
def test_a_bad_activity_is_refused_and_names_the_field(integ, case):
    item, field = case
    note(f"{field}: {item!r}")
    before = _counts()
    _assert_refused(integ.post(URL, item, format="json"), before, field)


@FUZZ
@given(
    good=st.lists(good_activity, min_size=1, max_size=4),
    bad=bad_activity(),
    at=st.integers(min_value=0, max_value=4),
)
def test_one_bad_activity_refuses_the_whole_batch(integ, good, bad, at):
    batch = [_with_fresh_id(item) for item in good]
    position = min(at, len(batch))
    batch.insert(position, bad[0])
    note(repr(batch))
    before = _counts()
    response = integ.post(URL, batch, format="json")
    _assert_refused(response, before, f"item {position}")


@FUZZ
@given(body=junk)
def test_any_json_body_is_never_a_server_error(integ, body):
    note(repr(body))
    before = _counts()
    response = integ.post(URL, json.dumps(body), content_type="application/json")
    assert response.status_code < 500, response.content[:500]
    if response.status_code != 202:
        _assert_refused(response, before)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"[",
        b'{"id": "n1", "gross": NaN}',
        b'{"id": "n1", "gross": Infinity}',
        b"\xff\xfe\x00garbage",
        b'{"id": "x", "type": "transaction", "customer": {"mobile": "9000000001"}, '
        b'"occurred_at": "2026-03-01T10:00:00Z", "gross": 1e999999}',
        b"[" + b"[" * 5000 + b"]" * 5000 + b"]",
    ],
)
def test_broken_json_is_a_400(integ, raw):
    before = _counts()
    response = integ.post(URL, raw, content_type="application/json")
    _assert_refused(response, before)


@pytest.mark.parametrize(
    "text", ["\x00", "a\x00b", "tab\tnew\nline", "\u202ertl", "\U0001f600" * 50]
)
def test_control_and_odd_characters_in_free_text_are_stored_or_refused(integ, text):
    """NUL cannot be stored in PostgreSQL text or jsonb: it must be a 400, not a 500."""
    item = _with_fresh_id(
        {
            "type": "event",
            "customer": {"mobile": "9000000009"},
            "occurred_at": "2026-03-01T10:00:00+00:00",
            "name": "Viewed",
            "attributes": {"note": text, text or "k": 1},
        }
    )
    before = _counts()
    response = integ.post(URL, item, format="json")
    if "\x00" in text:
        _assert_refused(response, before, "attributes")
    else:
        assert response.status_code == 202, response.content
        assert Activity.objects.count() == before[0] + 1


@pytest.mark.parametrize(
    "body",
    [
        {"mobile": "9000000010", "attributes": {"tier": "gold\x00"}},
        {"mobile": "9000000010", "attributes": {"a\x00": 1}},
        {"mobile": "9000000010", "attributes": {"nested": [{"x": "\x00"}]}},
    ],
)
def test_nul_in_customer_attributes_is_a_400(integ, body):
    before = _counts()
    _assert_refused(integ.post("/api/v1/customers/", body, format="json"), before, "attributes")
