"""OpenAPI schema hooks (drf-spectacular).

drf-spectacular documents only the success answer of each operation; the API also answers
the errors the contract promises (400 with `{"field": ["message", ...]}` or
`{"detail": "..."}`, 401/403 for tokens and roles, 404 for another organisation's or an
unknown id, 413 for a body over the upload limit). Documenting them lets clients (and the schema fuzzer) tell a promised error
from an undocumented one.
"""

ERROR_DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
VALIDATION_ERROR = {
    "type": "object",
    "description": 'Field name -> list of messages, or {"detail": "..."}.',
    "additionalProperties": {},
}
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
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault("400", _response("Invalid input.", "ValidationError"))
            responses.setdefault("401", _response("No or an unknown token.", "ErrorDetail"))
            responses.setdefault("403", _response("The role does not allow this.", "ErrorDetail"))
            if "{" in path:
                responses.setdefault("404", _response("No such object here.", "ErrorDetail"))
            if "requestBody" in operation:
                responses.setdefault("413", _response("The body is too large.", "ErrorDetail"))
    return result
