from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter(trailing_slash=True)
router.register("stores", api.StoreViewSet, basename="store")

urlpatterns = [
    path("org-settings/", api.OrgSettingsView.as_view(), name="org-settings"),
    *router.urls,
]
