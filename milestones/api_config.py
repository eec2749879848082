"""Configuration API: target groups (milestones) with their cycles and targets, templates."""

from django.db.models import Prefetch, Q
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from common.api import OrgScopedMixin

from .catalogue import MAX_CYCLE_DAYS, MAX_CYCLES, MAX_OFFSET_DAYS
from .models import (
    AuditEntry,
    CycleType,
    EnrolmentMode,
    Entity,
    Frequency,
    Kpi,
    MilestoneStatus,
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
    name = serializers.CharField(
        max_length=200, required=False, allow_blank=True,
        help_text="The period's name (`P1`, `Spring`); blank: numbered.",
    )  # fmt: skip
    start = serializers.DateField(help_text="First day of the period.")
    end = serializers.DateField(help_text="Last day of the period (inclusive).")


class CycleIn(serializers.Serializer):
    type = serializers.ChoiceField(
        choices=CycleType.choices, required=False,
        help_text="fixed_calendar (calendar periods: months, weeks, ...) | custom_periods "
        "(`periods`) | cyclic (windows from each customer's first activity) | "
        "till_achievement (a cycle closes when its target is reached, the next opens).",
    )  # fmt: skip
    frequency = serializers.ChoiceField(
        choices=Frequency.choices, required=False, allow_null=True, allow_blank=True,
        help_text="How long a cycle is (fixed_calendar, cyclic); `days` takes `days`.",
    )  # fmt: skip
    days = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_CYCLE_DAYS,
        help_text="A cycle's length in days, with frequency `days`.",
    )  # fmt: skip
    start = serializers.DateField(
        required=False, allow_null=True,
        help_text="When the first cycle starts (default: the milestone's start).",
    )  # fmt: skip
    count = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_CYCLES,
        help_text="How many cycles.",
    )  # fmt: skip
    periods = PeriodIn(
        many=True, required=False, help_text="custom_periods: the periods, in order."
    )


class EnrolmentIn(serializers.Serializer):
    mode = serializers.ChoiceField(
        choices=EnrolmentMode.choices, required=False,
        help_text="all_customers (a loyalty customer is enrolled by their first activity) | "
        "audience_group (the members of `audience_group`) | custom_list (enrolments and "
        "per-customer values uploaded).",
    )  # fmt: skip
    audience_group = serializers.IntegerField(
        required=False, allow_null=True, help_text="The audience group's id (audience_group)."
    )


class ScopeIn(serializers.Serializer):
    stores = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=1000,
        help_text="Store codes whose activities count.",
    )  # fmt: skip
    zones = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=1000,
        help_text="Store zones whose activities count.",
    )  # fmt: skip
    concepts = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=1000,
        help_text="Store concepts whose activities count.",
    )  # fmt: skip


class SubTargetIn(serializers.Serializer):
    id = serializers.IntegerField(
        required=False, help_text="PATCH: the sub-target to change (absent: a new one)."
    )
    name = serializers.CharField(max_length=200, help_text="The sub-target's name.")
    criteria = serializers.ChoiceField(
        choices=SubTargetCriteria.choices, required=False,
        help_text="percentage (of the customer's cycle target) | absolute (a value).",
    )  # fmt: skip
    value = serializers.DecimalField(**AMOUNT, help_text="The percentage or the value.")


