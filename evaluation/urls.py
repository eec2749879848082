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
]
