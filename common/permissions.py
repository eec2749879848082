"""Role checks for the API. Organisation scoping is done by the querysets (OrgScopedMixin)."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from .roles import Role

ALL_ROLES = frozenset({Role.CONFIGURER, Role.MEMBER_CARE, Role.INTEGRATION})
CONFIG_ROLES = frozenset({Role.CONFIGURER})
CARE_ROLES = frozenset({Role.MEMBER_CARE, Role.CONFIGURER})  # the pages for people


class RolePermission(BasePermission):
    """A view declares `read_roles` and `write_roles`; the user's role must be in the right one.

    Defaults: every role reads, only configurers write.
    """

    message = "Your role does not allow this."

    def has_permission(self, request, view):
        user = request.user
        if not user or not user.is_authenticated:
            return False
        if user.organisation_id is None or not user.is_active:
            return False
        if request.method in SAFE_METHODS:
            roles = getattr(view, "read_roles", ALL_ROLES)
        else:
            roles = getattr(view, "write_roles", CONFIG_ROLES)
        action_roles = getattr(view, "action_roles", {}).get(getattr(view, "action", None))
        if action_roles is not None:
            roles = action_roles
        return user.role in roles


def role_required(*roles):
    """For pages: anonymous -> the login page; signed in with another role (or no
    organisation) -> 403."""
    from functools import wraps

    from django.contrib.auth.decorators import login_required
    from django.core.exceptions import PermissionDenied
    from django.views.decorators.cache import never_cache

    def decorate(view):
        @wraps(view)
        @login_required
        @never_cache
        def wrapped(request, *args, **kwargs):
            if not request.user.has_role(*roles):
                raise PermissionDenied("Your role does not allow this page.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorate
