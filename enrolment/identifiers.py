"""Customer identifier normalisation: one rule for the API, CSV imports, audiences and lookups.

Every identifier is NFKC-normalised (full-width digits and letters become ASCII, a
non-breaking space a space) and loses its invisible characters: format characters (Unicode
category Cf: zero-width spaces and joiners, direction marks, soft hyphens, BOMs), control
characters, and the other default-ignorable code points (variation selectors, Hangul
fillers). Whitespace is trimmed; what remains inside:

- mobile: a leading "+", digits (any script's decimal digits, read as 0-9) and the
  separators space - ( ) . ; anything else is refused by name, never dropped, so a typo
  cannot silently become another valid number. Stored as its digits (6 to 15).
- email: lower case after NFKC (compared case-insensitively); whitespace inside is refused.
- external_id: case kept; runs of whitespace inside become one space.

`normalise(kind, normalise(kind, x)) == normalise(kind, x)`: stored values are already in
normal form, so a lookup by any spelling a person could see as the same finds the same row.
"""

import re
import unicodedata

IDENTIFIER_TYPES = ("mobile", "email", "external_id")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MOBILE_SEPARATORS = " -()."
# Default-ignorable code points that are not in category Cf (those are removed by category).
_IGNORABLE = frozenset(
    [0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180F, 0x3164, 0xFFA0]
    + list(range(0xFE00, 0xFE10))
    + list(range(0xE0100, 0xE01F0))
)


class IdentifierError(ValueError):
    pass


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _invisible(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category == "Cf" or (category == "Cc" and not ch.isspace()) or ord(ch) in _IGNORABLE


def _without_invisible(text: str) -> str:
    return "".join(ch for ch in text if not _invisible(ch))


def visible_text(value, what: str = "an identifier") -> str:
    """NFKC, invisible characters removed, whitespace runs made one space, ends trimmed."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise IdentifierError(f"{_shown(value)} is not {what}: give it as text.")
    text = str(value)
    if text.isascii() and text.isprintable():
        return " ".join(text.split())  # the common case: nothing to normalise
    text = _without_invisible(unicodedata.normalize("NFKC", _without_invisible(text)))
    return " ".join(text.split())


def _ascii_digits(text: str) -> str:
    """Decimal digits of any script (Arabic-Indic, Devanagari, ...) as 0-9."""
    if text.isascii():
        return text
    return "".join(
        str(unicodedata.decimal(ch)) if unicodedata.category(ch) == "Nd" else ch for ch in text
    )


def normalise_mobile(value) -> str:
    text = _ascii_digits(visible_text(value, "a mobile number"))
    body = text[1:] if text.startswith("+") else text
    if not any(ch.isascii() and ch.isdigit() for ch in body):
        raise IdentifierError(f"{_shown(value)} is not a mobile number: it has no digits.")
    for ch in body:
        if not (ch.isascii() and (ch.isdigit() or ch in MOBILE_SEPARATORS)):
            raise IdentifierError(
                f"{_shown(value)} is not a mobile number: {ch!r} (U+{ord(ch):04X}) is not a "
                "digit; use digits, a leading + and the separators space - ( ) . only."
            )
    digits = "".join(ch for ch in body if ch.isdigit())
    if not 6 <= len(digits) <= 15:
        raise IdentifierError(f"{_shown(value)} is not a mobile number: it needs 6 to 15 digits.")
    return digits


def normalise_email(value) -> str:
    email = unicodedata.normalize("NFKC", visible_text(value, "an email address").lower())
    if not _EMAIL.match(email) or len(email) > 254:
        raise IdentifierError(f"{_shown(value)} is not an email address.")
    return email


def normalise_external_id(value) -> str:
    ext = visible_text(value, "an external id")
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


def fragment(kind: str, value) -> str:
    """A part of an identifier to search for ("contains"), in the stored form: a mobile's
    digits, an email in lower case, an external id's visible text."""
    text = visible_text(value)
    if kind == "mobile":
        return "".join(ch for ch in _ascii_digits(text) if ch.isascii() and ch.isdigit())
    if kind == "email":
        return unicodedata.normalize("NFKC", text.lower())
    return text
