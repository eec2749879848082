"""Customers and enrolment API (contract: shared/API.md, "Customers and enrolment")."""

from __future__ import annotations

import csv
import io
import json
import re

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.text import slugify
from django_filters import rest_framework as filters
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import (
    MAX_ID,
    IdFilter,
    OrgScopedMixin,
    Pagination,
    reject_nul,
    validation_error_to_dict,
)
from common.csv_safe import csv_cell
from common.permissions import ALL_ROLES
from milestones.models import Role, TargetGroup
from milestones.openapi import ItemErrorsField

from . import audiences, services
from .identifiers import IDENTIFIER_TYPES, IdentifierError, country_of, example_mobiles, normalise
from .importing.jobs import import_job_create
from .importing.spec import RowsRefused, cycle_keys, max_bytes, msg_too_big
from .models import (
    AudienceGroup,
    AudienceKind,
    AudienceRefreshStatus,
    Customer,
    Enrolment,
    ImportJob,
    ImportStatus,
)
from .notifications import dec_str
from .selectors import audience_list_identifiers, customers_lookup_many

CUSTOMER_WRITERS = frozenset({Role.CONFIGURER, Role.INTEGRATION})
CONFIGURERS = frozenset({Role.CONFIGURER})
MAX_ITEMS = 10000  # customers in one JSON request: enrolments and audience lists alike
MAX_LISTED_ERRORS = 100


def _refuse_many_items(request) -> Response | None:
    """Refuse a JSON list of more than MAX_ITEMS customers at once, from its length alone:
    before any item is validated or looked up (60,000 items took 15 s and answered a 3 MB
    400 before)."""
    items = request.data.get("customers") if isinstance(request.data, dict) else None
    if isinstance(items, list) and len(items) > MAX_ITEMS:
        return Response(
            {"customers": [f"At most {MAX_ITEMS:,} customers per request, got {len(items):,}: "
                           "send them in several requests or upload a CSV file."]},
            status=status.HTTP_400_BAD_REQUEST,
        )  # fmt: skip
    return None


def _listed(errors: list[str]) -> list[str]:
    """The first MAX_LISTED_ERRORS messages, and how many more there are."""
    if len(errors) <= MAX_LISTED_ERRORS:
        return errors
    more = len(errors) - MAX_LISTED_ERRORS
    return [*errors[:MAX_LISTED_ERRORS], f"... and {more:,} more items with problems."]


_ITEM_MESSAGE = re.compile(r"Item (\d+): (.*)", re.DOTALL)


def _posted_customers(request) -> list:
    items = request.data.get("customers") if isinstance(request.data, dict) else None
    return items if isinstance(items, list) else []


def _item_field(item, message: str, country: str) -> str:
    """The identifier of `item` that `message` is about (the one that does not read), else
    `non_field_errors`: the item as a whole (not an object, no identifier, no such customer)."""
    if isinstance(item, dict):
        for kind in IDENTIFIER_TYPES:
            if item.get(kind) in (None, ""):
                continue
            try:
                normalise(kind, item[kind], country=country)
            except IdentifierError as exc:
                if str(exc) == message:
                    return kind
    return "non_field_errors"


def _with_items(errors: dict, customers: list, organisation) -> dict:
    """A 400's body about a list of `customers`, in the shape every batch endpoint answers:
    `customers` keeps one line per bad item ("Item 2: ...", counted from 1) and `items` gives
    the same by the item's 0-based position and field (`{"1": {"mobile": ["..."]}}`)."""
    messages = errors.get("customers")
    if isinstance(messages, dict):  # DRF's ListField: {position: [messages]}
        messages = [
            f"Item {int(i) + 1}: {m}"
            for i, listed in sorted(messages.items(), key=lambda kv: int(kv[0]))
            for m in listed
        ]
    if not isinstance(messages, list):
        return errors
    country = country_of(organisation)
    items: dict[str, dict[str, list[str]]] = {}
    for message in messages:
        match = _ITEM_MESSAGE.fullmatch(str(message))
        if match is None:  # about the list as a whole ("At most 10,000 ...", "... and N more")
            continue
        index, text = int(match[1]) - 1, match[2]
        item = customers[index] if 0 <= index < len(customers) else None
        field = _item_field(item, text, country)
        items.setdefault(str(index), {}).setdefault(field, []).append(text)
    body = {**errors, "customers": [str(m) for m in messages]}
    if items:
        body["items"] = items
    return body


