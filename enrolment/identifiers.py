"""Customer identifier normalisation: one rule for the API, CSV imports, audiences and lookups.

Every identifier is NFKC-normalised (full-width digits and letters become ASCII, a
non-breaking space a space) and loses its invisible characters: format characters (Unicode
category Cf: zero-width spaces and joiners, direction marks, soft hyphens, BOMs), control
characters, and the other default-ignorable code points (variation selectors, Hangul
fillers). Whitespace is trimmed; what remains inside:

- mobile: a leading "+", digits (any script's decimal digits, read as 0-9) and the
  separators space - ( ) . ; anything else is refused by name, never dropped, so a typo
  cannot silently become another valid number. Without a country (the organisation's
  `default_country` blank) it is stored as its digits (6 to 15), as it always was. With one
  ("IN"), it is read by the `phonenumbers` library in that region and stored in E.164:
  `9000000077`, `09000000077`, `+91 90000 00077` and `919000000077` are all `+919000000077`;
  a number that cannot exist there (`is_possible_number` false) is refused by name.
- email: lower case after NFKC (compared case-insensitively); whitespace inside is refused.
- external_id: case kept; runs of whitespace inside become one space.

`normalise(kind, normalise(kind, x)) == normalise(kind, x)` (for the same country): stored
values are already in normal form, so a lookup by any spelling a person could see as the same
finds the same row. Every caller passes the organisation's country (`country_of`).
"""

import re
import unicodedata

import phonenumbers

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


def country_of(organisation) -> str:
    """The region mobiles of this organisation are read in ("" when it has none)."""
    return (getattr(organisation, "default_country", "") or "").strip().upper()


def is_region(code: str) -> bool:
    """A region code the phone-number rules know (ISO 3166 alpha-2, upper case)."""
    return code in phonenumbers.SUPPORTED_REGIONS


_NOT_POSSIBLE = {
    phonenumbers.ValidationResult.TOO_SHORT: "too short",
    phonenumbers.ValidationResult.TOO_LONG: "too long",
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.ValidationResult.INVALID_LENGTH: "wrong number of digits",
    phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "a local number, without its area code",
}


_UNPARSED = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}


def _e164(value, digits: str, plus: bool, country: str) -> str:
    try:
        number = phonenumbers.parse(("+" if plus else "") + digits, country)
    except phonenumbers.NumberParseException as exc:
        reason = _UNPARSED.get(exc.error_type, "not a phone number")
        raise IdentifierError(f"{_shown(value)} is not a mobile number: {reason}.") from None
    # is_possible_number, less its "possible only as a local number" (no area code), which
    # is no E.164 number to store
    verdict = phonenumbers.is_possible_number_with_reason(number)
    if verdict != phonenumbers.ValidationResult.IS_POSSIBLE:
        reason = _NOT_POSSIBLE.get(verdict, "not a possible number")
        region = phonenumbers.region_code_for_country_code(number.country_code)
        where = country if region in (country, phonenumbers.UNKNOWN_REGION) else region
        raise IdentifierError(
            f"{_shown(value)} is not a possible mobile number in {where} "
            f"(+{number.country_code}): {reason}."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_mobile(value, country: str = "") -> str:
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
    if country:
        return _e164(value, digits, text.startswith("+"), country)
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


def normalise(kind: str, value, *, country: str = "") -> str:
    """`value` in its stored form; `country` is the organisation's (`country_of`), which
    only mobiles read."""
    if kind not in NORMALISERS:
        raise IdentifierError(
            f"Unknown identifier type {kind!r}: use mobile, email or external_id."
        )
    if kind == "mobile":
        return normalise_mobile(value, country)
    return NORMALISERS[kind](value)


def example_mobiles(country: str, count: int) -> list[str]:
    """Mobiles for a sample CSV, as a person of the organisation writes them and as they are
    read back to its customers: digits without a "+" (a spreadsheet takes "+..." for a
    formula). With a country, its example mobile numbers in national form (normalised to
    E.164 on import); without one, 10 digits like the stored customers'."""
    if not country:
        return [f"90000000{n:02d}" for n in range(1, count + 1)]
    example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    example = example or phonenumbers.example_number(country)
    if example is None:
        return [f"90000000{n:02d}" for n in range(1, count + 1)]
    national = phonenumbers.national_significant_number(example)
    return [f"{int(national) + n:0{len(national)}d}" for n in range(count)]


def mobile_collisions(rows, country: str) -> dict[str, list[int]]:
    """Customers that would share a mobile once normalised in `country`: {stored form:
    [customer ids, oldest first]} for each form two or more rows reach. `rows` are
    (customer id, mobile) pairs; a mobile that does not normalise is left out (it is
    reported by the caller, not merged)."""
    forms: dict[str, list[int]] = {}
    for customer_id, mobile in rows:
        if not mobile:
            continue
        try:
            form = normalise_mobile(mobile, country)
        except IdentifierError:
            continue
        forms.setdefault(form, []).append(customer_id)
    return {form: sorted(ids) for form, ids in forms.items() if len(ids) > 1}


def fragment(kind: str, value) -> str:
    """A part of an identifier to search for ("contains"), in the stored form: a mobile's
    digits, an email in lower case, an external id's visible text."""
    text = visible_text(value)
    if kind == "mobile":
        return "".join(ch for ch in _ascii_digits(text) if ch.isascii() and ch.isdigit())
    if kind == "email":
        return unicodedata.normalize("NFKC", text.lower())
    return text
