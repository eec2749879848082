"""Simulations over the API (../shared/API.md, "Simulations"): POST a request (202 with its
id), GET its status, progress and result. Configurers only; another organisation's
simulation answers 404."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import get_object_or_404
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import MAX_ID
from common.permissions import CONFIG_ROLES

from .inputs import SimulationIn, SimulationRefused
from .models import Simulation
from .services import simulation_create

RESULT_HELP = (
    'Once done: `{"targets": [{"name", "kpi", "value", "cycles": [{"name", "start", "end", '
    '"target", "participants", "achieved", "sub_targets": [{"name", "reached"}], '
    '"distribution": {"0-25", "25-50", "50-75", "75-100", "achieved"}, "median", "top", '
    '"awards": {"count", "points", "coupons", "messages", "capped", "failed", "skipped"}}]}], '
    '"liability": {"points", "coupons"}, "window": {"start", "end"}, "cycle_type", '
    '"other_awards", "promotions", "notes"}`; null before. Cyclic and till-achievement '
    "cycles are each customer's own: their `start` and `end` are null."
)


class SimulationOut(serializers.ModelSerializer):
    result = serializers.JSONField(allow_null=True, help_text=RESULT_HELP)

    class Meta:
        model = Simulation
        fields = ["id", "label", "status", "total", "processed", "result", "error",
                  "created_at", "started_at", "finished_at"]  # fmt: skip
        extra_kwargs = {
            "id": {"help_text": "The simulation's id."},
            "label": {"help_text": "What the run tries (set by the Simulate screen)."},
            "status": {"help_text": "pending | running | done | failed."},
            "total": {"help_text": "Customers to replay (known once running)."},
            "processed": {"help_text": "Customers replayed so far."},
            "error": {"help_text": "Why a failed run failed."},
            "created_at": {"help_text": "When it was asked for."},
            "started_at": {"help_text": "When a worker took it."},
            "finished_at": {"help_text": "When it finished (done or failed)."},
        }  # fmt: skip


EXAMPLE = {
    "target_group": {
        "name": "Monthly spend", "start": "2026-07-01", "end": "2026-12-31", "till_code": "T1",
        "cycle": {"type": "fixed_calendar", "frequency": "monthly"},
        "targets": [{"name": "Spend 10000", "kpi": "gross_sales", "value": 10000,
                     "sub_targets": [{"name": "Halfway", "criteria": "percentage", "value": 50}]}],
    },
    "window": {"start": "2026-01-01", "end": "2026-03-31"},
    "draft_promotions": [{"name": "Spend reward", "condition": "currentEvent.isTargetAchievedEvent",
                          "actions": [{"type": "award_points", "points": 200}]}],
}  # fmt: skip


class SimulationCreateView(APIView):
    """Simulate a milestone (unsaved, or an existing one with changed values) and the
    promotions it would trigger over a past window of stored activities. Nothing real is
    written or sent; the run is a Celery task (poll `GET /api/v1/simulations/{id}/`)."""

    read_roles = CONFIG_ROLES
    write_roles = CONFIG_ROLES
    parser_classes = [JSONParser]  # the request is stored as it came: JSON only

    @extend_schema(
        request=SimulationIn,
        responses={
            202: inline_serializer(
                "SimulationAccepted",
                {"id": serializers.IntegerField(help_text="The simulation's id.")},
            )
        },
        examples=[
            OpenApiExample(
                "An unsaved milestone and a draft promotion", value=EXAMPLE, request_only=True
            )
        ],  # fmt: skip
    )
    def post(self, request):
        try:
            simulation = simulation_create(
                organisation=request.user.organisation, user=request.user, data=request.data
            )
        except SimulationRefused as exc:
            return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
        return Response({"id": simulation.pk}, status=status.HTTP_202_ACCEPTED)


class SimulationDetailView(APIView):
    """A simulation's status, progress (customers replayed of the total) and result."""

    read_roles = CONFIG_ROLES
    write_roles = CONFIG_ROLES

    @extend_schema(responses={200: SimulationOut})
    def get(self, request, pk: int):
        if pk > MAX_ID:
            raise Http404
        simulation = get_object_or_404(
            Simulation.objects.all(), pk=pk, organisation_id=request.user.organisation_id
        )
        return Response(SimulationOut(simulation).data)