class CustomerBatchError(serializers.Serializer):
    """400 of a list of customers (enrolments, audience lists). A bad item is named in `items`
    by its 0-based position and field, and in `customers` by a line ("Item 2: ...", counted
    from 1); nothing of the list was saved. Other fields answer `{"field": ["message"]}`."""

    items = ItemErrorsField()
    customers = serializers.ListField(
        child=serializers.CharField(), required=False,
        help_text="One line per bad item (\"Item 2: 'abc' is not a mobile number: it has no "
        "digits.\"), or a problem of the list as a whole (too many items). Kept for older "
        "integrations: read `items`.",
    )  # fmt: skip
    detail = serializers.CharField(
        required=False, help_text="A problem of the request as a whole, in words."
    )


class FileRowError(serializers.Serializer):
    row = serializers.IntegerField(
        help_text="The file's line number (the header is line 1); 0: the file as a whole."
    )
    column = serializers.CharField(allow_blank=True, help_text="The column, if one is at fault.")
    message = serializers.CharField(help_text="What is wrong.")


class AudienceListError(CustomerBatchError):
    """400 of an audience list: a JSON `customers` list answers like every batch (`items`);
    a CSV `file` with bad rows answers `detail`, `error_count` and the first `errors`."""

    error_count = serializers.IntegerField(
        required=False, help_text="How many problems the file has (CSV uploads)."
    )
    errors = FileRowError(many=True, required=False, help_text="The file's problems, by row.")


BATCH_ERROR_400 = OpenApiResponse(
    CustomerBatchError,
    description="Bad input; nothing was saved. A bad item of the list: "
    '`{"items": {"1": {"mobile": ["\'abc\' is not a mobile number: it has no digits."]}}}`.',
)
AUDIENCE_ERROR_400 = OpenApiResponse(
    AudienceListError,
    description="Bad input; nothing was saved. A bad item of a JSON list answers `items`, "
    "bad CSV rows answer `errors`.",
)


