"""Activities in; progress and target events out."""

import copy
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.shortcuts import get_object_or_404
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import (
    MAX_OFFSET,
    IdFilter,
    PagingError,
    id_param,
    paging_value,
    reject_nul,
)
from common.permissions import ALL_ROLES
from common.replica import ReplicaReadsMixin
from enrolment.models import Customer
from milestones.catalogue import CUSTOMER_EVENTS
from milestones.models import Role, Target, TargetGroup
from milestones.openapi import ItemErrorsField

from . import ingest, leaderboards
from .kpis import AMOUNT_LIMIT, to_decimal
from .models import (
    ActivityType,
    EvaluationRun,
    NearMissRule,
    ReprocessRun,
    TargetEvent,
    TargetEventType,
)
from .near_miss import near_miss_rule_set
from .reprocess import reprocess_start
from .selectors import customer_milestones

AMOUNT = {
    "max_digits": 22,
    "decimal_places": 4,
    "rounding": ROUND_HALF_UP,
    "max_value": AMOUNT_LIMIT,
    "min_value": -AMOUNT_LIMIT,
}
# Amounts a person pays or buys are never negative (a return is its own activity type).
NON_NEGATIVE = {**AMOUNT, "min_value": 0}
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def bounded_numbers(values: dict) -> None:
    """Attributes and extended fields may be summed by a target: their numbers carry the same
    cap as an amount (beyond it a sum could overflow a customer's progress)."""
    too_big = sorted(k for k, v in values.items() if abs(to_decimal(v)) > AMOUNT_LIMIT)
    if too_big:
        raise serializers.ValidationError(
            f"{', '.join(too_big)}: a number may not exceed {AMOUNT_LIMIT:,} in size."
        )


class CustomerRef(serializers.Serializer):
    """Who: at least one of mobile, email and external_id. The first that names a customer of
    the organisation wins; an unknown customer is created with all of them."""

    mobile = serializers.CharField(
        max_length=40, required=False, allow_null=True, allow_blank=True,
        help_text="Mobile number in any common spelling (`9000000001`, `+91 90000 00001`); "
        "stored in E.164 when the organisation has a default country.",
    )  # fmt: skip
    email = serializers.CharField(
        max_length=254, required=False, allow_null=True, allow_blank=True,
        help_text="Email address (compared case-insensitively).",
    )  # fmt: skip
    external_id = serializers.CharField(
        max_length=100, required=False, allow_null=True, allow_blank=True,
        help_text="Your own customer id (case kept).",
    )  # fmt: skip

    def validate(self, attrs):
        if not any(attrs.get(k) for k in ("mobile", "email", "external_id")):
            raise serializers.ValidationError(
                "Identify the customer by mobile, email or external_id."
            )
        return attrs


class LineItemIn(serializers.Serializer):
    """One line of a bill."""

    sku = serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text="The product's SKU."
    )
    category = serializers.CharField(
        max_length=100, required=False, allow_blank=True,
        help_text="The product's category (line-item targets and rules can filter on it).",
    )  # fmt: skip
    quantity = serializers.DecimalField(
        **NON_NEGATIVE, required=False, default=1,
        help_text="Units bought (default 1); never negative. Quantity targets add it up.",
    )  # fmt: skip
    gross = serializers.DecimalField(
        **NON_NEGATIVE, required=False, allow_null=True,
        help_text="The line's amount before discount; never negative.",
    )  # fmt: skip
    discount = serializers.DecimalField(
        **NON_NEGATIVE, required=False, allow_null=True,
        help_text="The line's discount; never negative.",
    )  # fmt: skip
    net = serializers.DecimalField(
        **NON_NEGATIVE, required=False, allow_null=True,
        help_text="The line's amount after discount; never negative.",
    )  # fmt: skip
    extended_fields = serializers.DictField(
        required=False, validators=[reject_nul, bounded_numbers],
        help_text="Extra facts about the line, name -> value (`{\"metal\": \"gold\"}`), for "
        "extended-field targets; numbers are capped like amounts.",
    )  # fmt: skip


