"""Activities in; progress and target events out."""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.shortcuts import get_object_or_404
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
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
from enrolment.models import Customer
from milestones.models import Role, Target, TargetGroup
from milestones.services.target_groups import CUSTOMER_EVENTS

from . import ingest, leaderboards
from .kpis import AMOUNT_LIMIT, to_decimal
from .models import ActivityType, EvaluationRun, ReprocessRun, TargetEvent, TargetEventType
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
    mobile = serializers.CharField(max_length=40, required=False, allow_null=True, allow_blank=True)
    email = serializers.CharField(max_length=254, required=False, allow_null=True, allow_blank=True)
    external_id = serializers.CharField(
        max_length=100, required=False, allow_null=True, allow_blank=True
    )

    def validate(self, attrs):
        if not any(attrs.get(k) for k in ("mobile", "email", "external_id")):
            raise serializers.ValidationError(
                "Identify the customer by mobile, email or external_id."
            )
        return attrs


class LineItemIn(serializers.Serializer):
    sku = serializers.CharField(max_length=100, required=False, allow_blank=True)
    category = serializers.CharField(max_length=100, required=False, allow_blank=True)
    quantity = serializers.DecimalField(**NON_NEGATIVE, required=False, default=1)
    gross = serializers.DecimalField(**NON_NEGATIVE, required=False, allow_null=True)
    discount = serializers.DecimalField(**NON_NEGATIVE, required=False, allow_null=True)
    net = serializers.DecimalField(**NON_NEGATIVE, required=False, allow_null=True)
    extended_fields = serializers.DictField(
        required=False, validators=[reject_nul, bounded_numbers]
    )


class ActivityIn(serializers.Serializer):
    id = serializers.CharField(max_length=200)
    type = serializers.ChoiceField(choices=ActivityType.choices)
    customer = CustomerRef()
    occurred_at = serializers.DateTimeField()
    store = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True)
    bill_number = serializers.CharField(
        max_length=100, required=False, allow_blank=True, allow_null=True
    )
    gross = serializers.DecimalField(**NON_NEGATIVE, required=False, allow_null=True)
    discount = serializers.DecimalField(**NON_NEGATIVE, required=False, allow_null=True)
    net = serializers.DecimalField(**NON_NEGATIVE, required=False, allow_null=True)
    extended_fields = serializers.DictField(
        required=False, validators=[reject_nul, bounded_numbers]
    )
    line_items = LineItemIn(many=True, required=False, max_length=1000)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    attributes = serializers.DictField(required=False, validators=[reject_nul, bounded_numbers])
    regular = serializers.DecimalField(**AMOUNT, required=False, allow_null=True)
    promotional = serializers.DecimalField(**AMOUNT, required=False, allow_null=True)

    def validate_occurred_at(self, value):
        if value < EARLIEST:
            raise serializers.ValidationError("occurred_at is before 2000-01-01.")
        if value > timezone.now() + timedelta(days=1):
            raise serializers.ValidationError("occurred_at is in the future.")
        return value

    def validate(self, attrs):
        kind = attrs["type"]
        if kind in ("event", "customer_event") and not attrs.get("name"):
            raise serializers.ValidationError({"name": [f"A {kind} needs its name."]})
        if kind == "customer_event" and attrs["name"] not in CUSTOMER_EVENTS:
            raise serializers.ValidationError(
                {
                    "name": [
                        f"Unknown customer-level event; use one of {', '.join(CUSTOMER_EVENTS)}."
                    ]
                }
            )
        if kind == "points" and attrs.get("regular") is None and attrs.get("promotional") is None:
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


class IngestOut(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    ids = serializers.ListField(child=serializers.CharField())
    duplicate_ids = serializers.ListField(child=serializers.CharField())


class ActivitiesView(APIView):
    """POST one activity or a list of up to 1,000. The `id` is the idempotency key."""

    read_roles = ALL_ROLES
    write_roles = frozenset({Role.INTEGRATION, Role.CONFIGURER})

    @extend_schema(request=ActivityIn(many=True), responses={202: IngestOut})
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


class CustomerMilestonesView(APIView):
    """Every target the customer is in, cycle by cycle (completed | ongoing | upcoming)."""

    read_roles = ALL_ROLES

    @extend_schema(responses={200: inline_serializer("CustomerMilestone", {"target_group": serializers.CharField(), "target": serializers.CharField(),
                   "target_id": serializers.IntegerField(), "kpi": serializers.CharField(), "cycle_type": serializers.CharField(),
                   "start": serializers.DateField(), "end": serializers.DateField(), "cycles": serializers.ListField(child=serializers.DictField())}, many=True)})  # fmt: skip
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
                for sub in cycle["sub_targets"]:
                    sub["value"] = float(sub["value"])
        return Response(data)


class TargetEventOut(serializers.ModelSerializer):
    period = serializers.CharField(source="period_name")
    target_name = serializers.SerializerMethodField()

    class Meta:
        model = TargetEvent
        fields = ["id", "type", "customer", "target_group", "target", "target_name", "period", "cycle_ordinal", "achieved", "defined",
                  "milestone_triggers", "milestone_value_defined", "is_target_achieved_event", "occurred_at", "created_at"]  # fmt: skip

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


class LeaderboardView(APIView):
    """Top N of a target in one cycle (`?period=` name, 'P2', or the current cycle; `?limit=`
    up to 100, `?offset=`). Ties share a rank (1, 1, 3), ordered by who got there first.
    404 unless the milestone has the leaderboard enabled."""

    read_roles = ALL_ROLES

    @extend_schema(
        parameters=[OpenApiParameter("period", str), OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
        responses={200: inline_serializer("LeaderboardRow", {"rank": serializers.IntegerField(), "customer": serializers.IntegerField(),
                   "customer_name": serializers.CharField(), "achieved": serializers.FloatField()}, many=True)},
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


class CustomerRanksView(APIView):
    """The customer's live rank in every target with a leaderboard (up to 25 at a time)."""

    read_roles = ALL_ROLES

    @extend_schema(
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
        responses={200: inline_serializer("CustomerRank", {"target_group": serializers.CharField(), "target": serializers.CharField(),
                   "period": serializers.CharField(), "rank": serializers.IntegerField(allow_null=True), "achieved": serializers.FloatField()}, many=True)},
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
    id = serializers.IntegerField()
    kind = serializers.CharField()
    target_group = serializers.IntegerField(source="target_group_id")
    status = serializers.CharField()
    total = serializers.IntegerField()
    processed = serializers.IntegerField()
    finished_at = serializers.DateTimeField(allow_null=True)


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