class TargetIn(serializers.Serializer):
    id = serializers.IntegerField(
        required=False, help_text="PATCH: the target to change (absent: a new one)."
    )
    name = serializers.CharField(
        max_length=200, required=False,
        help_text="The target's name, unique in the organisation (promotion conditions name it).",
    )  # fmt: skip
    kpi = serializers.ChoiceField(
        choices=Kpi.choices, required=False,
        help_text="What is measured; locked once the milestone is live.",
    )  # fmt: skip
    entity = serializers.ChoiceField(
        choices=Entity.choices, required=False, allow_null=True,
        help_text="What the KPI counts (default: the KPI's first); locked once live.",
    )  # fmt: skip
    event_name = serializers.CharField(
        max_length=100, required=False, allow_null=True, allow_blank=True,
        help_text="Event KPIs: the event's name (AddToCart); locked once live.",
    )  # fmt: skip
    attribute = serializers.CharField(
        max_length=100, required=False, allow_null=True, allow_blank=True,
        help_text="event_sum, event_daily_max_sum: the event attribute added up.",
    )  # fmt: skip
    extended_field = serializers.CharField(
        max_length=100, required=False, allow_null=True, allow_blank=True,
        help_text="Extended-field KPIs: the field counted or summed.",
    )  # fmt: skip
    extended_field_value = serializers.CharField(
        max_length=200, required=False, allow_null=True, allow_blank=True,
        help_text="extended_field_count: count only this value.",
    )  # fmt: skip
    points_type = serializers.ChoiceField(
        choices=PointsType.choices, required=False, allow_null=True, allow_blank=True,
        help_text="points KPI: regular | promotional | both.",
    )  # fmt: skip
    source_target_group = serializers.IntegerField(
        required=False, allow_null=True,
        help_text="milestones_achieved: the milestone whose achievements are counted (id).",
    )  # fmt: skip
    value = serializers.DecimalField(
        **AMOUNT, required=False, help_text="The target value of every cycle."
    )
    period_values = serializers.DictField(
        child=serializers.DecimalField(**AMOUNT), required=False,
        help_text="Other values for some cycles, by period name: `{\"P2\": 1500}`.",
    )  # fmt: skip
    scope = ScopeIn(
        required=False, help_text="Only activities at these stores, zones or concepts count."
    )
    rule = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=2000,
        help_text="A condition an activity must meet to count (`currentTxn.value >= 100`).",
    )  # fmt: skip
    sub_targets = SubTargetIn(
        many=True, required=False, help_text="Steps on the way to the target, each an event."
    )


class TargetGroupIn(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, help_text="The milestone's name.")
    description = serializers.CharField(
        required=False, allow_blank=True, help_text="What the milestone is for."
    )
    start = serializers.DateField(required=False, help_text="First day of the milestone.")
    end = serializers.DateField(required=False, help_text="Last day of the milestone.")
    till_code = serializers.CharField(
        max_length=64, required=False, allow_null=True, allow_blank=True,
        help_text="The till (a store with `is_till`) its awards are booked at; required.",
    )  # fmt: skip
    target_value_mode = serializers.ChoiceField(
        choices=TargetValueMode.choices, required=False,
        help_text="same_for_all (the target's values) | per_customer (uploaded per customer).",
    )  # fmt: skip
    cycle = CycleIn(required=False, help_text="How the milestone is cut into cycles.")
    enrolment = EnrolmentIn(required=False, help_text="Who is enrolled.")
    offset_days = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=MAX_OFFSET_DAYS,
        help_text="Days between a cycle's end and its evaluation (late activities inside "
        "them still count); null: the organisation's default.",
    )  # fmt: skip
    leaderboard_enabled = serializers.BooleanField(
        required=False, help_text="Rank customers (`/api/v1/targets/{id}/leaderboard/`)."
    )
    unified_mode = serializers.ChoiceField(
        choices=UnifiedMode.choices, required=False, allow_blank=True,
        help_text="A unified milestone is reached when all | any of its targets are; blank: "
        "each target on its own.",
    )  # fmt: skip
    tracking_type = serializers.ChoiceField(
        choices=["single", "unified"], required=False,
        help_text="single (each target on its own) | unified (with `unified_mode`).",
    )  # fmt: skip
    send_enrolment_trigger = serializers.BooleanField(
        required=False, help_text="Send an enrolment notification to each enrolled customer."
    )
    template = serializers.IntegerField(
        required=False, allow_null=True,
        help_text="POST: start from this template (`/api/v1/templates/`); the body's fields "
        "override it.",
    )  # fmt: skip
    # Above MAX_TARGETS (50) the service answers why; this only bounds the request's size.
    targets = TargetIn(
        many=True, required=False, max_length=200, help_text="The milestone's targets."
    )
    rename_in_promotions = serializers.BooleanField(
        required=False,
        help_text="PATCH: a target renamed here is renamed in the promotion conditions that "
        "name it too (without it, renaming a target a promotion names is a 400).",
    )
    drop_cycles = serializers.BooleanField(
        required=False,
        help_text="PATCH of a started milestone: an `end` before its last cycles end drops the "
        "cycles that end after it, if none has started (without it, such an end is a 400).",
    )


