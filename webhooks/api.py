"""Webhook endpoints and their deliveries over the API (contract: API.md "Additions (second
round)", Webhooks). Configurers and integration accounts manage them; member care does not.
The secret is answered once, by the POST that creates the endpoint."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from common.api import OrgScopedMixin
from common.roles import Role

from . import selectors, services
from .models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .models import WebhookEventType as EventType

MANAGE_ROLES = frozenset({Role.CONFIGURER, Role.INTEGRATION})


class EndpointOut(serializers.ModelSerializer):
    events = serializers.ListField(
        child=serializers.CharField(),
        help_text=f"The event types POSTed to this endpoint: {', '.join(EventType.values)}.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "events", "description", "is_active", "failing_since",
                  "disabled_at", "disabled_reason", "created_at"]  # fmt: skip
        extra_kwargs = {
            "id": {"help_text": "The endpoint's id."},
            "url": {"help_text": "Where events are POSTed (http or https)."},
            "description": {"help_text": "What the endpoint is for."},
            "is_active": {"help_text": "Only an active endpoint is sent events."},
            "failing_since": {
                "help_text": "Its first failed attempt without a later success; null: healthy."
            },
            "disabled_at": {"help_text": "When it was disabled automatically."},
            "disabled_reason": {"help_text": "Why it was disabled automatically."},
            "created_at": {"help_text": "When it was created."},
        }  # fmt: skip


class EndpointCreated(EndpointOut):
    secret = serializers.CharField(
        help_text="The signing secret (`whsec_...`): shown this once. Verify each request's "
        "`webhook-signature` with it (Standard Webhooks)."
    )

    class Meta(EndpointOut.Meta):
        fields = ["id", "secret", *EndpointOut.Meta.fields[1:]]


class EndpointIn(serializers.Serializer):
    """The URL and event types are checked by the service (one rule for the API and the
    admin): an unknown event type is a 400 naming it."""

    url = serializers.CharField(max_length=2000, help_text="http:// or https:// address.")
    events = serializers.ListField(
        child=serializers.CharField(max_length=60),
        help_text=f"Event types: {', '.join(EventType.values)}.",
    )
    description = serializers.CharField(
        max_length=500, required=False, allow_blank=True, help_text="What the endpoint is for."
    )


class EndpointPatch(serializers.Serializer):
    url = serializers.CharField(
        max_length=2000, required=False, help_text="A new http:// or https:// address."
    )
    events = serializers.ListField(
        child=serializers.CharField(max_length=60),
        required=False,
        help_text="The event types, replacing the current list.",
    )
    is_active = serializers.BooleanField(
        required=False, help_text="true re-activates a disabled endpoint: what waited is sent."
    )
    description = serializers.CharField(
        max_length=500, required=False, allow_blank=True, help_text="What the endpoint is for."
    )


class AttemptOut(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "attempted_at", "status_code", "response_ms", "error"]
        extra_kwargs = {
            "number": {"help_text": "1 for the first attempt."},
            "attempted_at": {"help_text": "When the request was sent."},
            "status_code": {"help_text": "The receiver's HTTP status; null: no answer."},
            "response_ms": {"help_text": "How long the receiver took, in milliseconds."},
            "error": {"help_text": "Why it failed (a timeout, a refused connection, a non-2xx)."},
        }  # fmt: skip


class DeliveryOut(serializers.ModelSerializer):
    attempt_log = AttemptOut(many=True, read_only=True, help_text="Every attempt, in order.")

    class Meta:
        model = WebhookDelivery
        fields = ["id", "event_type", "webhook_id", "status", "attempts", "last_status_code",
                  "last_response_ms", "last_error", "next_attempt_at", "created_at",
                  "delivered_at", "body", "attempt_log"]  # fmt: skip
        extra_kwargs = {
            "id": {"help_text": "The delivery's id (for resend)."},
            "event_type": {"help_text": "The event type."},
            "webhook_id": {"help_text": "The `webhook-id` header: the same on every attempt."},
            "status": {"help_text": "pending | delivered | failed"},
            "attempts": {"help_text": "Attempts so far."},
            "last_status_code": {"help_text": "The last answer's HTTP status."},
            "last_response_ms": {"help_text": "The last attempt's response time (ms)."},
            "last_error": {"help_text": "Why the last attempt failed."},
            "next_attempt_at": {"help_text": "When it is tried next (pending)."},
            "created_at": {"help_text": "When the event was written (with its fact)."},
            "delivered_at": {"help_text": "When a 2xx answer came."},
            "body": {"help_text": 'What is POSTed: {"type", "timestamp", "data"}.'},
        }  # fmt: skip


class DeliveryFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=DeliveryStatus.choices)
    event_type = filters.ChoiceFilter(choices=EventType.choices)

    class Meta:
        model = WebhookDelivery
        fields = ["status", "event_type"]


class WebhookEndpointViewSet(
    OrgScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Webhook endpoints (Standard Webhooks): POST one with its URL and event types (the
    answer shows its secret once), PATCH `url`, `events`, `is_active`, DELETE it; read its
    deliveries and resend one."""

    queryset = WebhookEndpoint.objects.order_by("id")
    serializer_class = EndpointOut
    read_roles = MANAGE_ROLES
    write_roles = MANAGE_ROLES
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookEndpoint.objects.none()
        return super().get_queryset()

    @extend_schema(request=EndpointIn, responses={201: EndpointCreated})
    def create(self, request, *args, **kwargs):
        data = EndpointIn(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.endpoint_create(
            organisation=request.user.organisation,
            url=data.validated_data["url"],
            events=data.validated_data["events"],
            description=data.validated_data.get("description", ""),
        )
        return Response(EndpointCreated(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=EndpointPatch, responses={200: EndpointOut})
    def partial_update(self, request, *args, **kwargs):
        endpoint = self.get_object()
        data = EndpointPatch(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(endpoint=endpoint, data=data.validated_data)
        return Response(EndpointOut(endpoint).data)

    def perform_destroy(self, instance):
        services.endpoint_delete(endpoint=instance)

    @extend_schema(
        responses={200: DeliveryOut(many=True)},
        parameters=[
            OpenApiParameter("status", str, enum=DeliveryStatus.values),
            OpenApiParameter("event_type", str, enum=EventType.values),
            OpenApiParameter("limit", int),
            OpenApiParameter("offset", int),
        ],
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        """The endpoint's deliveries, newest first, each with its attempts;
        `?status=` and `?event_type=` filter them."""
        endpoint = self.get_object()
        qs = DeliveryFilter(request.query_params, selectors.deliveries_for(endpoint=endpoint))
        if not qs.is_valid():
            raise serializers.ValidationError(qs.errors)
        page = self.paginate_queryset(qs.qs)
        return self.get_paginated_response(DeliveryOut(page, many=True).data)

    @extend_schema(request=None, responses={202: DeliveryOut})
    @action(
        detail=True,
        methods=["post"],
        url_path=r"deliveries/(?P<delivery_id>[0-9]{1,18})/resend",
    )
    def resend(self, request, pk=None, delivery_id=None):
        """Send a delivery again, with the same `webhook-id` and body (202: queued)."""
        endpoint = self.get_object()
        delivery = get_object_or_404(WebhookDelivery, pk=int(delivery_id), endpoint=endpoint)
        delivery = services.delivery_resend(delivery=delivery)
        return Response(DeliveryOut(delivery).data, status=status.HTTP_202_ACCEPTED)
