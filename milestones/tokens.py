"""API tokens: revoking them, and the client address sign-in throttling counts failures by.

A user has at most one token (DRF's authtoken). Revoking deletes it: the old key answers 401
from then on. A new one is issued by `manage.py create_org SLUG --user USERNAME ...` (which
reuses the user and creates a fresh token) — never by the revoked key itself.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.response import Response
from rest_framework.views import APIView

from common.permissions import ALL_ROLES

from .models import AuditEntry, User


@transaction.atomic
def token_revoke(*, user: User, by: User) -> bool:
    """Delete the user's API token; True if there was one. Written to the audit trail."""
    deleted, _ = Token.objects.filter(user=user).delete()
    if deleted and user.organisation_id is not None:
        AuditEntry.objects.create(
            organisation_id=user.organisation_id,
            user=by,
            action="token_revoked",
            object_type="user",
            object_id=user.pk,
            object_name=user.username,
        )
    return bool(deleted)


class TokenRevokeView(APIView):
    """POST revokes the caller's own token (any role)."""

    write_roles = ALL_ROLES

    @extend_schema(
        operation_id="auth_token_revoke",
        summary="Revoke the caller's API token",
        description=(
            "Deletes the token the request authenticates with (or, with a signed-in session, "
            "the user's token). Every later request with that token answers 401. A new token "
            "is issued by the operator (`manage.py create_org SLUG --user USERNAME --role ROLE`)."
        ),
        request=None,
        responses={204: OpenApiResponse(description="The token is revoked.")},
        tags=["auth"],
    )
    def post(self, request):
        token_revoke(user=request.user, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


def client_ip(request) -> str | None:
    """The client's address for sign-in throttling: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT
    reverse proxies the address the outermost trusted proxy saw (X-Forwarded-For, from the
    right, so a client cannot choose it by sending the header itself)."""
    count = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if count > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= count:
            return hops[-count]
    return request.META.get("REMOTE_ADDR")