class ActivityIn(serializers.Serializer):
    """One activity of any type (the runtime validation; the schema documents the request as
    one shape per type, see ACTIVITY_REQUEST)."""

    id = serializers.CharField(
        max_length=200,
        help_text="Your idempotency key, unique in your organisation: the same `id` sent again "
        "(a retry, a replayed file) is answered as a duplicate and counted once.",
    )
    type = serializers.ChoiceField(
        choices=ActivityType.choices,
        help_text="What happened: `transaction` (a bill), `return` (goods brought back), "
        "`event` (a behavioural event, e.g. AddToCart), `customer_event` (a customer-level "
        "event, e.g. points_redemption), `points` (loyalty points earned).",
    )
    customer = CustomerRef(
        help_text="Who did it: `mobile`, `email` and/or `external_id`. An unknown customer is "
        "created, unless the organisation turned automatic creation off (then a 400)."
    )
    occurred_at = serializers.DateTimeField(
        help_text="When it happened, ISO 8601 with an offset (`2026-03-04T11:00:00+05:30`), "
        "from 2000-01-01 to one day ahead of now; it decides the cycle the activity counts in."
    )
    store = serializers.CharField(
        max_length=64, required=False, allow_blank=True, allow_null=True,
        help_text="The store's `code` (`/api/v1/stores/`); an unknown code is a 400. Targets "
        "scoped to stores, zones or concepts count only activities there.",
    )  # fmt: skip
    bill_number = serializers.CharField(
        max_length=100, required=False, allow_blank=True, allow_null=True,
        help_text="The bill's number (transactions and returns).",
    )  # fmt: skip
    gross = serializers.DecimalField(
        **NON_NEGATIVE, required=False, allow_null=True,
        help_text="The bill's amount before discount; never negative.",
    )  # fmt: skip
    discount = serializers.DecimalField(
        **NON_NEGATIVE, required=False, allow_null=True,
        help_text="The bill's discount; never negative.",
    )  # fmt: skip
    net = serializers.DecimalField(
        **NON_NEGATIVE, required=False, allow_null=True,
        help_text="The bill's amount after discount; never negative.",
    )  # fmt: skip
    extended_fields = serializers.DictField(
        required=False, validators=[reject_nul, bounded_numbers],
        help_text="Extra facts about the bill, name -> value (`{\"tax\": 10}`), for "
        "extended-field targets; numbers are capped like amounts.",
    )  # fmt: skip
    line_items = LineItemIn(
        many=True, required=False, max_length=1000,
        help_text="The bill's lines (up to 1,000); their amounts add up to at most the cap.",
    )  # fmt: skip
    name = serializers.CharField(
        max_length=100, required=False, allow_blank=True,
        help_text="The event's name, required for `event` (any name, e.g. AddToCart) and "
        f"`customer_event` (one of {', '.join(CUSTOMER_EVENTS)}).",
    )  # fmt: skip
    attributes = serializers.DictField(
        required=False, validators=[reject_nul, bounded_numbers],
        help_text="The event's attributes, name -> value (`{\"price\": 3000}`); event-sum "
        "targets add one of them up.",
    )  # fmt: skip
    regular = serializers.DecimalField(
        **AMOUNT, required=False, allow_null=True,
        help_text="Regular points of a `points` activity (it needs regular and/or promotional).",
    )  # fmt: skip
    promotional = serializers.DecimalField(
        **AMOUNT, required=False, allow_null=True,
        help_text="Promotional points of a `points` activity.",
    )  # fmt: skip

    def validate_occurred_at(self, value):
        if value < EARLIEST:
            raise serializers.ValidationError("occurred_at is before 2000-01-01.")
        if value > timezone.now() + timedelta(days=1):
            raise serializers.ValidationError("occurred_at is in the future.")
        return value

    def validate(self, attrs):
        kind = attrs["type"]
        if kind in (ActivityType.EVENT, ActivityType.CUSTOMER_EVENT) and not attrs.get("name"):
            raise serializers.ValidationError({"name": [f"A {kind} needs its name."]})
        if kind == ActivityType.CUSTOMER_EVENT and attrs["name"] not in CUSTOMER_EVENTS:
            raise serializers.ValidationError(
                {
                    "name": [
                        f"Unknown customer-level event; use one of {', '.join(CUSTOMER_EVENTS)}."
                    ]
                }
            )
        if (
            kind == ActivityType.POINTS
            and attrs.get("regular") is None
            and attrs.get("promotional") is None
        ):
            raise serializers.ValidationError(
                {"regular": ["A points activity needs regular and/or promotional points."]}
            )
        lines = attrs.get("line_items") or []
        for name in ("gross", "net", "discount", "quantity"):
            total = sum((li.get(name) or 0 for li in lines), Decimal(0))
            if total > AMOUNT_LIMIT:
                raise serializers.ValidationError(
                    {
                        "line_items": [
                            f"The line items' {name} adds up to {total:f}, over the cap of {AMOUNT_LIMIT:,}."
                        ]
                    }  # fmt: skip
                )
        return attrs


