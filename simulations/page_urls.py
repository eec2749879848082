"""Pages of the simulations app, mounted at /simulations/ (milestones_site.urls).

- `simulations:new` (`/simulations/new/?target_group=ID`): the Simulate form of a milestone;
- `simulations:report` (`/simulations/ID/`, `?compare=ID2` for two runs side by side)."""

from django.urls import path

from . import views

app_name = "simulations"

urlpatterns = [
    path("new/", views.simulate_page, name="new"),
    path("<int:simulation_id>/", views.report_page, name="report"),
]
