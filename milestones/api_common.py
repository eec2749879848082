"""Pieces shared by every app's API: org scoping, list paging, error shape."""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, InterfaceError, OperationalError
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class Pagination(LimitOffsetPagination):
    """Lists are plain JSON arrays; `?limit=&offset=` page them, headers tell the total."""

    default_limit = 1000
    max_limit = 5000

    def get_paginated_response(self, data):
        headers = {"X-Total-Count": str(self.count)}
        next_url = self.get_next_link()
        if next_url:
            headers["Link"] = f'<{next_url}>; rel="next"'
        return Response(data, headers=headers)

    def get_paginated_response_schema(self, schema):
        return schema


def validation_error_to_dict(exc: DjangoValidationError) -> dict:
    if hasattr(exc, "error_dict"):
        out = {}
        for field, errors in exc.message_dict.items():
            out["non_field_errors" if field == "__all__" else field] = errors
        return out
    return {"non_field_errors": exc.messages}


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            {"detail": f"The request body is too large: the limit is {limit:,} bytes."},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RecursionError):
        # A body nested thousands deep ([[[[...]]]]) overflows the JSON parser's stack.
        return Response(
            {"detail": "The input is nested too deeply."}, status=status.HTTP_400_BAD_REQUEST
        )
    if isinstance(exc, DjangoValidationError):
        return Response(validation_error_to_dict(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, IntegrityError):
        return Response(
            {"detail": "This change conflicts with existing data (a unique name or reference)."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, OperationalError | InterfaceError):
        # A lost connection, a deadlock, a server restart: nothing of the request was kept
        # (its transaction rolled back), and the same request can be sent again as it is.
        logging.getLogger(__name__).exception("database error answered as 503")
        response = Response(
            {"detail": "The database is unavailable for a moment: nothing of this request was "
             "stored. Send it again."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )  # fmt: skip
        response["Retry-After"] = "5"
        return response
    return drf_exception_handler(exc, context)


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def reject_nul(value) -> None:
    """Validator for free-form JSON fields (DRF's CharField already refuses NUL): PostgreSQL
    cannot store U+0000 in text or jsonb, so it is a 400 on every database, not a 500."""
    if _has_nul(value):
        raise serializers.ValidationError("Null characters (\\u0000) are not allowed.")


class OrgScopedMixin:
    """Querysets limited to the caller's organisation; creates stamped with it."""

    def get_queryset(self):
        return super().get_queryset().filter(organisation_id=self.request.user.organisation_id)

    def perform_create(self, serializer):
        serializer.save(organisation=self.request.user.organisation)


class OrgSlugRelatedField(serializers.SlugRelatedField):
    """A slug reference resolved inside the caller's organisation only."""

    def get_queryset(self):
        request = self.context["request"]
        return super().get_queryset().filter(organisation_id=request.user.organisation_id)