# --- the request body's documentation: one shape per activity type ---------------------------
# ActivityIn (above) validates every type at run time. These serializers only document the
# request body, as a `oneOf` discriminated on `type`; their fields are copies of ActivityIn's,
# so the limits and descriptions in the schema are the ones validated.
_SHAPE_FIELDS = {
    ActivityType.TRANSACTION: ("store", "bill_number", "gross", "discount", "net",
                               "extended_fields", "line_items"),
    ActivityType.RETURN: ("store", "bill_number", "gross", "discount", "net", "extended_fields",
                          "line_items"),
    ActivityType.EVENT: ("store", "name", "attributes"),
    ActivityType.CUSTOMER_EVENT: ("name", "attributes"),
    ActivityType.POINTS: ("regular", "promotional"),
}  # fmt: skip
_SHAPE_REQUIRED = {ActivityType.EVENT: ("name",), ActivityType.CUSTOMER_EVENT: ("name",)}


def _activity_shape(kind: ActivityType, name: str, doc: str) -> type[serializers.Serializer]:
    # Fields are ordered by creation and a deep copy is a new field: `type` is made first.
    fields = {
        "type": serializers.ChoiceField(
            choices=[(kind.value, kind.label)], help_text=f"Always `{kind.value}` here."
        )
    }
    declared = ActivityIn._declared_fields
    for f in ("id", "customer", "occurred_at", *_SHAPE_FIELDS[kind]):
        fields[f] = copy.deepcopy(declared[f])
    for f in _SHAPE_REQUIRED.get(kind, ()):  # a field is re-made from its arguments when bound
        old = declared[f]
        fields[f] = type(old)(*old._args, **{**copy.deepcopy(old._kwargs), "required": True})
    return type(name, (serializers.Serializer,), {"__module__": __name__, "__doc__": doc, **fields})


TransactionActivity = _activity_shape(
    ActivityType.TRANSACTION, "TransactionActivity",
    "A bill: sales KPIs (gross, net, quantity, transactions, days of activity) count it.",
)  # fmt: skip
ReturnActivity = _activity_shape(
    ActivityType.RETURN, "ReturnActivity",
    "Goods brought back: lowers sales and quantity when the organisation allows returns on "
    "targets (`allow_return_on_target`); a returns-count KPI counts it either way.",
)  # fmt: skip
EventActivity = _activity_shape(
    ActivityType.EVENT, "EventActivity",
    "A behavioural event (AddToCart, a review, a visit): event KPIs count it by `name`.",
)  # fmt: skip
CustomerEventActivity = _activity_shape(
    ActivityType.CUSTOMER_EVENT, "CustomerEventActivity",
    f"A customer-level event, `name` one of {', '.join(CUSTOMER_EVENTS)}.",
)  # fmt: skip
PointsActivity = _activity_shape(
    ActivityType.POINTS, "PointsActivity",
    "Loyalty points earned: points KPIs add up `regular`, `promotional` or both.",
)  # fmt: skip

ACTIVITY_REQUEST = PolymorphicProxySerializer(
    component_name="Activity",
    serializers={
        ActivityType.TRANSACTION.value: TransactionActivity,
        ActivityType.RETURN.value: ReturnActivity,
        ActivityType.EVENT.value: EventActivity,
        ActivityType.CUSTOMER_EVENT.value: CustomerEventActivity,
        ActivityType.POINTS.value: PointsActivity,
    },
    resource_type_field_name="type",
)
_WHO = {"mobile": "9000000001"}
ACTIVITY_EXAMPLES = [
    OpenApiExample(
        "transaction", summary="A transaction (a bill with its lines)", request_only=True,
        value={"id": "txn-1", "type": "transaction", "customer": _WHO,
               "occurred_at": "2026-03-04T11:00:00+05:30", "store": "S1", "bill_number": "B1",
               "gross": 120.0, "discount": 20.0, "net": 100.0, "extended_fields": {"tax": 10},
               "line_items": [{"sku": "P-1", "category": "petrol", "quantity": 5, "gross": 60,
                               "net": 50, "extended_fields": {"metal": "gold"}}]},
    ),
    OpenApiExample(
        "return", summary="A return (goods brought back from bill B1)", request_only=True,
        value={"id": "r-1", "type": "return", "customer": _WHO,
               "occurred_at": "2026-03-06T17:30:00+05:30", "store": "S1", "bill_number": "B1",
               "gross": 60, "net": 50,
               "line_items": [{"sku": "P-1", "category": "petrol", "quantity": 2, "gross": 60,
                               "net": 50}]},
    ),
    OpenApiExample(
        "event", summary="A behavioural event", request_only=True,
        value={"id": "e-1", "type": "event", "customer": _WHO,
               "occurred_at": "2026-03-04T11:05:00+05:30", "name": "AddToCart",
               "attributes": {"price": 3000}},
    ),
    OpenApiExample(
        "customer_event", summary="A customer-level event", request_only=True,
        value={"id": "c-1", "type": "customer_event", "customer": {"email": "asha@example.com"},
               "occurred_at": "2026-03-05T09:00:00+05:30", "name": "points_redemption"},
    ),
    OpenApiExample(
        "points", summary="Points earned", request_only=True,
        value={"id": "p-1", "type": "points", "customer": {"external_id": "CUST-0001"},
               "occurred_at": "2026-03-05T09:10:00+05:30", "regular": 10, "promotional": 5},
    ),
    OpenApiExample(
        "batch", summary="A batch: a list of up to 1,000 activities of any types",
        request_only=True,
        value=[{"id": "txn-2", "type": "transaction", "customer": _WHO,
                "occurred_at": "2026-03-07T10:00:00+05:30", "bill_number": "B2", "gross": 500,
                "net": 450, "discount": 50},
               {"id": "e-2", "type": "event", "customer": _WHO,
                "occurred_at": "2026-03-07T10:02:00+05:30", "name": "Review"}],
    ),
]  # fmt: skip


