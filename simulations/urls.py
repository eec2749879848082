"""API routes of the simulations app (included at /api/v1/)."""

from django.urls import path

from . import api

urlpatterns = [
    path("simulations/", api.SimulationCreateView.as_view(), name="simulations"),
    path("simulations/<int:pk>/", api.SimulationDetailView.as_view(), name="simulation"),
]
