"""API routes of the webhooks app."""

from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter(trailing_slash=True)
router.register("webhook-endpoints", api.WebhookEndpointViewSet, basename="webhook-endpoint")

urlpatterns = router.urls
