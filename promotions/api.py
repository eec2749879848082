"""Promotions, awards and coupon series over the API (contract: "Promotions and awards")."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import IdFilter, OrgScopedMixin
from common.permissions import ALL_ROLES, CONFIG_ROLES
from milestones.models import TargetGroup

from . import services
from .caps import spend_for, with_spend
from .doctor import ConditionDoctor
from .forecast import milestone_forecast
from .models import (
    ActionType,
    Award,
    AwardPointsType,
    AwardStatus,
    Channel,
    CouponSeries,
    PointsBasis,
    Promotion,
    PromotionActivity,
    Rounding,
    named_milestones,
)
from .selectors import awards_for

AMOUNT = {"max_digits": 18, "decimal_places": 4, "coerce_to_string": False}


class AwardPointsTypeField(serializers.CharField):
    """`regular` or `promotional`. A text, not an enum, in the schema: the milestones'
    targets have a `points_type` enum with `both`, and two enums of one name collide."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "regular | promotional")
        super().__init__(max_length=20, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value not in AwardPointsType.values:
            raise serializers.ValidationError(
                f"{value!r} is not a points type; use {' or '.join(AwardPointsType.values)}."
            )
        return value


class ActionSerializer(serializers.Serializer):
    """What a promotion does when its condition holds; the fields used depend on `type`."""

    type = serializers.ChoiceField(
        choices=ActionType.choices,
        help_text="award_points (points, basis, percent, rounding, expiry_days, points_type) | "
        "issue_coupon (series) | send_message (channel, subject, template).",
    )
    points = serializers.DecimalField(
        **AMOUNT, required=False, allow_null=True, min_value=0,
        help_text="award_points with basis `fixed`: the points to award.",
    )  # fmt: skip
    basis = serializers.ChoiceField(
        choices=PointsBasis.choices, required=False,
        help_text="award_points: fixed points, a percent of the achieved value, or a percent of "
        "what was achieved above the target (default fixed, unless `percent` is given).",
    )  # fmt: skip
    percent = serializers.DecimalField(
        max_digits=9, decimal_places=4, required=False, allow_null=True, min_value=0,
        help_text="award_points with a percent basis: the percent (5 is 5%).",
    )  # fmt: skip
    rounding = serializers.ChoiceField(
        choices=Rounding.choices, required=False,
        help_text="award_points: how computed points are rounded (actual keeps decimals).",
    )  # fmt: skip
    expiry_days = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=36500,
        help_text="award_points: days the points stay valid; null: no expiry.",
    )  # fmt: skip
    points_type = AwardPointsTypeField(
        required=False, help_text="award_points: regular | promotional points."
    )
    series = serializers.CharField(
        max_length=64, required=False,
        help_text="issue_coupon: the coupon series' `code` (`/api/v1/coupon-series/`).",
    )  # fmt: skip
    channel = serializers.ChoiceField(
        choices=Channel.choices, required=False, help_text="send_message: sms | email."
    )
    subject = serializers.CharField(
        max_length=200, required=False, allow_blank=True,
        help_text="send_message by email: the subject.",
    )  # fmt: skip
    template = serializers.CharField(
        max_length=2000, required=False, trim_whitespace=False,
        help_text="send_message: the text, with placeholders such as `{customer.name}`.",
    )  # fmt: skip

    def validate(self, attrs):
        if attrs["type"] == ActionType.AWARD_POINTS:
            if "basis" not in attrs:
                attrs["basis"] = (
                    PointsBasis.FIXED if attrs.get("percent") is None else attrs.get("basis")
                )
                if attrs["basis"] is None:
                    raise serializers.ValidationError({"basis": ["Choose the points basis."]})
        return attrs


def action_out(action) -> dict:
    out = {"type": action.type}
    if action.type == ActionType.AWARD_POINTS:
        out.update(
            basis=action.basis,
            points=action.points,
            percent=action.percent,
            rounding=action.rounding,
            expiry_days=action.expiry_days,
            points_type=action.points_type,
        )
    elif action.type == ActionType.ISSUE_COUPON:
        out["series"] = action.series.code if action.series_id else None
    else:
        out.update(channel=action.channel, subject=action.subject, template=action.template)
    return out