class ActivitiesSchema(AutoSchema):
    """The body of POST /api/v1/activities/ is one activity or a list of them: `oneOf` the
    `Activity` shape (itself a `oneOf` on `type`) and an array of it."""

    def _get_request_for_media_type(self, serializer, direction="request"):
        schema, required = super()._get_request_for_media_type(serializer, direction)
        if schema and "$ref" in schema:
            listed = {
                "type": "array", "items": schema, "minItems": 1, "maxItems": ingest.MAX_BATCH,
                "description": f"A batch of up to {ingest.MAX_BATCH:,} activities, all or "
                "nothing: one bad item refuses the batch (400 with `items`).",
            }  # fmt: skip
            schema = {"oneOf": [schema, listed]}
        return schema, required


class IngestOut(serializers.Serializer):
    """Stored, not yet tracked: progress follows within seconds (tracking is asynchronous)."""

    accepted = serializers.IntegerField(help_text="Activities stored by this request.")
    duplicates = serializers.IntegerField(
        help_text="Items whose `id` was already stored (or repeated in this batch): counted "
        "once, not again."
    )
    ids = serializers.ListField(
        child=serializers.CharField(), help_text="The `id`s stored by this request, in order."
    )
    duplicate_ids = serializers.ListField(
        child=serializers.CharField(), help_text="The `id`s answered as duplicates."
    )


class ActivityBatchError(serializers.Serializer):
    """400 of POST /api/v1/activities/. A batch (a list) answers `items`, by position and
    field; a single object answers `{"field": ["message", ...]}` itself; a request wrong as a
    whole (an empty list, more than 1,000 items) answers `detail`."""

    items = ItemErrorsField()
    activities = serializers.ListField(
        child=serializers.CharField(), required=False,
        help_text="The same problems, one line per bad item (`item 2: store: Unknown store "
        "code 'S9'.`). Kept for older integrations: read `items`.",
    )  # fmt: skip
    detail = serializers.CharField(
        required=False, help_text="A problem of the request as a whole, in words."
    )


class ActivitiesView(APIView):
    """POST one activity or a list of up to 1,000. The `id` is the idempotency key."""

    read_roles = ALL_ROLES
    write_roles = frozenset({Role.INTEGRATION, Role.CONFIGURER})
    schema = ActivitiesSchema()

    @extend_schema(
        summary="Send activities: one object or a list of up to 1,000",
        description="Tracking is asynchronous: **202** means the activities were validated and "
        "stored; background workers fold them into each customer's progress, which follows "
        "within seconds (`GET /api/v1/customers/{id}/milestones/`). `id` is the idempotency "
        "key: an `id` already stored is answered in `duplicates` and counted once, so a batch "
        "can always be sent again. A batch is all or nothing: a bad item is a 400 naming it "
        "by position and field (`items`), and nothing of the batch is stored.",
        request=ACTIVITY_REQUEST,
        examples=ACTIVITY_EXAMPLES,
        responses={
            202: OpenApiResponse(IngestOut, description="Stored; progress follows within seconds."),
            400: OpenApiResponse(
                ActivityBatchError,
                description='Bad input; nothing was stored. A bad item of a batch: `{"items": '
                '{"2": {"store": ["Unknown store code \'S9\'."]}}}`.',
            ),
        },
    )
    def post(self, request):
        data = request.data
        many = isinstance(data, list)
        if many and len(data) > ingest.MAX_BATCH:
            return Response(
                {"detail": f"At most {ingest.MAX_BATCH} activities per request, got {len(data)}."},
                status=400,
            )
        if many and not data:
            return Response({"detail": "The list of activities is empty."}, status=400)
        serializer = ActivityIn(data=data, many=many)
        if not serializer.is_valid():
            errors = serializer.errors
            if many:
                pairs = errors.items() if isinstance(errors, dict) else enumerate(errors)
                items = {str(i): e for i, e in pairs if e}
                messages = [f"item {i}: {_flatten(e)}" for i, e in items.items()]
                return Response({"activities": messages, "items": items}, status=400)
            return Response(errors, status=400)
        items = serializer.validated_data if many else [serializer.validated_data]
        try:
            result = ingest.activities_ingest(organisation=request.user.organisation, items=items)
        except ingest.IngestRefused as exc:
            messages = [f"item {i}: {_flatten(e)}" for i, e in exc.items.items()]
            return Response({"activities": messages, "items": exc.items}, status=400)
        return Response(
            {
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "ids": result.ids,
                "duplicate_ids": result.duplicate_ids,
            },
            status=status.HTTP_202_ACCEPTED,
        )


