"""Pages for people, mounted at /care/ (member care, milestone insights, progress of long work)."""

from django.urls import path

from . import views

app_name = "care"

urlpatterns = [
    path("", views.customer_search, name="search"),
    path(
        "customers/<int:customer_id>/milestones/",
        views.customer_milestones_page,
        name="customer-milestones",
    ),
    path(
        "customers/<int:customer_id>/milestones/<int:target_id>/",
        views.customer_target_detail,
        name="customer-target",
    ),
    path(
        "milestones/<int:group_id>/insights/",
        views.milestone_insights_page,
        name="milestone-insights",
    ),
    path("milestones/<int:group_id>/imports/", views.milestone_imports_page, name="imports"),
    # a custom list's steps: upload, map fields and preview, confirm (nothing written before)
    path("milestones/<int:group_id>/imports/upload/", views.import_upload, name="import-upload"),
    path("milestones/<int:group_id>/imports/map/", views.import_map_page, name="import-map"),
    path("milestones/<int:group_id>/imports/confirm/", views.import_confirm, name="import-confirm"),
    path("imports/<int:import_id>/", views.import_progress_page, name="import-progress"),
    path("imports/<int:import_id>/outcome/", views.import_outcome, name="import-outcome"),
    path("imports/<int:import_id>/rerun/", views.import_rerun, name="import-rerun"),
    path("runs/<str:kind>/<int:run_id>/", views.run_progress_page, name="run-progress"),
]