# --- output -----------------------------------------------------------------------------------
class SubTargetOut(serializers.ModelSerializer):
    class Meta:
        model = SubTarget
        fields = ["id", "name", "criteria", "value"]
        extra_kwargs = {
            "id": {"help_text": "The sub-target's id."},
            "name": {"help_text": "The sub-target's name."},
            "criteria": {"help_text": "percentage (of the customer's cycle target) | absolute."},
            "value": {"help_text": "The percentage or the value."},
        }  # fmt: skip


class TargetOut(serializers.ModelSerializer):
    period_values = serializers.SerializerMethodField(
        help_text='Values that differ from `value`, by period name: `{"P2": 1500.0}`.'
    )
    scope = serializers.SerializerMethodField(
        help_text='`{"stores": [...], "zones": [...], "concepts": [...]}`: only '
        "activities there count (all empty: everywhere)."
    )
    sub_targets = SubTargetOut(many=True, read_only=True, help_text="The target's sub-targets.")

    class Meta:
        model = Target
        fields = [
            "id", "name", "kpi", "entity", "event_name", "attribute", "extended_field", "extended_field_value",
            "points_type", "source_target_group", "value", "period_values", "scope", "rule", "sub_targets",
        ]  # fmt: skip
        extra_kwargs = {
            "id": {"help_text": "The target's id."},
            "name": {"help_text": "The target's name, unique in the organisation."},
            "kpi": {"help_text": "What is measured."},
            "entity": {"help_text": "What the KPI counts."},
            "event_name": {"help_text": "Event KPIs: the event's name."},
            "attribute": {"help_text": "event_sum, event_daily_max_sum: the attribute added up."},
            "extended_field": {"help_text": "Extended-field KPIs: the field counted or summed."},
            "extended_field_value": {"help_text": "extended_field_count: the value counted."},
            "points_type": {"help_text": "points KPI: regular | promotional | both."},
            "source_target_group": {"help_text": "milestones_achieved: the milestone counted (id)."},
            "value": {"help_text": "The target value of every cycle (see `period_values`)."},
            "rule": {"help_text": "The condition an activity must meet to count."},
        }  # fmt: skip

    def get_period_values(self, target) -> dict:
        names = {p.ordinal: p.name for p in target.target_group.periods.all()}
        return {
            names.get(int(k), f"P{k}"): float(v)
            for k, v in sorted(target.cycle_values.items(), key=lambda kv: int(kv[0]))
        }

    def get_scope(self, target) -> dict:
        return services.scope_as_data(target)


class PeriodOut(serializers.Serializer):
    id = serializers.IntegerField(help_text="The period's id.")
    name = serializers.CharField(help_text="The period's name (`P2`, `Mar 2026`).")
    ordinal = serializers.IntegerField(help_text="The cycle's number, from 1.")
    start = serializers.DateField(help_text="First day.")
    end = serializers.DateField(help_text="Last day (inclusive).")