class CapsSerializer(serializers.Serializer):
    """Budget caps; null or absent: no cap. An award a cap refuses is `capped`, with a reason."""

    points_total = serializers.DecimalField(
        **AMOUNT, source="cap_points_total", required=False, allow_null=True, min_value=0,
        help_text="Most points the promotion pays in all.",
    )  # fmt: skip
    coupons_total = serializers.IntegerField(
        source="cap_coupons_total", required=False, allow_null=True, min_value=0,
        max_value=2**31 - 1, help_text="Most coupons the promotion issues in all.",
    )  # fmt: skip
    points_per_customer_per_cycle = serializers.DecimalField(
        **AMOUNT, source="cap_points_per_customer_per_cycle", required=False, allow_null=True,
        min_value=0, help_text="Most points one customer gets from it in one cycle of a milestone.",
    )  # fmt: skip
    spent = serializers.SerializerMethodField(
        help_text='What it has given so far: `{"points": x, "coupons": n}` (done awards).'
    )

    @extend_schema_field(
        inline_serializer(
            "CapSpend",
            {
                "points": serializers.DecimalField(**AMOUNT, help_text="Points paid."),
                "coupons": serializers.IntegerField(help_text="Coupons issued."),
            },
        )
    )
    def get_spent(self, promotion) -> dict:
        spend = spend_for(promotion)
        return {"points": spend.points, "coupons": spend.coupons}


class PromotionSerializer(serializers.ModelSerializer):
    activity = serializers.ChoiceField(
        choices=PromotionActivity.choices,
        default=PromotionActivity.TARGET_PERIOD_ELAPSED,
        help_text="The target event the promotion answers: a cycle ended "
        "(target_period_elapsed, the default; also a target reached when the organisation's "
        "award switch is on), a sub-target reached, or an enrolment.",
    )
    condition = serializers.CharField(
        max_length=2000, trim_whitespace=False,
        help_text="A rule on `currentEvent`, e.g. `currentEvent.targetAchieved(\"Spend 1000\") "
        ">= 1000`. One that does not parse is a 400 naming the position of the error.",
    )  # fmt: skip
    actions = ActionSerializer(
        many=True, required=False, help_text="What to do, in order, when the condition holds."
    )
    milestones = serializers.SerializerMethodField(
        help_text='The milestones the condition names: `[{"id", "name", "start", "end"}]`.'
    )
    warnings = serializers.SerializerMethodField(
        help_text="What the condition doctor found: conditions that would never pay or pay "
        "twice with the organisation's award switch and milestones. Never blocks a save."
    )
    caps = CapsSerializer(
        source="*", required=False,
        help_text="Budget caps: total points, total coupons, points per customer per cycle.",
    )  # fmt: skip

    class Meta:
        model = Promotion
        fields = ["id", "name", "description", "activity", "start", "end", "is_active", "condition",
                  "actions", "caps", "milestones", "warnings", "created_at", "updated_at"]  # fmt: skip
        read_only_fields = ["id", "milestones", "warnings", "created_at", "updated_at"]
        # Uniqueness is checked by the service (full_clean), with the organisation.
        validators = []
        extra_kwargs = {
            "id": {"help_text": "The promotion's id."},
            "name": {"help_text": "The promotion's name, unique in the organisation."},
            "description": {"help_text": "What the promotion is for."},
            "start": {"help_text": "First day it runs; it must cover the milestones it names."},
            "end": {"help_text": "Last day it runs."},
            "is_active": {"help_text": "Only active promotions award anything."},
            "created_at": {"help_text": "When it was created."},
            "updated_at": {"help_text": "When it was last changed."},
        }  # fmt: skip

    def get_milestones(self, promotion) -> list[dict]:
        try:
            names = promotion.rule().target_names
        except Exception:  # noqa: BLE001 - an old condition that no longer compiles
            return []
        groups, _unknown = named_milestones(promotion.organisation_id, names)
        return [{"id": g.id, "name": g.name, "start": g.start, "end": g.end} for g in groups]

    @extend_schema_field(
        inline_serializer(
            "ConditionWarning",
            {
                "code": serializers.CharField(help_text="A stable name for the finding."),
                "message": serializers.CharField(help_text="The finding, in words."),
            },
            many=True,
        )  # fmt: skip
    )
    def get_warnings(self, promotion) -> list[dict]:
        # one doctor per organisation for the whole answer (a list reads the milestones once)
        doctors = self.context.setdefault("condition_doctors", {})
        doctor = doctors.get(promotion.organisation_id)
        if doctor is None:
            doctor = doctors[promotion.organisation_id] = ConditionDoctor(promotion.organisation)
        found = doctor.warnings(promotion.condition, promotion.activity)
        return [w.as_dict() for w in found]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["actions"] = [action_out(a) for a in instance.actions.all()]
        return data


