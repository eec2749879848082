from django.urls import path

from . import api

urlpatterns = [
    path("activities/", api.ActivitiesView.as_view(), name="activities"),
    path(
        "customers/<int:pk>/milestones/",
        api.CustomerMilestonesView.as_view(),
        name="customer-milestones",
    ),
    path("target-events/", api.TargetEventList.as_view(), name="target-events"),
    path("targets/<int:pk>/leaderboard/", api.LeaderboardView.as_view(), name="target-leaderboard"),
    path("customers/<int:pk>/ranks/", api.CustomerRanksView.as_view(), name="customer-ranks"),
    path(
        "target-groups/<int:pk>/reprocess/",
        api.ReprocessView.as_view(),
        name="target-group-reprocess",
    ),
    path(
        "reprocess-runs/<int:pk>/",
        api.RunStatusView.as_view(kind="reprocess"),
        name="reprocess-run",
    ),
    path("targets/<int:pk>/near-miss/", api.NearMissView.as_view(), name="target-near-miss"),
    path("evaluation-runs/", api.EvaluationRunList.as_view(), name="evaluation-runs"),
    path(
        "evaluation-runs/<int:pk>/",
        api.RunStatusView.as_view(kind="evaluation"),
        name="evaluation-run",
    ),
]
