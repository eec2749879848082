"""Pieces shared by every app's API: org scoping, list paging, error shape."""

import logging
import re

from django import forms
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, InterfaceError, OperationalError
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

MAX_OFFSET = 1_000_000_000
MAX_ID = 2**63 - 1
_WHOLE = re.compile(r"[+-]?[0-9]{1,19}")


class PagingError(ValueError):
    """A `limit` or `offset` that is not a whole number in its range; the message says so."""


def paging_value(raw, name: str, *, default: int, minimum: int, maximum: int) -> int:
    """One paging parameter: absent or blank -> default; otherwise a whole number from
    `minimum` to `maximum`, or PagingError naming it (never clamped or ignored in silence)."""
    if raw is None or str(raw).strip() == "":
        return default
    text = str(raw).strip()
    value = int(text) if _WHOLE.fullmatch(text) else None
    if value is None or not minimum <= value <= maximum:
        shown = text if len(text) <= 30 else text[:27] + "..."
        raise PagingError(
            f"{name} must be a whole number between {minimum} and {maximum}, got {shown!r}."
        )
    return value


class Pagination(LimitOffsetPagination):
    """Lists are plain JSON arrays; `?limit=&offset=` page them, headers tell the total.

    `limit` is 1 to 5,000 (default 1,000) and `offset` 0 to 1,000,000,000; anything else
    (a fraction, `1e20`, a negative number, text) is a 400 naming the parameter.
    """

    default_limit = 1000
    max_limit = 5000

    def _value(self, request, name, **bounds) -> int:
        try:
            return paging_value(request.query_params.get(name), name, **bounds)
        except PagingError as exc:
            raise serializers.ValidationError({name: [str(exc)]}) from None

    def get_limit(self, request):
        return self._value(
            request, self.limit_query_param, default=self.default_limit, minimum=1,
            maximum=self.max_limit,
        )  # fmt: skip

    def get_offset(self, request):
        return self._value(
            request, self.offset_query_param, default=0, minimum=0, maximum=MAX_OFFSET
        )

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": self.max_limit},
            self.offset_query_param: {"minimum": 0, "maximum": MAX_OFFSET},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters

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


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.NumberFilter):
    """A list filter on a reference (`?customer=`, `?target=`, ...): any whole number in the
    id range is accepted and matched inside the caller's organisation, so another
    organisation's id and an id that does not exist answer alike (200, no rows); a fraction,
    text or a number past the range is a 400, whoever's data it would name. (A
    ModelChoiceFilter checks the id against every organisation's rows: 200 for another
    organisation's, 400 for a missing one, which tells them apart.)"""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


def id_param(request, name: str) -> int | None:
    """A reference query parameter outside a FilterSet, with IdFilter's rule and messages."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return forms.IntegerField(min_value=1, max_value=MAX_ID).clean(raw)
    except DjangoValidationError as exc:
        raise serializers.ValidationError({name: exc.messages}) from None


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
