"""One way to show a number to a person: plain digits, never scientific notation.

`plain` is for what a person edits or exports (form inputs, history, CSV cells): `10000`,
`12000`, `50`, `2500.5`, `0.0001`. `grouped` is for what a person reads in a page: `10,000`,
`2,500.5`. Both drop trailing zeros of stored values (`10000.0000` -> `10000`); neither ever
writes `1E+4`, which is what `str(Decimal("10000").normalize())` gives.
"""

from decimal import Decimal, InvalidOperation


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def plain(value) -> str:
    """`10000.0000` -> `"10000"`, `Decimal("1E+4")` -> `"10000"`, `2500.50` -> `"2500.5"`."""
    number = _decimal(value)
    if number is None:
        return "" if value is None else str(value)
    if number == number.to_integral_value():
        return f"{number.quantize(Decimal(1)):f}"
    return f"{number.normalize():f}"


def grouped(value, empty: str = "—") -> str:
    """`10000.0000` -> `"10,000"`, `2500.5` -> `"2,500.5"`; `empty` for None."""
    number = _decimal(value)
    if number is None:
        return empty if value is None else str(value)
    if number == number.to_integral_value():
        return f"{number.quantize(Decimal(1)):,f}"
    return f"{number.normalize():,f}"
