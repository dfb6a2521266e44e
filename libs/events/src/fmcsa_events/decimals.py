"""Exact numbers from upstream data: every number an upstream sends is a `Decimal`, never a float.

QCMobile serves out-of-service rates as JSON numbers with up to 38 decimals (an Oracle NUMBER), BASIC
measures and percentiles as numeric or percent strings, SaferWebAPI percents like `"13.33%"`. A float
keeps about 17 significant digits, and `Decimal`'s default context rounds arithmetic and `normalize()`
to 28: both would make two values that differ in the 30th decimal look equal, and would store a value
other than the one sent. So:

- `loads` parses JSON with every number that has a fraction or an exponent as a `Decimal` (integers
  stay `int`); `NaN` and `Infinity` become `Decimal` too, so the parsers refuse them as a wrong shape.
- `exact` spells a value one way without rounding anything (`0.50` -> `0.5`, `1E+1` -> `10`, `-0` ->
  `0`) and refuses what cannot be stored: not finite, or beyond `MAX_INTEGER_DIGITS` digits before the
  point or `MAX_DECIMALS` after it (after trailing zeros are dropped).
- `text` is the canonical plain text of such a value (no exponent): what the sources store, hash and
  put in events (`CarrierDataChanged.before/after`, `SourceSynced.summary`). `Decimal(text(x)) == x`.
- `difference` subtracts exactly (a context wide enough for any two bounded values, `Inexact` trapped).

There is no rounding anywhere on the way from the upstream's body to a store row or an event.
"""

from __future__ import annotations

import json
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, Inexact, InvalidOperation, Overflow
from typing import Any, Final

MAX_INTEGER_DIGITS: Final = 18
"""Digits before the point an upstream number may have (a count, an amount, a percent: far fewer)."""

MAX_DECIMALS: Final = 50
"""Digits after the point an upstream number may have (QCMobile sends up to 38)."""

MAX_TEXT_LENGTH: Final = 1 + MAX_INTEGER_DIGITS + 1 + MAX_DECIMALS
"""The longest `text` of a value `exact` accepts: sign, integer digits, point, decimals (70)."""

_EXACT: Final = Context(
    prec=MAX_INTEGER_DIGITS + MAX_DECIMALS + 2,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[InvalidOperation, Inexact, Overflow],
)
"""Wide enough that adding or subtracting two bounded values is exact; an inexact result raises."""


def loads(body: bytes | str) -> Any:
    """`json.loads` without floats: a JSON number with a fraction or exponent is a `Decimal`."""
    return json.loads(body, parse_float=Decimal, parse_constant=Decimal)


def exact(value: Decimal) -> Decimal:
    """The canonical `Decimal` equal to `value` (see the module docstring); raises ValueError for a
    value that is not finite or beyond the bounds. Nothing is rounded.
    """
    if not value.is_finite():
        raise ValueError(f"{value} is not a finite number")
    if value.is_zero():
        return Decimal(0)
    digits = len(value.as_tuple().digits)
    # normalize() rounds to its context's precision: with as many digits as the value has, it cannot
    reduced = value.normalize(Context(prec=digits, Emax=MAX_EMAX, Emin=MIN_EMIN))
    exponent = reduced.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if reduced.adjusted() >= MAX_INTEGER_DIGITS:
        raise ValueError(f"a number with more than {MAX_INTEGER_DIGITS} digits before the point")
    if -exponent > MAX_DECIMALS:
        raise ValueError(f"a number with more than {MAX_DECIMALS} decimals")
    return Decimal(format(reduced, "f"))


def text(value: Decimal) -> str:
    """The canonical plain text of `value`: `"16.67"`, `"0.5"`, `"10"`, `"0"`; never an exponent."""
    return format(exact(value), "f")


def difference(minuend: Decimal, subtrahend: Decimal) -> Decimal:
    """`minuend - subtrahend`, exactly (values within the bounds of `exact`; raises otherwise)."""
    return _EXACT.subtract(exact(minuend), exact(subtrahend))
