"""Customer identifier normalisation: one rule for the API, CSV imports and lookups."""

import re

IDENTIFIER_TYPES = ("mobile", "email", "external_id")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NON_DIGITS = re.compile(r"[^0-9]")


class IdentifierError(ValueError):
    pass


def normalise_mobile(value) -> str:
    # ASCII digits only (Python's \d would also keep other scripts' digits), the same rule
    # as the SQL fast path's regexp_replace(..., '[^0-9]', '', 'g').
    digits = _NON_DIGITS.sub("", str(value or ""))
    if not digits:
        raise IdentifierError(f"{value!r} is not a mobile number: it has no digits.")
    if not 6 <= len(digits) <= 15:
        raise IdentifierError(f"{value!r} is not a mobile number: it needs 6 to 15 digits.")
    return digits


def normalise_email(value) -> str:
    email = str(value or "").strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise IdentifierError(f"{value!r} is not an email address.")
    return email


def normalise_external_id(value) -> str:
    ext = str(value or "").strip()
    if not ext:
        raise IdentifierError("The external id is empty.")
    if len(ext) > 100:
        raise IdentifierError("The external id is longer than 100 characters.")
    return ext


NORMALISERS = {
    "mobile": normalise_mobile,
    "email": normalise_email,
    "external_id": normalise_external_id,
}


def normalise(kind: str, value) -> str:
    if kind not in NORMALISERS:
        raise IdentifierError(
            f"Unknown identifier type {kind!r}: use mobile, email or external_id."
        )
    return NORMALISERS[kind](value)