def _refuse_big_body(request) -> Response | None:
    """Refuse an upload over the limit from its Content-Length, before reading the body."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > max_bytes() + 64 * 1024:  # room for the multipart envelope and the form fields
        return Response({"file": [msg_too_big(length)]}, status=status.HTTP_400_BAD_REQUEST)
    return None


def _bool(value, default: bool) -> bool:
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValidationError({"non_field_errors": [f"{value!r} is not true or false."]})


def _csv_response(rows: list[list[str]], filename: str) -> HttpResponse:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([[csv_cell(cell) for cell in row] for row in rows])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- customers ---------------------------------------------------------------------------------


class CustomerOut(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = [
            "id", "mobile", "email", "external_id", "name", "joined_on", "is_loyalty_member",
            "attributes", "created_at",
        ]  # fmt: skip
        extra_kwargs = {
            "id": {"help_text": "The customer's id (`/api/v1/customers/{id}/milestones/`)."},
            "mobile": {"help_text": "Mobile in its stored form: E.164 (`+919000000001`) when the organisation has a default country, else digits."},
            "email": {"help_text": "Email address, lower case."},
            "external_id": {"help_text": "Your own customer id."},
            "name": {"help_text": "The customer's name."},
            "joined_on": {"help_text": "When the customer joined the loyalty programme."},
            "is_loyalty_member": {"help_text": "A loyalty member: only members are enrolled automatically by their activity."},
            "attributes": {"help_text": "Free-form facts, name -> value (`{\"city\": \"Pune\"}`), for audience filters."},
            "created_at": {"help_text": "When the customer was created here."},
        }  # fmt: skip


class CustomerIn(serializers.Serializer):
    """A customer, identified by at least one of mobile, email and external_id."""

    mobile = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=40,
        help_text="Mobile number in any common spelling (`9000000001`, `+91 90000 00001`).",
    )  # fmt: skip
    email = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=254,
        help_text="Email address (compared case-insensitively).",
    )  # fmt: skip
    external_id = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=100,
        help_text="Your own customer id.",
    )  # fmt: skip
    name = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="The customer's name."
    )
    joined_on = serializers.DateField(
        required=False, allow_null=True, help_text="When the customer joined the programme."
    )
    is_loyalty_member = serializers.BooleanField(
        required=False, default=True,
        help_text="A loyalty member (default true): only members are enrolled automatically.",
    )  # fmt: skip
    attributes = serializers.DictField(
        required=False, validators=[reject_nul],
        help_text="Free-form facts, name -> value (`{\"city\": \"Pune\"}`), for audience "
        "filters.",
    )  # fmt: skip


class CustomerViewSet(
    OrgScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Customers, found by any identifier: `?mobile=`, `?email=`, `?external_id=` (normalised
    the same way as when they were stored)."""

    queryset = Customer.objects.all()
    serializer_class = CustomerOut
    read_roles = ALL_ROLES
    write_roles = CUSTOMER_WRITERS

    def get_queryset(self):
        qs = super().get_queryset()
        if self.action != "list":
            return qs
        country = country_of(self.request.user.organisation)
        for kind in IDENTIFIER_TYPES:
            raw = self.request.query_params.get(kind)
            if raw not in (None, ""):
                try:
                    qs = qs.filter(**{kind: normalise(kind, raw, country=country)})
                except IdentifierError as exc:
                    raise ValidationError({kind: [str(exc)]})
        return qs

    @extend_schema(
        parameters=[OpenApiParameter(k, str) for k in IDENTIFIER_TYPES],
        responses={200: CustomerOut(many=True)},
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=CustomerIn, responses={201: CustomerOut})
    def create(self, request, *args, **kwargs):
        data = CustomerIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        customer = services.customer_create(
            organisation=request.user.organisation,
            identifiers={k: values.pop(k, None) for k in IDENTIFIER_TYPES},
            **values,
        )
        return Response(CustomerOut(customer).data, status=status.HTTP_201_CREATED)


# --- audience groups ---------------------------------------------------------------------------


class AudienceGroupOut(serializers.ModelSerializer):
    sources = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True, help_text="A merge group's source groups (ids)."
    )
    target_groups = serializers.SerializerMethodField(
        help_text="The milestones that enrol this group (ids)."
    )

    class Meta:
        model = AudienceGroup
        fields = [
            "id", "name", "description", "kind", "filter", "sources", "member_count",
            "refreshed_at", "refresh_status", "refresh_error", "refresh_attempts",
            "refresh_failed_at", "target_groups", "created_at",
        ]  # fmt: skip
        extra_kwargs = {
            "id": {"help_text": "The group's id."},
            "name": {"help_text": "The group's name."},
            "description": {"help_text": "What the group is for."},
            "kind": {"help_text": "list (customers named one by one) | filter (customers matching conditions, recomputed) | merge (the members of other groups)."},
            "member_count": {"help_text": "How many customers are in the group now."},
            "refreshed_at": {"help_text": "When a filter or merge group was last recomputed."},
            "refresh_status": {"help_text": "ok | invalid (the filter no longer holds) | failed (an unexpected error; retried)."},
            "refresh_error": {"help_text": "Why the last refresh did not succeed."},
            "refresh_failed_at": {"help_text": "When the last refresh failed."},
            "created_at": {"help_text": "When the group was created."},
        }  # fmt: skip

    def get_target_groups(self, group) -> list[int]:
        return [link.target_group_id for link in group.target_group_links.all()]


_LIST_CUSTOMERS = (
    f"A list group's customers (up to {MAX_ITEMS:,}), each by identifier: "
    '`[{"mobile": "9000000001"}, {"email": "asha@example.com"}]`. Each must name a customer '
    "of the organisation; a bad item is a 400 with `items`."
)
_LIST_FILE = "Or a CSV file with an identifier column (multipart)."
_LIST_IDENTIFIER_TYPE = "What the CSV's identifier column holds: mobile | email | external_id."
_LIST_IDENTIFIER_COLUMN = "The CSV column's header (default: the identifier type)."
_LIST_SKIP_BAD_ROWS = (
    "Skip the CSV's bad rows and keep the rest (default false: a bad row refuses the file)."
)


class ListUploadIn(serializers.Serializer):
    """The fields of a customer list sent as a CSV file (audience groups and their lists)."""

    file = serializers.FileField(required=False, help_text=_LIST_FILE)
    identifier_type = serializers.ChoiceField(
        choices=IDENTIFIER_TYPES, required=False, help_text=_LIST_IDENTIFIER_TYPE
    )
    identifier_column = serializers.CharField(
        required=False, allow_blank=True, help_text=_LIST_IDENTIFIER_COLUMN
    )
    skip_bad_rows = serializers.BooleanField(
        required=False, default=False, help_text=_LIST_SKIP_BAD_ROWS
    )


class AudienceGroupIn(ListUploadIn):
    name = serializers.CharField(max_length=200, help_text="The group's name.")
    kind = serializers.ChoiceField(
        choices=AudienceKind.choices,
        help_text="list (`customers` or a CSV `file`) | filter (`filter` conditions) | merge "
        "(`sources`).",
    )
    description = serializers.CharField(
        required=False, allow_blank=True, help_text="What the group is for."
    )
    customers = serializers.ListField(
        child=serializers.DictField(), required=False, max_length=MAX_ITEMS,
        help_text=_LIST_CUSTOMERS,
    )  # fmt: skip
    filter = serializers.JSONField(
        required=False, validators=[reject_nul],
        help_text='A filter group\'s conditions, all of which must hold: `{"conditions": '
        '[{"field": "attributes.city", "op": "eq", "value": "Pune"}, {"target": "Target 1", '
        '"achieved": true}]}`.',
    )  # fmt: skip
    sources = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False,
        help_text="A merge group's source groups (ids).",
    )  # fmt: skip


class AudienceCustomersIn(ListUploadIn):
    customers = serializers.ListField(
        child=serializers.DictField(), required=False, max_length=MAX_ITEMS,
        help_text=_LIST_CUSTOMERS,
    )  # fmt: skip


def _rows_refused(refused: RowsRefused) -> Response:
    return Response(
        {
            "detail": f"The file has {refused.count} problems; nothing was saved.",
            "error_count": refused.count,
            "errors": refused.errors,
        },
        status=status.HTTP_400_BAD_REQUEST,
    )