def _flatten(errors, prefix="") -> str:
    if isinstance(errors, dict):
        return "; ".join(_flatten(v, f"{prefix}{k}.") for k, v in errors.items())
    if isinstance(errors, list):
        return "; ".join(_flatten(v, prefix) for v in errors)
    return f"{prefix.rstrip('.')}: {errors}" if prefix else str(errors)


# --- a customer's progress: the shapes evaluation.selectors.customer_milestones returns -----
class TimelineAction(serializers.Serializer):
    """What a promotion did for an event of this cycle (the awards ledger, answered through
    evaluation.signals.timeline_actions)."""

    type = serializers.CharField(help_text="award_points | issue_coupon | send_message")
    promotion = serializers.CharField(help_text="The promotion's name.")
    promotion_id = serializers.IntegerField(help_text="The promotion's id.")
    status = serializers.CharField(help_text="done | failed | skipped | capped")
    points = serializers.FloatField(allow_null=True, help_text="Points awarded (award_points).")
    points_type = serializers.CharField(
        allow_null=True, allow_blank=True, help_text="regular | promotional (award_points)."
    )
    coupon_code = serializers.CharField(
        allow_null=True, allow_blank=True, help_text="The coupon issued (issue_coupon)."
    )
    message = serializers.CharField(
        allow_null=True, allow_blank=True, help_text="The message sent (send_message)."
    )
    error = serializers.CharField(
        allow_null=True, allow_blank=True, help_text="Why the action failed or was skipped."
    )
    created_at = serializers.DateTimeField(help_text="When the ledger recorded it.")


class SubTargetProgress(serializers.Serializer):
    """A sub-target (a step on the way to the target) in one cycle."""

    name = serializers.CharField(help_text="The sub-target's name.")
    criteria = serializers.CharField(
        help_text="percentage (of the cycle's target) | absolute (a value of its own)."
    )
    value = serializers.FloatField(help_text="The achieved value at which it is reached.")
    achieved_at = serializers.DateTimeField(
        allow_null=True, help_text="When the customer reached it in this cycle; null: not yet."
    )
    actions = TimelineAction(many=True, help_text="What promotions did when it was reached.")


class CycleProgress(serializers.Serializer):
    """One cycle of a target for this customer."""

    ordinal = serializers.IntegerField(help_text="The cycle's number, from 1.")
    name = serializers.CharField(help_text="The period's name (`P2`, `Mar 2026`, ...).")
    start = serializers.DateField(help_text="First day, in the organisation's timezone.")
    end = serializers.DateField(
        allow_null=True, help_text="Last day (inclusive); null: open until achieved."
    )
    status = serializers.ChoiceField(
        choices=["completed", "ongoing", "upcoming"],
        help_text="completed (ended, or achieved in a till-achievement cycle) | ongoing | "
        "upcoming.",
    )
    target = serializers.FloatField(help_text="The value to reach in this cycle.")
    achieved = serializers.FloatField(
        help_text="What the customer achieved so far (tracking is asynchronous: an activity "
        "counts here seconds after its 202)."
    )
    achieved_at = serializers.DateTimeField(
        allow_null=True, help_text="When the target was reached; null: not (yet) reached."
    )
    is_achieved = serializers.BooleanField(help_text="The target was reached in this cycle.")
    sub_targets = SubTargetProgress(many=True, help_text="The target's sub-targets, in order.")
    actions = TimelineAction(
        many=True, help_text="What promotions did for this cycle's events (all of them)."
    )
    remaining = serializers.FloatField(
        allow_null=True, help_text="Ongoing cycle: what is still to reach (0 once reached)."
    )
    days_left = serializers.IntegerField(
        allow_null=True,
        help_text="Ongoing cycle: days from today to its last day, both included (organisation's "
        "time zone); null outside an ongoing cycle or with no end date.",
    )
    required_daily_pace = serializers.FloatField(
        allow_null=True, help_text="Ongoing cycle: `remaining / days_left`, per day."
    )
    pace_so_far = serializers.FloatField(
        allow_null=True,
        help_text="Ongoing cycle: what was achieved per day so far (first day to today).",
    )
    on_track = serializers.BooleanField(
        allow_null=True,
        help_text="Ongoing cycle: reached, or the pace so far, kept up, reaches the target by "
        "the last day.",
    )


