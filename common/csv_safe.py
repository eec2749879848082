"""CSV injection: a text cell that starts with = + - @ (or a tab or carriage return) is read
as a formula by spreadsheets (`=cmd|' /C calc'!A0`). Every hand-written CSV export passes its
cells through `csv_cell`, which prefixes such text with a single quote (OWASP's advice).
Numbers (int, Decimal, float) are written as they are, so -2 stays minus two; the same
characters in text ("-2" as a name) are escaped."""

from decimal import Decimal

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal):
        return str(value)
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text