class AudienceGroupViewSet(
    OrgScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Audience groups: `list` (JSON `customers` or a CSV `file`), `filter`, `merge`.

    A list's CSV has an identifier column; unknown or malformed identifiers and duplicates
    are reported by row (400) and nothing is created, unless `skip_bad_rows`.
    """

    queryset = AudienceGroup.objects.prefetch_related("sources", "target_group_links")
    serializer_class = AudienceGroupOut
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    read_roles = ALL_ROLES
    write_roles = CONFIGURERS

    def _list_customers(self, request, data) -> list[int]:
        org = request.user.organisation
        if data.get("file") is not None:
            kind = data.get("identifier_type") or "mobile"
            return audience_list_identifiers(
                organisation=org,
                file=data["file"],
                identifier_type=kind,
                identifier_column=data.get("identifier_column") or kind,
                skip_bad_rows=data.get("skip_bad_rows", False),
            )
        customers = data.get("customers") or []
        ids, errors = customers_lookup_many(organisation=org, items=customers)
        if errors:
            raise serializers.ValidationError(
                _with_items({"customers": _listed(errors)}, customers, org)
            )
        return ids

    @extend_schema(
        request=AudienceGroupIn, responses={201: AudienceGroupOut, 400: AUDIENCE_ERROR_400}
    )
    def create(self, request, *args, **kwargs):
        if (refused := _refuse_big_body(request) or _refuse_many_items(request)) is not None:
            return refused
        data = AudienceGroupIn(data=request.data)
        if not data.is_valid():
            body = _with_items(data.errors, _posted_customers(request), request.user.organisation)
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        values = data.validated_data
        kind = values["kind"]
        filter_def = values.get("filter")
        if isinstance(filter_def, str):
            try:
                filter_def = json.loads(filter_def)
            except ValueError:
                raise ValidationError({"filter": ["The filter is not valid JSON."]})
        try:
            customer_ids = (
                self._list_customers(request, values) if kind == AudienceKind.LIST else None
            )
        except RowsRefused as refused:
            return _rows_refused(refused)
        group = audiences.audience_group_create(
            organisation=request.user.organisation,
            name=values["name"],
            kind=kind,
            description=values.get("description", ""),
            user=request.user,
            customer_ids=customer_ids,
            filter=filter_def,
            sources=values.get("sources"),
        )
        return Response(
            AudienceGroupOut(self.get_queryset().get(pk=group.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        request=AudienceCustomersIn, responses={200: AudienceGroupOut, 400: AUDIENCE_ERROR_400}
    )
    @action(detail=True, methods=["post"])
    def customers(self, request, pk=None):
        """Add customers to a list group (JSON `customers` or a CSV `file`)."""
        if (refused := _refuse_big_body(request) or _refuse_many_items(request)) is not None:
            return refused
        group = self.get_object()
        data = AudienceCustomersIn(data=request.data)
        if not data.is_valid():
            body = _with_items(data.errors, _posted_customers(request), request.user.organisation)
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        try:
            customer_ids = self._list_customers(request, data.validated_data)
        except RowsRefused as refused:
            return _rows_refused(refused)
        audiences.audience_list_add(audience_group=group, customer_ids=customer_ids)
        return Response(AudienceGroupOut(self.get_queryset().get(pk=group.pk)).data)

    @extend_schema(
        request=None,
        responses={
            200: AudienceGroupOut,
            503: inline_serializer(
                "RefreshFailed",
                {"detail": serializers.CharField(help_text="Why the refresh failed; retried.")},
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def refresh(self, request, pk=None):
        """Refresh now: recompute the group, whatever its refresh status. A filter that no
        longer holds is a 400 naming its conditions; an unexpected failure a 503. Either is
        recorded on the group (`refresh_status`, `refresh_error`)."""
        group = self.get_object()
        outcome = audiences.audience_group_refresh_now(audience_group=group)
        if outcome.status == AudienceRefreshStatus.INVALID:
            return Response({"filter": outcome.errors}, status=status.HTTP_400_BAD_REQUEST)
        if outcome.status == AudienceRefreshStatus.FAILED:
            return Response({"detail": outcome.reason}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(AudienceGroupOut(self.get_queryset().get(pk=group.pk)).data)

    @extend_schema(
        responses={
            200: inline_serializer(
                "Members",
                {
                    "customers": serializers.ListField(
                        child=serializers.IntegerField(),
                        help_text="The members' customer ids, in id order.",
                    )
                },
            )
        }
    )
    @action(detail=True, methods=["get"])
    def members(self, request, pk=None):
        group = self.get_object()
        ids = list(group.memberships.order_by("customer_id").values_list("customer_id", flat=True))
        return Response({"customers": ids})

    @extend_schema(responses={(200, "text/csv"): str})
    @action(detail=False, methods=["get"], url_path="sample-csv")
    def sample_csv(self, request):
        """A sample list file: one identifier column (mobile, email or external_id)."""
        kind = request.query_params.get("identifier_type") or "mobile"
        if kind not in IDENTIFIER_TYPES:
            raise ValidationError({"identifier_type": ["Use mobile, email or external_id."]})
        examples = {
            "mobile": example_mobiles(country_of(request.user.organisation), 2),
            "email": ["asha@example.com", "ravi@example.com"],
            "external_id": ["CUST-0001", "CUST-0002"],
        }[kind]
        return _csv_response([[kind], *[[e] for e in examples]], f"audience_sample_{kind}.csv")


# --- enrolments --------------------------------------------------------------------------------


class EnrolmentOut(serializers.ModelSerializer):
    customer = CustomerOut(read_only=True, help_text="The enrolled customer.")

    class Meta:
        model = Enrolment
        fields = ["customer", "source", "is_active", "enrolled_at"]
        extra_kwargs = {
            "source": {"help_text": "How the customer was enrolled: all_customers (by an activity) | audience_group | custom_list | api."},
            "is_active": {"help_text": "False once un-enrolled (the enrolment is kept)."},
            "enrolled_at": {"help_text": "When the customer was enrolled."},
        }  # fmt: skip


class EnrolIn(serializers.Serializer):
    customers = serializers.ListField(
        child=serializers.DictField(), min_length=1, max_length=MAX_ITEMS,
        help_text=f"The customers to enrol (1 to {MAX_ITEMS:,}), each by identifier: "
        '`[{"mobile": "9000000001"}, {"external_id": "CUST-0001"}]`. Unknown customers are '
        "created when the organisation allows it. All or nothing: a bad item is a 400 with "
        "`items`.",
    )  # fmt: skip


def _group(request, pk) -> TargetGroup:
    return get_object_or_404(TargetGroup, pk=pk, organisation_id=request.user.organisation_id)


class TargetGroupEnrolmentsView(APIView):
    """GET the milestone's enrolments (`?active=true|false`); POST
    `{"customers": [{"mobile": "..."}]}` enrols them (unknown customers are created when the
    organisation allows it)."""

    read_roles = ALL_ROLES
    write_roles = CUSTOMER_WRITERS

    @extend_schema(responses={200: EnrolmentOut(many=True)})
    def get(self, request, pk):
        group = _group(request, pk)
        qs = Enrolment.objects.filter(target_group=group).select_related("customer").order_by("id")
        if request.query_params.get("active") not in (None, ""):
            qs = qs.filter(is_active=_bool(request.query_params["active"], True))
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(EnrolmentOut(page, many=True).data)

    @extend_schema(
        request=EnrolIn,
        responses={
            200: inline_serializer(
                "EnrolResult",
                {
                    "enrolled": serializers.IntegerField(help_text="Customers enrolled now."),
                    "already_enrolled": serializers.IntegerField(
                        help_text="Customers that were enrolled already (left as they were)."
                    ),
                    "created_customers": serializers.IntegerField(
                        help_text="Unknown customers created on the way."
                    ),
                    "customer_ids": serializers.ListField(
                        child=serializers.IntegerField(),
                        help_text="The customers' ids, in the order sent.",
                    ),
                },
            ),
            400: BATCH_ERROR_400,
        },
    )
    def post(self, request, pk):
        group = _group(request, pk)
        if (refused := _refuse_many_items(request)) is not None:
            return refused
        org = request.user.organisation
        data = EnrolIn(data=request.data)
        if not data.is_valid():
            body = _with_items(data.errors, _posted_customers(request), org)
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        customers = data.validated_data["customers"]
        try:
            result = services.enrolments_add_by_identifiers(target_group=group, customers=customers)
        except ValidationError as exc:
            body = _with_items(validation_error_to_dict(exc), customers, org)
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return Response(result)


class TargetGroupEnrolmentDetailView(APIView):
    """DELETE un-enrols the customer (the enrolment stays, inactive)."""

    read_roles = ALL_ROLES
    write_roles = CUSTOMER_WRITERS

    @extend_schema(responses={200: EnrolmentOut})
    def get(self, request, pk, customer_id):
        group = _group(request, pk)
        enrolment = get_object_or_404(
            Enrolment.objects.select_related("customer"),
            target_group=group,
            customer__id=customer_id,  # not customer_id: an id past the column's range is "no row"
        )
        return Response(EnrolmentOut(enrolment).data)

    @extend_schema(responses={200: EnrolmentOut})
    def delete(self, request, pk, customer_id):
        group = _group(request, pk)
        customer = get_object_or_404(
            Customer, pk=customer_id, organisation_id=request.user.organisation_id
        )
        enrolment = services.enrolment_remove(target_group=group, customer=customer)
        return Response(EnrolmentOut(Enrolment.objects.get(pk=enrolment.pk)).data)


# --- per-customer target values ----------------------------------------------------------------


class ImportOut(serializers.ModelSerializer):
    import_id = serializers.IntegerField(
        source="id", read_only=True, help_text="The same as `id` (what the upload answered)."
    )
    percent = serializers.IntegerField(read_only=True, help_text="Rows processed, in percent.")

    class Meta:
        model = ImportJob
        fields = [
            "id", "import_id", "target_group", "status", "method", "total", "processed", "percent",
            "errors", "error_count", "skipped_rows", "created_customers", "newly_enrolled",
            "values_written", "values_cleared", "notifications", "identifier_type",
            "identifier_column", "mapping", "send_trigger", "skip_bad_rows", "create_customers",
            "original_name", "size", "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        extra_kwargs = {
            "id": {"help_text": "The import's id (`/api/v1/imports/{id}/`)."},
            "target_group": {"help_text": "The milestone the values are for."},
            "status": {"help_text": "pending | running | done | failed"},
            "method": {"help_text": "How the rows were written (python | postgres_copy; admin: confirmed on the admin's import screen); blank until it runs."},
            "total": {"help_text": "Data rows in the file."},
            "processed": {"help_text": "Rows processed so far."},
            "errors": {"help_text": "The first problems found, `[{\"row\": 12, \"column\": \"P1\", \"message\": \"...\"}]`."},
            "error_count": {"help_text": "How many problems were found in all."},
            "skipped_rows": {"help_text": "Bad rows skipped (with `skip_bad_rows`)."},
            "created_customers": {"help_text": "Unknown customers created."},
            "newly_enrolled": {"help_text": "Customers enrolled by this import."},
            "values_written": {"help_text": "Per-cycle target values written."},
            "values_cleared": {"help_text": "Per-cycle values cleared by a blank cell (the target's default applies again)."},
            "notifications": {"help_text": "Enrolment notifications queued (with `send_trigger`)."},
            "identifier_type": {"help_text": "mobile | email | external_id"},
            "identifier_column": {"help_text": "The identifier column's header."},
            "mapping": {"help_text": "CSV column -> period name (or \"do_not_import\")."},
            "send_trigger": {"help_text": "Enrolment notifications are sent."},
            "skip_bad_rows": {"help_text": "Bad rows are skipped instead of refusing the file."},
            "create_customers": {"help_text": "Unknown customers are created."},
            "original_name": {"help_text": "The uploaded file's name."},
            "size": {"help_text": "The file's size in bytes."},
            "created_at": {"help_text": "When it was uploaded."},
            "started_at": {"help_text": "When processing started."},
            "finished_at": {"help_text": "When processing ended."},
        }  # fmt: skip


class UploadIn(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True,
        help_text="The CSV: an identifier column and one value column per cycle.",
    )
    identifier_type = serializers.ChoiceField(
        choices=IDENTIFIER_TYPES, default="mobile",
        help_text="What the identifier column holds (default mobile).",
    )  # fmt: skip
    identifier_column = serializers.CharField(
        required=False, allow_blank=True, max_length=200,
        help_text="The identifier column's header (default: the identifier type).",
    )  # fmt: skip
    mapping = serializers.JSONField(
        required=False,
        help_text='JSON: CSV column -> period name or "P1".."Pn", or "do_not_import"; '
        "unmapped columns named like a cycle map themselves.",
    )
    send_trigger = serializers.BooleanField(
        required=False, default=True, help_text="Send enrolment notifications (default true)."
    )
    skip_bad_rows = serializers.BooleanField(
        required=False, default=False,
        help_text="Skip bad rows and import the rest (default false: a bad row refuses the file).",
    )  # fmt: skip
    create_customers = serializers.BooleanField(
        required=False, default=True, help_text="Create unknown customers (default true)."
    )


class TargetValuesUploadView(APIView):
    """Upload a custom list: an identifier column and one value column per cycle.

    `mapping` maps each CSV column to a cycle (period name or "P1".."Pn") or to
    "do_not_import"; unmapped columns named like a cycle map themselves. The import runs as
    a task; follow it at `/api/v1/imports/{id}/`.
    """

    parser_classes = [MultiPartParser, FormParser]
    read_roles = ALL_ROLES
    write_roles = CUSTOMER_WRITERS

    @extend_schema(
        request={"multipart/form-data": UploadIn},
        responses={
            202: inline_serializer(
                "ImportStarted",
                {
                    "import": serializers.IntegerField(
                        help_text="The import's id: follow it at `/api/v1/imports/{id}/`."
                    )
                },
            )
        },
    )
    def post(self, request, pk):
        if (refused := _refuse_big_body(request)) is not None:
            return refused
        group = _group(request, pk)
        data = UploadIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        mapping = values.get("mapping")
        if isinstance(mapping, str):
            try:
                mapping = json.loads(mapping) if mapping.strip() else {}
            except ValueError:
                raise ValidationError({"mapping": ["The mapping is not valid JSON."]})
        job = import_job_create(
            target_group=group,
            file=values["file"],
            identifier_type=values["identifier_type"],
            identifier_column=values.get("identifier_column", ""),
            mapping=mapping,
            send_trigger=values["send_trigger"],
            skip_bad_rows=values["skip_bad_rows"],
            create_customers=values["create_customers"],
            user=request.user,
        )
        return Response({"import": job.id}, status=status.HTTP_202_ACCEPTED)


class TargetValuesSampleView(APIView):
    """A sample custom-list CSV for this milestone: identifier + one column per cycle."""

    read_roles = ALL_ROLES

    @extend_schema(responses={(200, "text/csv"): str})
    def get(self, request, pk):
        group = _group(request, pk)
        kind = request.query_params.get("identifier_type") or "mobile"
        if kind not in IDENTIFIER_TYPES:
            raise ValidationError({"identifier_type": ["Use mobile, email or external_id."]})
        _, count = cycle_keys(group)
        periods = dict(group.periods.values_list("ordinal", "name"))
        header = [kind, *[periods.get(n, f"P{n}") for n in range(1, count + 1)]]
        example = {
            "mobile": example_mobiles(country_of(group.organisation), 1)[0],
            "email": "asha@example.com",
            "external_id": "C-1",
        }
        first = list(group.targets.all()[:1])  # one query, not one per cycle
        # Plain digits ("1000", not "1E+3"), so the sample imports as it is.
        values = [dec_str(t.value_for_cycle(n)) for n in range(1, count + 1) for t in first]
        # slugify: a quote or newline in the name must not break the header (newline = 500).
        filename = f"{slugify(group.name) or 'milestone'}_sample.csv"
        return _csv_response([header, [example[kind], *values]], filename)


class ImportFilter(filters.FilterSet):
    # IdFilter: another organisation's milestone id and a missing one answer alike
    target_group = IdFilter(field_name="target_group_id")
    status = filters.ChoiceFilter(choices=ImportStatus.choices)

    class Meta:
        model = ImportJob
        fields = ["target_group", "status"]


class ImportViewSet(OrgScopedMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin,
                    viewsets.GenericViewSet):  # fmt: skip
    """Import status: pending | running | done | failed, rows done of total, and every
    problem found as {"row", "column", "message"}."""

    queryset = ImportJob.objects.all()
    serializer_class = ImportOut
    read_roles = ALL_ROLES
    filterset_class = ImportFilter
