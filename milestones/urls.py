from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api, api_catalogue, api_config

router = SimpleRouter(trailing_slash=True)
router.register("stores", api.StoreViewSet, basename="store")
router.register("target-groups", api_config.TargetGroupViewSet, basename="target-group")
router.register("templates", api_config.TemplateViewSet, basename="template")
router.register("event-types", api_catalogue.EventTypeViewSet, basename="event-type")

urlpatterns = [
    path("org-settings/", api.OrgSettingsView.as_view(), name="org-settings"),
    *router.urls,
]
