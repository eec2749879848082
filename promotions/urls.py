from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter(trailing_slash=True)
router.register("promotions", api.PromotionViewSet, basename="promotion")
router.register("awards", api.AwardViewSet, basename="award")
router.register("coupon-series", api.CouponSeriesViewSet, basename="coupon-series")

urlpatterns = [
    *router.urls,
    path(
        "target-groups/<int:pk>/forecast/", api.ForecastView.as_view(), name="target-group-forecast"
    ),
]