class CustomerMilestone(serializers.Serializer):
    """One target the customer is in, with every cycle."""

    target_group = serializers.CharField(help_text="The milestone's name.")
    target_group_id = serializers.IntegerField(help_text="The milestone's id.")
    target = serializers.CharField(help_text="The target's name.")
    target_id = serializers.IntegerField(help_text="The target's id.")
    kpi = serializers.CharField(help_text="What is measured (`gross_sales`, `event_count`, ...).")
    entity = serializers.CharField(
        allow_null=True, allow_blank=True,
        help_text="What is counted (transaction | line_item | event | customer_event | points | "
        "milestone).",
    )  # fmt: skip
    tracking_type = serializers.CharField(
        help_text="single | unified (the milestone's targets reached together)."
    )
    unified_mode = serializers.CharField(
        allow_blank=True, help_text="all | any for a unified milestone; blank otherwise."
    )
    cycle_type = serializers.CharField(
        help_text="fixed_calendar | custom_periods | cyclic | till_achievement"
    )
    cycle_count = serializers.IntegerField(allow_null=True, help_text="How many cycles, if fixed.")
    start = serializers.DateField(help_text="First day of the first cycle.")
    end = serializers.DateField(allow_null=True, help_text="Last day of the last cycle.")
    cycles = CycleProgress(many=True, help_text="Every cycle, first to last.")


class CustomerMilestonesView(ReplicaReadsMixin, APIView):
    """Every target the customer is in, cycle by cycle (completed | ongoing | upcoming)."""

    read_roles = ALL_ROLES

    @extend_schema(
        summary="A customer's progress, target by target and cycle by cycle",
        description="Tracking is asynchronous: an activity answered 202 shows here within seconds.",
        responses={200: CustomerMilestone(many=True)},
    )
    def get(self, request, pk: int):
        customer = get_object_or_404(
            Customer.objects.select_related("organisation"),
            pk=pk,
            organisation_id=request.user.organisation_id,
        )
        data = customer_milestones(customer=customer)
        for entry in data:
            for cycle in entry["cycles"]:
                cycle["target"] = float(cycle["target"])
                cycle["achieved"] = float(cycle["achieved"])
                for key in ("remaining", "required_daily_pace", "pace_so_far"):
                    if cycle[key] is not None:
                        cycle[key] = float(cycle[key])
                for sub in cycle["sub_targets"]:
                    sub["value"] = float(sub["value"])
        return Response(data)


class TargetEventOut(serializers.ModelSerializer):
    period = serializers.CharField(source="period_name", help_text="The cycle's period name.")
    target_name = serializers.SerializerMethodField(
        help_text="The target's name (the milestone's, for a unified milestone's event)."
    )

    class Meta:
        model = TargetEvent
        fields = ["id", "type", "customer", "target_group", "target", "target_name", "period", "cycle_ordinal", "achieved", "defined",
                  "milestone_triggers", "milestone_value_defined", "is_target_achieved_event", "occurred_at", "created_at"]  # fmt: skip
        extra_kwargs = {
            "id": {"help_text": "The event's id."},
            "type": {"help_text": "target_achieved | sub_target_achieved | period_elapsed | enrolled"},
            "customer": {"help_text": "The customer's id."},
            "target_group": {"help_text": "The milestone's id."},
            "target": {"help_text": "The target's id; null for a unified milestone's event."},
            "cycle_ordinal": {"help_text": "The cycle's number, from 1."},
            "achieved": {"help_text": "What the customer had achieved when the event was written."},
            "defined": {"help_text": "The cycle's target value."},
            "milestone_triggers": {"help_text": "The sub-targets the event is about (names)."},
            "milestone_value_defined": {"help_text": "The sub-target's threshold (sub_target_achieved)."},
            "is_target_achieved_event": {"help_text": "The target itself was reached."},
            "occurred_at": {"help_text": "When it happened (the activity's time, or the cycle's end)."},
            "created_at": {"help_text": "When the event was written."},
        }  # fmt: skip

    def get_target_name(self, event) -> str:
        return event.target.name if event.target_id else event.target_group.name


