from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from milestones.tokens import TokenRevokeView


def health(request):
    return JsonResponse({"status": "ok"})


def not_found(request, exception):
    """An unknown API URL (an id that is not a number, say) answers the contract's JSON
    error shape; pages keep Django's 404 page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


handler404 = not_found


urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("health/", health, name="health"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/auth/token/revoke/", TokenRevokeView.as_view(), name="auth-token-revoke"),
    path("api/v1/", include("milestones.urls")),
    path("api/v1/", include("enrolment.urls")),
    path("api/v1/", include("evaluation.urls")),
    path("api/v1/", include("promotions.urls")),
    path("care/", include("membercare.urls")),
]
