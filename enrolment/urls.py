from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter(trailing_slash=True)
router.register("customers", api.CustomerViewSet, basename="customer")
router.register("audience-groups", api.AudienceGroupViewSet, basename="audience-group")
router.register("imports", api.ImportViewSet, basename="import")

urlpatterns = [
    path(
        "target-groups/<int:pk>/enrolments/",
        api.TargetGroupEnrolmentsView.as_view(),
        name="target-group-enrolments",
    ),
    path(
        "target-groups/<int:pk>/enrolments/<int:customer_id>/",
        api.TargetGroupEnrolmentDetailView.as_view(),
        name="target-group-enrolment",
    ),
    path(
        "target-groups/<int:pk>/target-values/upload/",
        api.TargetValuesUploadView.as_view(),
        name="target-values-upload",
    ),
    path(
        "target-groups/<int:pk>/target-values/sample/",
        api.TargetValuesSampleView.as_view(),
        name="target-values-sample",
    ),
    *router.urls,
]
