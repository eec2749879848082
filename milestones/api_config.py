"""Configuration API: target groups (milestones) with their cycles and targets, templates."""

from django.db.models import Prefetch, Q
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from common.api import OrgScopedMixin

from .models import (
    AuditEntry,
    CycleType,
    EnrolmentMode,
    Entity,
    Frequency,
    Kpi,
    PointsType,
    SubTarget,
    SubTargetCriteria,
    Target,
    TargetGroup,
    TargetValueMode,
    Template,
    UnifiedMode,
)  # fmt: skip
from .services import target_groups as services

AMOUNT = {"max_digits": 22, "decimal_places": 4}


# --- input ------------------------------------------------------------------------------------
class PeriodIn(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    start = serializers.DateField()
    end = serializers.DateField()


class CycleIn(serializers.Serializer):
    type = serializers.ChoiceField(choices=CycleType.choices, required=False)
    frequency = serializers.ChoiceField(
        choices=Frequency.choices, required=False, allow_null=True, allow_blank=True
    )
    days = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=3660)
    start = serializers.DateField(required=False, allow_null=True)
    count = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=100)
    periods = PeriodIn(many=True, required=False)


class EnrolmentIn(serializers.Serializer):
    mode = serializers.ChoiceField(choices=EnrolmentMode.choices, required=False)
    audience_group = serializers.IntegerField(required=False, allow_null=True)


class ScopeIn(serializers.Serializer):
    stores = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=1000
    )
    zones = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=1000
    )
    concepts = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=1000
    )


class SubTargetIn(serializers.Serializer):
    id = serializers.IntegerField(required=False)
    name = serializers.CharField(max_length=200)
    criteria = serializers.ChoiceField(choices=SubTargetCriteria.choices, required=False)
    value = serializers.DecimalField(**AMOUNT)


class TargetIn(serializers.Serializer):
    id = serializers.IntegerField(required=False)
    name = serializers.CharField(max_length=200, required=False)
    kpi = serializers.ChoiceField(choices=Kpi.choices, required=False)
    entity = serializers.ChoiceField(choices=Entity.choices, required=False, allow_null=True)
    event_name = serializers.CharField(
        max_length=100, required=False, allow_null=True, allow_blank=True
    )
    attribute = serializers.CharField(
        max_length=100, required=False, allow_null=True, allow_blank=True
    )
    extended_field = serializers.CharField(
        max_length=100, required=False, allow_null=True, allow_blank=True
    )
    extended_field_value = serializers.CharField(
        max_length=200, required=False, allow_null=True, allow_blank=True
    )
    points_type = serializers.ChoiceField(
        choices=PointsType.choices, required=False, allow_null=True, allow_blank=True
    )
    source_target_group = serializers.IntegerField(required=False, allow_null=True)
    value = serializers.DecimalField(**AMOUNT, required=False)
    period_values = serializers.DictField(child=serializers.DecimalField(**AMOUNT), required=False)
    scope = ScopeIn(required=False)
    rule = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=2000)
    sub_targets = SubTargetIn(many=True, required=False)


class TargetGroupIn(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)
    till_code = serializers.CharField(
        max_length=64, required=False, allow_null=True, allow_blank=True
    )
    target_value_mode = serializers.ChoiceField(choices=TargetValueMode.choices, required=False)
    cycle = CycleIn(required=False)
    enrolment = EnrolmentIn(required=False)
    offset_days = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=365
    )
    leaderboard_enabled = serializers.BooleanField(required=False)
    unified_mode = serializers.ChoiceField(
        choices=UnifiedMode.choices, required=False, allow_blank=True
    )
    tracking_type = serializers.ChoiceField(choices=["single", "unified"], required=False)
    send_enrolment_trigger = serializers.BooleanField(required=False)
    template = serializers.IntegerField(required=False, allow_null=True)
    targets = TargetIn(many=True, required=False, max_length=200)
    rename_in_promotions = serializers.BooleanField(
        required=False,
        help_text="PATCH: a target renamed here is renamed in the promotion conditions that "
        "name it too (without it, renaming a target a promotion names is a 400).",
    )


# --- output -----------------------------------------------------------------------------------
class SubTargetOut(serializers.ModelSerializer):
    class Meta:
        model = SubTarget
        fields = ["id", "name", "criteria", "value"]


