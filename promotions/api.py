"""Promotions, awards and coupon series over the API (contract: "Promotions and awards")."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from common.api import IdFilter, OrgScopedMixin
from common.permissions import ALL_ROLES, CONFIG_ROLES

from . import services
from .doctor import condition_warnings
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
    type = serializers.ChoiceField(choices=ActionType.choices)
    points = serializers.DecimalField(**AMOUNT, required=False, allow_null=True, min_value=0)
    basis = serializers.ChoiceField(choices=PointsBasis.choices, required=False)
    percent = serializers.DecimalField(
        max_digits=9, decimal_places=4, required=False, allow_null=True, min_value=0
    )
    rounding = serializers.ChoiceField(choices=Rounding.choices, required=False)
    expiry_days = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=36500
    )
    points_type = AwardPointsTypeField(required=False)
    series = serializers.CharField(max_length=64, required=False)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    subject = serializers.CharField(max_length=200, required=False, allow_blank=True)
    template = serializers.CharField(max_length=2000, required=False, trim_whitespace=False)

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


class PromotionSerializer(serializers.ModelSerializer):
    activity = serializers.ChoiceField(
        choices=PromotionActivity.choices,
        default=PromotionActivity.TARGET_PERIOD_ELAPSED,
    )
    condition = serializers.CharField(max_length=2000, trim_whitespace=False)
    actions = ActionSerializer(many=True, required=False)
    milestones = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField(
        help_text="What the condition doctor found: conditions that would never pay or pay "
        "twice with the organisation's award switch and milestones. Never blocks a save."
    )

    class Meta:
        model = Promotion
        fields = ["id", "name", "description", "activity", "start", "end", "is_active", "condition",
                  "actions", "milestones", "warnings", "created_at", "updated_at"]  # fmt: skip
        read_only_fields = ["id", "milestones", "warnings", "created_at", "updated_at"]
        # Uniqueness is checked by the service (full_clean), with the organisation.
        validators = []

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
            {"code": serializers.CharField(), "message": serializers.CharField()},
            many=True,
        )  # fmt: skip
    )
    def get_warnings(self, promotion) -> list[dict]:
        found = condition_warnings(
            organisation=promotion.organisation,
            condition=promotion.condition,
            activity=promotion.activity,
        )
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

    queryset = (
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
    id = serializers.IntegerField()
    type = serializers.CharField()
    status = serializers.CharField()
    customer = serializers.IntegerField(source="customer_id")
    promotion = serializers.IntegerField(source="promotion_id")
    promotion_name = serializers.CharField(source="promotion.name")
    action_index = serializers.IntegerField()
    target_group = serializers.IntegerField(source="target_group_id")
    target = serializers.IntegerField(source="target_id", allow_null=True)
    target_name = serializers.SerializerMethodField()
    period = serializers.CharField()
    event = serializers.IntegerField(source="event_id")
    achievement = serializers.CharField(
        help_text="What was paid for: type, target, customer, cycle[, sub-target]. A promotion "
        "pays an achievement at most once per action."
    )
    points = serializers.DecimalField(**AMOUNT, allow_null=True)
    points_type = serializers.CharField()
    expires_on = serializers.DateField(allow_null=True)
    till = serializers.SerializerMethodField()
    coupon_code = serializers.CharField()
    channel = serializers.CharField()
    message = serializers.CharField()
    error = serializers.CharField()
    awarded_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()

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
        child=serializers.CharField(max_length=64), required=False, write_only=True
    )
    generate = serializers.IntegerField(
        required=False, min_value=0, max_value=services.MAX_CODES_PER_CALL, write_only=True
    )
    total = serializers.SerializerMethodField()
    available = serializers.SerializerMethodField()

    class Meta:
        model = CouponSeries
        fields = ["id", "code", "name", "description", "valid_days", "codes", "generate", "total",
                  "available", "created_at"]  # fmt: skip
        read_only_fields = ["id", "created_at"]
        validators = []

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
