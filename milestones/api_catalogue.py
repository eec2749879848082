"""Configuration API: the organisation's event catalogue (`/api/v1/event-types/`).

Every role reads it (an integrator checks the names it sends); configurers add, edit and
delete names. Writes go through `milestones.services.event_types`, as the admin screen's do.
"""

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response

from common.api import OrgScopedMixin

from .models import EventKind, EventSource, EventType
from .services import event_types as services


class EventTypeIn(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=EventKind.choices,
        help_text="behavioural (an `event` activity, any name) | customer (a `customer_event` "
        "activity: its names are a fixed list).",
    )
    name = serializers.CharField(
        max_length=100,
        help_text="The event's name exactly as activities send it (case-sensitive: `Review` "
        "and `review` are two events).",
    )
    attributes = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        max_length=services.MAX_ATTRIBUTES,
        help_text='The attribute names the event carries (`["price", "sku"]`), offered '
        "when a target adds one up.",
    )


class EventTypeOut(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=EventKind.choices, help_text="behavioural | customer.")
    source = serializers.ChoiceField(
        choices=EventSource.choices,
        read_only=True,
        help_text="learned (from received activities) | configured (added by a configurer).",
    )

    class Meta:
        model = EventType
        fields = ["id", "kind", "name", "attributes", "source", "first_seen", "last_seen",
                  "created_at"]  # fmt: skip
        extra_kwargs = {
            "id": {"help_text": "The catalogue entry's id."},
            "name": {"help_text": "The event's name, as activities send it (case-sensitive)."},
            "attributes": {"help_text": "The attribute names seen on it or given, sorted."},
            "first_seen": {"help_text": "When an activity first brought this name (null: never)."},
            "last_seen": {"help_text": "When an activity last brought this name (null: never)."},
            "created_at": {"help_text": "When the entry was made."},
        }  # fmt: skip


class EventTypeWritten(EventTypeOut):
    warnings = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="What the configurer should know (a name that differs from another only in "
        "case). Never blocks a save.",
    )

    class Meta(EventTypeOut.Meta):
        fields = [*EventTypeOut.Meta.fields, "warnings"]


class EventTypeFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=EventKind.choices, help_text="behavioural | customer.")
    source = filters.ChoiceFilter(choices=EventSource.choices, help_text="learned | configured.")
    search = filters.CharFilter(
        field_name="name", lookup_expr="icontains", help_text="Part of the name, any case."
    )

    class Meta:
        model = EventType
        fields = ["kind", "source", "search"]


class EventTypeViewSet(OrgScopedMixin, viewsets.ModelViewSet):
    """The organisation's event catalogue: behavioural and customer-level event names with
    their attributes, learned from received activities and edited by configurers. A target
    counting a name outside it is saved with a warning; with the organisation setting
    `refuse_unknown_events`, activities naming one are refused. The customer-level events
    (points_redemption, ...) are a fixed list, always in the catalogue: they are listed here
    once received or added, to carry their attributes."""

    queryset = EventType.objects.all()
    serializer_class = EventTypeOut
    filterset_class = EventTypeFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def _written(self, event_type, warnings, code):
        body = EventTypeOut(event_type, context=self.get_serializer_context()).data
        body["warnings"] = list(warnings)
        return Response(body, status=code)

    @extend_schema(request=EventTypeIn, responses={201: EventTypeWritten})
    def create(self, request, *args, **kwargs):
        data = EventTypeIn(data=request.data)
        data.is_valid(raise_exception=True)
        event_type, warnings = services.event_type_create(
            organisation=request.user.organisation, **data.validated_data
        )
        return self._written(event_type, warnings, status.HTTP_201_CREATED)

    @extend_schema(request=EventTypeIn(partial=True), responses={200: EventTypeWritten})
    def partial_update(self, request, *args, **kwargs):
        event_type = self.get_object()
        data = EventTypeIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        event_type, warnings = services.event_type_update(
            event_type=event_type, data=data.validated_data
        )
        return self._written(event_type, warnings, status.HTTP_200_OK)

    def perform_destroy(self, instance):
        services.event_type_delete(event_type=instance)
