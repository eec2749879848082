from django.contrib import admin
from django.http import JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import include, path
from django.views.defaults import page_not_found
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from milestones.tokens import TokenRevokeView
from milestones_site.metrics import health_view, metrics_view


def not_found(request, exception):
    """An unknown API URL (an id that is not a number, say) answers the contract's JSON
    error shape; pages keep Django's 404 page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


handler404 = not_found

ROLE_HOME = {"member_care": "/care/", "configurer": "/admin/", "integration": "/api/docs/"}
ROLE_MAY_DO = {
    "configurer": "As a configurer you build milestones, audiences and promotions, upload "
    "target values and read insights and member care.",
    "member_care": "As a member-care agent you find customers and read their milestone "
    "timelines, cycle by cycle.",
    "integration": "An integration account works through the REST API (see the API docs).",
}


def home_for(user) -> str:
    if user.is_authenticated and user.is_superuser and not user.organisation_id:
        return "/admin/"
    return ROLE_HOME.get(getattr(user, "role", ""), "/admin/")


def forbidden(request, exception=None):
    """A refused page names what the role may do and links home; the API keeps its JSON."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Your role does not allow this."}, status=403)
    user = request.user
    role = getattr(user, "role", "") if user.is_authenticated else ""
    context = {
        "home": home_for(user),
        "role_label": user.get_role_display() if role else "",
        "may_do": ROLE_MAY_DO.get(role, "Ask your organisation's configurer for access."),
        "title": "Not allowed",
    }
    return TemplateResponse(request, "403.html", context, status=403)


handler403 = forbidden


def start(request):
    """Where people land: agents on member care, configurers on the admin."""
    return redirect(home_for(request.user) if request.user.is_authenticated else "/admin/")


def admin_index(request, extra_context=None):
    """The admin's index, except for member-care agents, whose start page is member care."""
    if request.user.is_authenticated and getattr(request.user, "role", "") == "member_care":
        return redirect("/care/")
    return admin.site.index(request, extra_context)


urlpatterns = [
    path("", start),
    path("health/", health_view, name="health"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.admin_view(admin_index)),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/auth/token/revoke/", TokenRevokeView.as_view(), name="auth-token-revoke"),
    path("api/v1/", include("milestones.urls")),
    path("api/v1/", include("enrolment.urls")),
    path("api/v1/", include("evaluation.urls")),
    path("api/v1/", include("promotions.urls")),
    path("api/v1/", include("webhooks.urls")),
    path("api/v1/", include("simulations.urls")),
    path("care/", include("membercare.urls")),
    path("simulations/", include("simulations.page_urls")),
]