class PromotionFilter(filters.FilterSet):
    class Meta:
        model = Promotion
        fields = ["activity", "is_active"]


class PromotionViewSet(OrgScopedMixin, viewsets.ModelViewSet):
    """Loyalty promotions on target activities. A condition that does not parse is a 400
    naming the position of the error; so is a promotion shorter than a milestone it names."""

    queryset = with_spend(
        Promotion.objects.select_related("organisation")
        .prefetch_related("actions__series")
        .order_by("id")
    )
    serializer_class = PromotionSerializer
    filterset_class = PromotionFilter
    read_roles = ALL_ROLES
    write_roles = CONFIG_ROLES
    http_method_names = ["get", "post", "patch", "head", "options"]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        promotion = services.promotion_create(
            organisation=request.user.organisation,
            data=serializer.validated_data,
            user=request.user,
        )
        return Response(
            self.get_serializer(self.get_queryset().get(pk=promotion.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    def partial_update(self, request, *args, **kwargs):
        promotion = self.get_object()
        serializer = self.get_serializer(promotion, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.promotion_update(promotion=promotion, data=serializer.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=promotion.pk)).data)


class AwardSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The award's id.")
    type = serializers.CharField(help_text="award_points | issue_coupon | send_message")
    status = serializers.CharField(
        help_text="done | failed | skipped | capped (a budget cap refused it; see `reason`)"
    )
    customer = serializers.IntegerField(source="customer_id", help_text="The customer's id.")
    promotion = serializers.IntegerField(source="promotion_id", help_text="The promotion's id.")
    promotion_name = serializers.CharField(
        source="promotion.name", help_text="The promotion's name."
    )
    action_index = serializers.IntegerField(
        help_text="Which of the promotion's actions this is (from 0)."
    )
    target_group = serializers.IntegerField(
        source="target_group_id", help_text="The milestone's id."
    )
    target = serializers.IntegerField(
        source="target_id", allow_null=True,
        help_text="The target's id; null for a unified milestone's event.",
    )  # fmt: skip
    target_name = serializers.SerializerMethodField(
        help_text="The target's name (the milestone's, for a unified milestone)."
    )
    period = serializers.CharField(help_text="The cycle's period name.")
    event = serializers.IntegerField(
        source="event_id", help_text="The target event paid for (`/api/v1/target-events/`)."
    )
    achievement = serializers.CharField(
        help_text="What was paid for: type, target, customer, cycle[, sub-target]. A promotion "
        "pays an achievement at most once per action."
    )
    points = serializers.DecimalField(
        **AMOUNT, allow_null=True, help_text="Points awarded (award_points)."
    )
    points_type = serializers.CharField(help_text="regular | promotional (award_points).")
    expires_on = serializers.DateField(
        allow_null=True, help_text="When the points expire; null: never."
    )
    till = serializers.SerializerMethodField(
        help_text="The milestone's till (store code) the award is booked at."
    )
    coupon_code = serializers.CharField(help_text="The coupon issued (issue_coupon).")
    channel = serializers.CharField(help_text="sms | email (send_message).")
    message = serializers.CharField(help_text="The message sent (send_message).")
    error = serializers.CharField(help_text="Why the action failed, was skipped or capped.")
    reason = serializers.CharField(
        source="error", help_text="Why nothing was given (failed, skipped, capped); empty if done."
    )
    awarded_at = serializers.DateTimeField(help_text="When the action ran.")
    created_at = serializers.DateTimeField(help_text="When the ledger recorded it.")

    def get_target_name(self, award) -> str:
        return award.target.name if award.target_id else award.target_group.name

    def get_till(self, award) -> str | None:
        return award.till.code if award.till_id else None


class AwardFilter(filters.FilterSet):
    type = filters.ChoiceFilter(choices=ActionType.choices)
    status = filters.ChoiceFilter(choices=AwardStatus.choices)
    customer = IdFilter(field_name="customer_id")
    promotion = IdFilter(field_name="promotion_id")
    target = IdFilter(field_name="target_id")
    target_group = IdFilter(field_name="target_group_id")
    event = IdFilter(field_name="event_id")


class AwardViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The awards ledger: one row per action run for an event (done, failed or skipped)."""

    queryset = Award.objects.none()  # for the schema; requests use get_queryset
    serializer_class = AwardSerializer
    filterset_class = AwardFilter
    read_roles = ALL_ROLES

    def get_queryset(self):
        return awards_for(organisation_id=self.request.user.organisation_id).order_by("id")


class CouponSeriesSerializer(serializers.ModelSerializer):
    codes = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, write_only=True,
        help_text="Coupon codes to add to the series (your own codes).",
    )  # fmt: skip
    generate = serializers.IntegerField(
        required=False, min_value=0, max_value=services.MAX_CODES_PER_CALL, write_only=True,
        help_text=f"How many random codes to generate (up to {services.MAX_CODES_PER_CALL:,}).",
    )  # fmt: skip
    total = serializers.SerializerMethodField(help_text="Codes in the series.")
    available = serializers.SerializerMethodField(help_text="Codes not issued yet.")

    class Meta:
        model = CouponSeries
        fields = ["id", "code", "name", "description", "valid_days", "codes", "generate", "total",
                  "available", "created_at"]  # fmt: skip
        read_only_fields = ["id", "created_at"]
        validators = []
        extra_kwargs = {
            "id": {"help_text": "The series' id."},
            "name": {"help_text": "The series' name."},
            "description": {"help_text": "What the series is for."},
            "created_at": {"help_text": "When it was created."},
        }  # fmt: skip

    def get_total(self, series) -> int:
        return series.coupons.count()

    def get_available(self, series) -> int:
        return series.coupons.filter(issued_at__isnull=True).count()


class CouponSeriesViewSet(
    OrgScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Coupon series (`code` is what an issue_coupon action names) with their codes:
    POST `codes` (a list) and/or `generate` (how many random codes)."""

    queryset = CouponSeries.objects.order_by("code")
    serializer_class = CouponSeriesSerializer
    read_roles = ALL_ROLES
    write_roles = CONFIG_ROLES

    @extend_schema(responses={201: CouponSeriesSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        series = services.coupon_series_create(
            organisation=request.user.organisation,
            code=data["code"],
            name=data.get("name", ""),
            description=data.get("description", ""),
            valid_days=data.get("valid_days"),
            codes=data.get("codes"),
            generate=data.get("generate") or 0,
        )
        return Response(self.get_serializer(series).data, status=status.HTTP_201_CREATED)


class ForecastView(APIView):
    """The forecast of a live milestone's current cycle: who will reach each target and
    sub-target by the cycle's end, and the liability, paid apart from projected (see
    docs/simulation.md, "Forecast")."""

    read_roles = ALL_ROLES

    @extend_schema(
        responses={
            200: inline_serializer(
                "MilestoneForecast",
                {
                    "cycle": serializers.DictField(
                        allow_null=True,
                        help_text="The running cycle: ordinal, name, start, end, elapsed_share; "
                        "null when none runs (see `reason`).",
                    ),
                    "reason": serializers.CharField(help_text="Why there is no forecast, if none."),
                    "targets": serializers.ListField(
                        child=serializers.DictField(),
                        help_text="Per target: customers, achieved_so_far, on_pace, "
                        "expected_achievers, sub_targets [{name, reached_so_far, on_pace}], "
                        "liability {paid {points, coupons}, projected_total {points, coupons}}.",
                    ),
                },
            )
        }
    )
    def get(self, request, pk: int):
        group = get_object_or_404(
            TargetGroup.objects.select_related("organisation"),
            pk=pk,
            organisation_id=request.user.organisation_id,
        )
        return Response(milestone_forecast(group))