class TargetGroupOut(serializers.ModelSerializer):
    status = serializers.SerializerMethodField(help_text="live | upcoming | ended (by its dates).")
    tracking_type = serializers.CharField(
        read_only=True, help_text="single | unified (see `unified_mode`)."
    )
    till_code = serializers.SerializerMethodField(
        help_text="The till (store code) its awards are booked at."
    )
    cycle = serializers.SerializerMethodField(
        help_text='`{"type", "frequency", "days", "start", "count"}` (and '
        "`periods` for custom periods), as in the request."
    )
    enrolment = serializers.SerializerMethodField(
        help_text='`{"mode": ...}` and what the enrolment app adds (audience group, counts).'
    )
    periods = PeriodOut(
        many=True, read_only=True, help_text="The fixed periods, with ids (fixed cycle types)."
    )
    targets = TargetOut(many=True, read_only=True, help_text="The milestone's targets.")
    created_by = serializers.SerializerMethodField(help_text="Who created it (username).")

    class Meta:
        model = TargetGroup
        fields = [
            "id", "name", "description", "start", "end", "till_code", "target_value_mode", "cycle", "enrolment",
            "offset_days", "leaderboard_enabled", "unified_mode", "tracking_type", "status", "is_active",
            "send_enrolment_trigger", "periods", "targets", "created_at", "created_by", "created_by_role",
        ]  # fmt: skip
        extra_kwargs = {
            "id": {"help_text": "The milestone's id."},
            "name": {"help_text": "The milestone's name."},
            "description": {"help_text": "What the milestone is for."},
            "start": {"help_text": "First day."},
            "end": {"help_text": "Last day."},
            "target_value_mode": {"help_text": "same_for_all | per_customer (uploaded values)."},
            "leaderboard_enabled": {"help_text": "Customers are ranked."},
            "unified_mode": {"help_text": "all | any: reached when all or any targets are; blank: each target on its own."},
            "is_active": {"help_text": "Only an active milestone tracks activities."},
            "send_enrolment_trigger": {"help_text": "Enrolled customers are notified."},
            "created_at": {"help_text": "When it was created."},
            "created_by_role": {"help_text": "The creator's role."},
        }  # fmt: skip

    def get_status(self, group) -> str:
        return group.status()

    def get_till_code(self, group) -> str | None:
        return group.till.code if group.till else None

    def get_cycle(self, group) -> dict:
        return services.cycle_as_data(group)

    def get_enrolment(self, group) -> dict:
        from .selectors import enrolment_summary

        return enrolment_summary(group)

    def get_created_by(self, group) -> str | None:
        return group.created_by.username if group.created_by else None


# --- filters ----------------------------------------------------------------------------------
class TargetGroupFilter(filters.FilterSet):
    search = filters.CharFilter(method="filter_search")
    status = filters.ChoiceFilter(
        choices=[
            (s.value, s.value)
            for s in (MilestoneStatus.LIVE, MilestoneStatus.UPCOMING, MilestoneStatus.ENDED)
        ],
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
        request=inline_serializer(
            "CloneIn",
            {"name": serializers.CharField(max_length=200, help_text="The clone's name.")},
        ),
        responses={201: TargetGroupOut},
    )
    @action(detail=True, methods=["post"])
    def clone(self, request, pk=None):
        name = _required_name(request, "Give the clone a new name.")
        group = services.target_group_clone(source=self.get_object(), name=name, user=request.user)
        return self._respond(group, code=status.HTTP_201_CREATED)

    @extend_schema(
        request=inline_serializer(
            "SaveAsTemplateIn",
            {"name": serializers.CharField(max_length=200, help_text="The template's name.")},
        ),
        responses={
            201: inline_serializer(
                "TemplateRef",
                {
                    "id": serializers.IntegerField(help_text="The template's id."),
                    "name": serializers.CharField(help_text="The template's name."),
                },
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
        "action": serializers.CharField(help_text="What was done: create | update | activate | deactivate | clone | ..."),
        "user": serializers.CharField(allow_null=True, help_text="Who did it (username)."),
        "changes": serializers.JSONField(help_text="What changed: field -> [before, after]."),
        "created_at": serializers.DateTimeField(help_text="When.")}, many=True)})  # fmt: skip
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
    builtin = serializers.SerializerMethodField(
        help_text="A built-in template every organisation sees (else the organisation's own)."
    )

    class Meta:
        model = Template
        fields = ["id", "name", "description", "builtin", "payload", "created_at"]
        extra_kwargs = {
            "id": {"help_text": "The template's id (`\"template\": ID` in a milestone POST)."},
            "name": {"help_text": "The template's name."},
            "description": {"help_text": "What the template is for."},
            "payload": {"help_text": "The milestone it creates, in the create request's shape."},
            "created_at": {"help_text": "When it was saved."},
        }  # fmt: skip

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