class TargetOut(serializers.ModelSerializer):
    period_values = serializers.SerializerMethodField()
    scope = serializers.SerializerMethodField()
    sub_targets = SubTargetOut(many=True, read_only=True)

    class Meta:
        model = Target
        fields = [
            "id", "name", "kpi", "entity", "event_name", "attribute", "extended_field", "extended_field_value",
            "points_type", "source_target_group", "value", "period_values", "scope", "rule", "sub_targets",
        ]  # fmt: skip

    def get_period_values(self, target) -> dict:
        names = {p.ordinal: p.name for p in target.target_group.periods.all()}
        return {
            names.get(int(k), f"P{k}"): float(v)
            for k, v in sorted(target.cycle_values.items(), key=lambda kv: int(kv[0]))
        }

    def get_scope(self, target) -> dict:
        return {
            "stores": target.scope_stores,
            "zones": target.scope_zones,
            "concepts": target.scope_concepts,
        }


class PeriodOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    ordinal = serializers.IntegerField()
    start = serializers.DateField()
    end = serializers.DateField()


class TargetGroupOut(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    tracking_type = serializers.CharField(read_only=True)
    till_code = serializers.SerializerMethodField()
    cycle = serializers.SerializerMethodField()
    enrolment = serializers.SerializerMethodField()
    periods = PeriodOut(many=True, read_only=True)
    targets = TargetOut(many=True, read_only=True)
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = TargetGroup
        fields = [
            "id", "name", "description", "start", "end", "till_code", "target_value_mode", "cycle", "enrolment",
            "offset_days", "leaderboard_enabled", "unified_mode", "tracking_type", "status", "is_active",
            "send_enrolment_trigger", "periods", "targets", "created_at", "created_by", "created_by_role",
        ]  # fmt: skip

    def get_status(self, group) -> str:
        return group.status()

    def get_till_code(self, group) -> str | None:
        return group.till.code if group.till else None

    def get_cycle(self, group) -> dict:
        out = {"type": group.cycle_type, "frequency": group.cycle_frequency or None, "days": group.cycle_days,
               "start": group.cycle_start, "count": group.cycle_count}  # fmt: skip
        if group.cycle_type == CycleType.CUSTOM_PERIODS:
            out["periods"] = [
                {"name": p.name, "start": p.start, "end": p.end} for p in group.periods.all()
            ]
        return out

    def get_enrolment(self, group) -> dict:
        from .selectors import enrolment_summary

        return enrolment_summary(group)

    def get_created_by(self, group) -> str | None:
        return group.created_by.username if group.created_by else None


# --- filters ----------------------------------------------------------------------------------
class TargetGroupFilter(filters.FilterSet):
    search = filters.CharFilter(method="filter_search")
    status = filters.ChoiceFilter(
        choices=[("live", "live"), ("upcoming", "upcoming"), ("ended", "ended")],
        method="filter_status",
    )
    is_active = filters.BooleanFilter()
    kpi = filters.ChoiceFilter(choices=Kpi.choices, method="filter_kpi")
    tracking_type = filters.ChoiceFilter(
        choices=[("single", "single"), ("unified", "unified")], method="filter_tracking"
    )
    starts_after = filters.DateFilter(field_name="start", lookup_expr="gte")
    ends_before = filters.DateFilter(field_name="end", lookup_expr="lte")

    class Meta:
        model = TargetGroup
        fields = ["is_active"]

    def filter_search(self, qs, name, value):
        return qs.filter(name__icontains=value.strip())

    def filter_status(self, qs, name, value):
        from .selectors import status_q

        return qs.filter(status_q(value, self.request.user.organisation))

    def filter_kpi(self, qs, name, value):
        return qs.filter(targets__kpi=value).distinct()

    def filter_tracking(self, qs, name, value):
        return qs.filter(unified_mode="") if value == "single" else qs.exclude(unified_mode="")


def _required_name(request, message: str) -> str:
    """The `name` of an action's body (clone, save as template), or a 400 with `message`."""
    name = request.data.get("name") if isinstance(request.data, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise serializers.ValidationError({"name": [message]})
    return name.strip()[:200]


def group_queryset():
    return TargetGroup.objects.select_related(
        "organisation", "till", "created_by"
    ).prefetch_related(
        "periods",
        Prefetch(
            "targets",
            queryset=Target.objects.select_related("target_group").prefetch_related("sub_targets"),
        ),
    )


class TargetGroupViewSet(OrgScopedMixin, viewsets.ModelViewSet):
    """Milestones. Writes follow the configuration rules; refusals are 400 with a message per field."""

    queryset = TargetGroup.objects.none()
    serializer_class = TargetGroupOut
    filterset_class = TargetGroupFilter
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return group_queryset().filter(organisation_id=self.request.user.organisation_id)

    def _respond(self, group, *, code=status.HTTP_200_OK, warnings=(), reprocess=None):
        group = self.get_queryset().get(pk=group.pk)
        body = TargetGroupOut(group, context=self.get_serializer_context()).data
        body["warnings"] = list(warnings)
        if reprocess is not None:
            body["reprocess_suggested"] = reprocess
        return Response(body, status=code)

    @extend_schema(request=TargetGroupIn, responses={201: TargetGroupOut})
    def create(self, request, *args, **kwargs):
        data = TargetGroupIn(data=request.data)
        data.is_valid(raise_exception=True)
        group, warnings = services.target_group_create(
            organisation=request.user.organisation,
            data=data.validated_data,
            user=request.user,
            via_api=True,
        )
        return self._respond(group, code=status.HTTP_201_CREATED, warnings=warnings,
                             reprocess=bool(group.start < timezone.localdate(timezone=group.organisation.tzinfo)))  # fmt: skip

    @extend_schema(request=TargetGroupIn, responses={200: TargetGroupOut})
    def partial_update(self, request, *args, **kwargs):
        group = self.get_object()
        data = TargetGroupIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        group, warnings, reprocess = services.target_group_update(
            target_group=group, data=data.validated_data, user=request.user, via_api=True
        )
        return self._respond(group, warnings=warnings, reprocess=reprocess)

    @extend_schema(request=None, responses={200: TargetGroupOut})
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        group = services.target_group_set_active(
            target_group=self.get_object(), active=True, user=request.user
        )
        return self._respond(group)

    @extend_schema(request=None, responses={200: TargetGroupOut})
    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        group = services.target_group_set_active(
            target_group=self.get_object(), active=False, user=request.user
        )
        return self._respond(group)

    @extend_schema(
        request=inline_serializer("CloneIn", {"name": serializers.CharField(max_length=200)}),
        responses={201: TargetGroupOut},
    )
    @action(detail=True, methods=["post"])
    def clone(self, request, pk=None):
        name = _required_name(request, "Give the clone a new name.")
        group = services.target_group_clone(source=self.get_object(), name=name, user=request.user)
        return self._respond(group, code=status.HTTP_201_CREATED)

    @extend_schema(
        request=inline_serializer(
            "SaveAsTemplateIn", {"name": serializers.CharField(max_length=200)}
        ),
        responses={
            201: inline_serializer(
                "TemplateRef", {"id": serializers.IntegerField(), "name": serializers.CharField()}
            )
        },
    )
    @action(detail=True, methods=["post"], url_path="save-as-template")
    def save_as_template(self, request, pk=None):
        name = _required_name(request, "Give the template a name.")
        template = services.template_create_from_group(
            target_group=self.get_object(), name=name, user=request.user
        )
        return Response({"id": template.id, "name": template.name}, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: inline_serializer("AuditOut", {
        "action": serializers.CharField(), "user": serializers.CharField(allow_null=True),
        "changes": serializers.JSONField(), "created_at": serializers.DateTimeField()}, many=True)})  # fmt: skip
    @action(detail=True, methods=["get"])
    def audit(self, request, pk=None):
        group = self.get_object()
        entries = AuditEntry.objects.filter(
            organisation=group.organisation, object_type="targetgroup", object_id=group.id
        ).select_related("user")
        return Response([
            {"action": e.action, "user": e.user.username if e.user else None, "changes": e.changes, "created_at": e.created_at}
            for e in entries
        ])  # fmt: skip


class TemplateOut(serializers.ModelSerializer):
    builtin = serializers.SerializerMethodField()

    class Meta:
        model = Template
        fields = ["id", "name", "description", "builtin", "payload", "created_at"]

    def get_builtin(self, template) -> bool:
        return template.organisation_id is None


class TemplateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Built-in templates and the organisation's own ("save as template")."""

    serializer_class = TemplateOut
    queryset = Template.objects.none()

    def get_queryset(self):
        return Template.objects.filter(
            Q(organisation__isnull=True) | Q(organisation_id=self.request.user.organisation_id)
        )