class TargetEventFilter(filters.FilterSet):
    # IdFilter, not the default ModelChoiceFilter: another organisation's id and a missing
    # one answer alike (200, no rows), inside the caller's organisation.
    customer = IdFilter(field_name="customer_id")
    target = IdFilter(field_name="target_id")
    target_group = IdFilter(field_name="target_group_id")
    type = filters.ChoiceFilter(choices=TargetEventType.choices)

    class Meta:
        model = TargetEvent
        fields = ["customer", "target", "target_group", "type"]


class TargetEventList(generics.ListAPIView):
    """The events sent to promotions (the outbox), oldest first."""

    serializer_class = TargetEventOut
    filterset_class = TargetEventFilter
    read_roles = ALL_ROLES
    queryset = TargetEvent.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return TargetEvent.objects.none()
        return (
            TargetEvent.objects.filter(organisation_id=self.request.user.organisation_id)
            .select_related("target", "target_group")
            .order_by("id")
        )

    @extend_schema(parameters=[OpenApiParameter("type", str, enum=TargetEventType.values)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


def _paging(request, *, default_limit: int, max_limit: int) -> tuple[int, int]:
    """`?limit=` (1 to max_limit) and `?offset=` (0 to 1,000,000,000): anything else is a 400
    naming the parameter (the leaderboards' {"detail": ...} shape)."""
    params = request.query_params
    try:
        limit = paging_value(
            params.get("limit"), "limit", default=default_limit, minimum=1, maximum=max_limit
        )
        offset = paging_value(
            params.get("offset"), "offset", default=0, minimum=0, maximum=MAX_OFFSET
        )
    except PagingError as exc:
        raise leaderboards.LeaderboardError(str(exc)) from None
    return limit, offset


class LeaderboardView(ReplicaReadsMixin, APIView):
    """Top N of a target in one cycle (`?period=` name, 'P2', or the current cycle; `?limit=`
    up to 100, `?offset=`). Ties share a rank (1, 1, 3), ordered by who got there first.
    404 unless the milestone has the leaderboard enabled."""

    read_roles = ALL_ROLES

    @extend_schema(
        parameters=[OpenApiParameter("period", str), OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
        responses={200: inline_serializer("LeaderboardRow", {
            "rank": serializers.IntegerField(help_text="1 is first; ties share a rank (1, 1, 3)."),
            "customer": serializers.IntegerField(help_text="The customer's id."),
            "customer_name": serializers.CharField(help_text="The customer's name."),
            "achieved": serializers.FloatField(help_text="What the customer achieved in the cycle."),
            "period": serializers.CharField(help_text="The cycle's period name.")}, many=True)},
    )  # fmt: skip
    def get(self, request, pk: int):
        target = get_object_or_404(
            Target.objects.select_related("target_group").prefetch_related("target_group__periods"),
            pk=pk, organisation_id=request.user.organisation_id, target_group__leaderboard_enabled=True,
        )  # fmt: skip
        try:
            limit, offset = _paging(request, default_limit=10, max_limit=leaderboards.MAX_TOP)
            ordinal, name = leaderboards.resolve_cycle(target, request.query_params.get("period"))
            rows = leaderboards.top(target=target, ordinal=ordinal, limit=limit, offset=offset)
        except leaderboards.LeaderboardError as exc:
            return Response({"detail": str(exc)}, status=400)
        for row in rows:
            row["achieved"] = float(row["achieved"])
            row["period"] = name
        return Response(rows)


class CustomerRanksView(ReplicaReadsMixin, APIView):
    """The customer's live rank in every target with a leaderboard (up to 25 at a time)."""

    read_roles = ALL_ROLES

    @extend_schema(
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
        responses={200: inline_serializer("CustomerRank", {
            "target_group": serializers.CharField(help_text="The milestone's name."),
            "target": serializers.CharField(help_text="The target's name."),
            "target_id": serializers.IntegerField(help_text="The target's id."),
            "period": serializers.CharField(help_text="The current cycle's period name."),
            "rank": serializers.IntegerField(allow_null=True, help_text="The live rank; null: not ranked yet."),
            "achieved": serializers.FloatField(help_text="What the customer achieved in the cycle.")}, many=True)},
    )  # fmt: skip
    def get(self, request, pk: int):
        customer = get_object_or_404(Customer, pk=pk, organisation_id=request.user.organisation_id)
        try:
            limit, offset = _paging(
                request, default_limit=leaderboards.MAX_RANKS, max_limit=leaderboards.MAX_RANKS
            )
            rows = leaderboards.customer_ranks(customer=customer, limit=limit, offset=offset)
        except leaderboards.LeaderboardError as exc:
            return Response({"detail": str(exc)}, status=400)
        for row in rows:
            row["achieved"] = float(row["achieved"])
        return Response(rows)


class RunOut(serializers.Serializer):
    id = serializers.IntegerField(help_text="The run's id.")
    kind = serializers.CharField(help_text="reprocess | evaluation")
    target_group = serializers.IntegerField(
        source="target_group_id", help_text="The milestone's id."
    )
    status = serializers.CharField(help_text="pending | running | done | failed")
    total = serializers.IntegerField(help_text="Rows to process.")
    processed = serializers.IntegerField(help_text="Rows processed so far.")
    finished_at = serializers.DateTimeField(
        allow_null=True, help_text="When the run ended; null while it runs."
    )


def _run_body(run, kind) -> dict:
    body = RunOut({"id": run.id, "kind": kind, "target_group_id": run.target_group_id, "status": run.status, "total": run.total,
                   "processed": run.processed, "finished_at": run.finished_at}).data  # fmt: skip
    if kind == "evaluation":
        body["events_written"] = run.events_written
        body["period"] = run.period.name
    else:
        body["error"] = run.error
    return body


class ReprocessView(APIView):
    """POST: re-process stored activities for this milestone (a Celery task); GET the runs."""

    read_roles = ALL_ROLES
    write_roles = frozenset({Role.CONFIGURER})

    def _group(self, request, pk):
        return get_object_or_404(
            TargetGroup.objects.select_related("organisation"),
            pk=pk,
            organisation_id=request.user.organisation_id,
        )

    @extend_schema(request=None, responses={202: RunOut})
    def post(self, request, pk: int):
        group = self._group(request, pk)
        if not group.is_active:
            return Response(
                {
                    "detail": "An inactive milestone tracks nothing: activate it before re-processing."
                },
                status=400,
            )
        run = reprocess_start(target_group=group)
        return Response(_run_body(run, "reprocess"), status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: RunOut(many=True)})
    def get(self, request, pk: int):
        group = self._group(request, pk)
        runs = ReprocessRun.objects.filter(target_group=group).order_by("-id")[:20]
        return Response([_run_body(r, "reprocess") for r in runs])


class RunStatusView(APIView):
    """Progress of a long run (rows done / total), for the progress bars."""

    read_roles = ALL_ROLES
    kind = "reprocess"

    @extend_schema(responses={200: RunOut})
    def get(self, request, pk: int):
        model = ReprocessRun if self.kind == "reprocess" else EvaluationRun
        run = get_object_or_404(model.objects.select_related(*(["period"] if self.kind == "evaluation" else [])), pk=pk,
                                organisation_id=request.user.organisation_id)  # fmt: skip
        return Response(_run_body(run, self.kind))


class EvaluationRunList(APIView):
    """Cycle-end evaluation runs of the organisation, newest first (`?target_group=`)."""

    read_roles = ALL_ROLES

    @extend_schema(
        parameters=[OpenApiParameter("target_group", int)], responses={200: RunOut(many=True)}
    )
    def get(self, request):
        runs = (
            EvaluationRun.objects.filter(organisation_id=request.user.organisation_id)
            .select_related("period")
            .order_by("-id")
        )
        group = id_param(request, "target_group")  # like IdFilter: any id, no existence check
        if group is not None:
            runs = runs.filter(target_group_id=group)
        return Response([_run_body(r, "evaluation") for r in runs[:200]])


class NearMissSerializer(serializers.Serializer):
    within_percent = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=Decimal("0.01"), max_value=Decimal(50),
        coerce_to_string=False,
        help_text="How close counts as near: within this percent of the target (above 0, at most 50).",
    )  # fmt: skip
    days_left = serializers.IntegerField(
        min_value=1, max_value=31,
        help_text="Only when at most this many days of the cycle are left, today included.",
    )  # fmt: skip


class NearMissView(APIView):
    """A target's near-miss rule (optional): a customer within `within_percent` of the target
    with at most `days_left` days left gets one `near_miss` target event per cycle (checked
    hourly), heard by "Near miss" promotions and `target.near_miss` webhooks."""

    read_roles = ALL_ROLES
    write_roles = frozenset({Role.CONFIGURER})

    def _target(self, request, pk):
        return get_object_or_404(
            Target.objects.select_related("target_group"),
            pk=pk,
            target_group__organisation_id=request.user.organisation_id,
        )

    @extend_schema(responses={200: NearMissSerializer})
    def get(self, request, pk: int):
        rule = get_object_or_404(NearMissRule, target=self._target(request, pk))
        return Response(NearMissSerializer(rule).data)

    @extend_schema(request=NearMissSerializer, responses={200: NearMissSerializer})
    def put(self, request, pk: int):
        target = self._target(request, pk)
        serializer = NearMissSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rule = near_miss_rule_set(target=target, **serializer.validated_data)
        return Response(NearMissSerializer(rule).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk: int):
        NearMissRule.objects.filter(target=self._target(request, pk)).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
