"""OpenAPI schema hooks (drf-spectacular).

drf-spectacular documents only the success answer of each operation; the API also answers
the errors the contract promises (400 with `{"field": ["message", ...]}` or
`{"detail": "..."}`, 401/403 for tokens and roles, 404 for another organisation's or an
unknown id, 413 for a body over the upload limit). Documenting them lets clients (and the schema fuzzer) tell a promised error
from an undocumented one.

A bad item of a batch (activities, enrolments, audience lists) has one shape everywhere:
`{"items": {"2": {"store": ["..."]}}}`, documented by `ItemErrorsField`.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

ERROR_DETAIL = {
    "type": "object",
    "description": "An error about the request as a whole.",
    "properties": {"detail": {"type": "string", "description": "What went wrong, in words."}},
    "required": ["detail"],
}
VALIDATION_ERROR = {
    "type": "object",
    "description": 'Field name -> list of messages, or {"detail": "..."}.',
    "additionalProperties": {},
}
TOKEN_AUTH = (
    "Send `Authorization: Token KEY` on every request (the key `manage.py create_org` "
    "printed). The scheme word is `Token`: `Bearer KEY` is answered 401 with "
    '`{"detail": "Use \'Authorization: Token <key>\' (not Bearer)."}`.'
)
# Field -> messages; a nested object (`customer`) or list (`line_items`) nests the same shape.
_FIELD_MESSAGES = {
    "anyOf": [
        {"type": "array", "items": {"type": "string"}},
        {"type": "object", "additionalProperties": {}},
        {"type": "array", "items": {"type": "object", "additionalProperties": {}}},
    ],
}
ITEM_ERRORS = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "description": "One bad item: field name -> list of messages (`non_field_errors`: the "
        "item as a whole).",
        "additionalProperties": _FIELD_MESSAGES,
    },
    "example": {"2": {"store": ["Unknown store code 'S9'."]}},
}
ITEM_ERRORS_HELP = (
    'The bad items of the batch by their 0-based position in the list ("2" is the third '
    'item), each mapping a field to its messages: `{"2": {"store": ["..."]}}`. A '
    "nested object or list (`customer`, `line_items`) nests the same shape; "
    "`non_field_errors` is a problem of the item as a whole. Items not named were fine, but "
    "nothing of the batch was stored: fix these and send the whole batch again."
)


@extend_schema_field(ITEM_ERRORS)
class ItemErrorsField(serializers.DictField):
    """`items` of a batch's 400 (documentation only: views build the dict themselves)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", ITEM_ERRORS_HELP)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)


METHODS = ("get", "put", "post", "patch", "delete")


def _response(description: str, component: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
    }


def document_error_responses(result, generator, request, public):
    """POSTPROCESSING_HOOKS entry: add 400/401/403 (404 where the path names an object, 413
    where there is a body) to every operation that does not document them itself."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("ErrorDetail", ERROR_DETAIL)
    schemas.setdefault("ValidationError", VALIDATION_ERROR)
    for scheme in result["components"].get("securitySchemes", {}).values():
        if scheme.get("in") == "header" and scheme.get("name") == "Authorization":
            scheme["description"] = TOKEN_AUTH
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault("400", _response("Invalid input.", "ValidationError"))
            responses.setdefault(
                "401",
                _response(
                    "No token, an unknown or revoked one, or a `Bearer` header (send "
                    "`Authorization: Token KEY`).",
                    "ErrorDetail",
                ),
            )
            responses.setdefault("403", _response("The role does not allow this.", "ErrorDetail"))
            if "{" in path:
                responses.setdefault("404", _response("No such object here.", "ErrorDetail"))
            if "requestBody" in operation:
                responses.setdefault("413", _response("The body is too large.", "ErrorDetail"))
    return result
