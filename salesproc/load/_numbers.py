"""Numbers written as text: which decimal mark a column uses, decided from its own values.

``1.234,50`` and ``1,234.50`` are the same amount written two ways, and ``1,234`` is either
one thousand two hundred and thirty-four or a little over one. The mark is decided per column
from what its values prove, never from the file's delimiter:

* a value that reads only one way proves the mark: ``12.5``, ``1234.50``, ``1,234.50`` and
  ``1,234,567`` (a second comma) prove a decimal point; ``12,5``, ``1.234,50`` and
  ``1.234.567`` prove a decimal comma;
* a thousands separator is accepted only where it groups digits by three (``1.234.567,00``);
* a column whose values all read both ways, to different numbers (only ``1,234`` or ``1.234``),
  is an :class:`~salesproc.errors.InvalidValueError` naming the value and ``decimal=``;
* the user's ``decimal=`` wins (thousands separators are still checked).

The work is done once per distinct value (vectorised), not per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from salesproc.errors import InvalidValueError

__all__ = ["NumberFormat", "convert_numeric_text", "parse_numbers"]

# what is stripped from amounts before reading: spaces (also as thousands separators) and currency signs
_NOISE = r"[\s\u00a0\u202f$€£¥]"
_EXP = r"(?:[eE][+-]?\d+)?"
# a decimal point, ',' only between groups of three digits; and the mirror image
_POINT = rf"[+-]?(?:(?:\d+|[1-9]\d{{0,2}}(?:,\d{{3}})+)(?:\.\d*)?|\.\d+){_EXP}"
_COMMA = r"[+-]?(?:(?:\d+|[1-9]\d{0,2}(?:\.\d{3})+)(?:,\d*)?|,\d+)"
_OTHER = {".": ",", ",": "."}


@dataclass(frozen=True)
class NumberFormat:
    """How a column writes its numbers: the decimal mark (None: whole numbers only, no mark seen),
    the thousands separator seen (if any), and whether the user gave the mark."""

    decimal: str | None
    thousands: str | None = None
    given: bool = False

    def describe(self) -> str:
        """``decimal point``, ``decimal comma, thousands '.'``, ..."""
        words = {".": "decimal point", ",": "decimal comma", None: "whole numbers"}[self.decimal]
        if self.thousands:
            words += f", thousands {self.thousands!r}"
        return words + (f" (decimal={self.decimal!r})" if self.given else "")

    def example(self) -> str:
        """A number written this way, for messages."""
        if self.decimal == ",":
            return "12.500,50" if self.thousands else "12500,50"
        return "12,500.50" if self.thousands else "12500.50"


@dataclass(frozen=True)
class _Readings:
    """Distinct cleaned texts and what each reads as with a decimal point and with a decimal comma."""

    text: pd.Series
    point: np.ndarray  # float, NaN where the text is no number written with a decimal point
    comma: np.ndarray

    @classmethod
    def of(cls, text: pd.Series) -> _Readings:
        text = text.reset_index(drop=True)
        return cls(text, _read(text, "."), _read(text, ","))

    def decide(self) -> tuple[str | None, int | None]:
        """The decimal mark these values prove (None: they prove none), and the position of a value
        that reads as two different numbers when none is proved (None: no such value)."""
        p_ok, c_ok = ~np.isnan(self.point), ~np.isnan(self.comma)
        need_p = int((p_ok & ~c_ok).sum())
        need_c = int((c_ok & ~p_ok).sum())
        if need_p or need_c:  # a mixed column follows the most of its values; the others are bad
            return ("." if need_p >= need_c else ","), None
        differ = np.flatnonzero(p_ok & c_ok & (self.point != self.comma))
        return None, (int(differ[0]) if len(differ) else None)

    def values(self, decimal: str | None) -> np.ndarray:
        return self.comma if decimal == "," else self.point

    def thousands(self, decimal: str | None) -> str | None:
        """The thousands separator used by the values that read with ``decimal``."""
        sep = _OTHER.get(decimal or ".", ",")
        ok = ~np.isnan(self.values(decimal))
        return sep if bool(self.text[ok].str.contains(sep, regex=False).any()) else None


def _read(text: pd.Series, decimal: str) -> np.ndarray:
    """Each text as a number written with ``decimal`` (NaN where it is not one)."""
    written = text.str.fullmatch(_POINT if decimal == "." else _COMMA).fillna(False).to_numpy(dtype=bool)
    ok = written & text.str.contains(r"\d", regex=True).fillna(False).to_numpy(dtype=bool)
    out = np.full(len(text), np.nan)
    if ok.any():
        t = text[ok].str.replace(_OTHER[decimal], "", regex=False)
        if decimal == ",":
            t = t.str.replace(",", ".", regex=False)
        out[ok] = pd.to_numeric(t, errors="coerce").to_numpy(dtype=float)
    return out


def _numbers_in_objects(values: pd.Series) -> np.ndarray | None:
    """For a column of Python objects: which cells hold numbers (an Excel sheet mixes numbers and
    text), or None when none do."""
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind in ("integer", "floating", "mixed-integer-float", "decimal"):
        return values.notna().to_numpy()
    if kind not in ("mixed", "mixed-integer"):
        return None
    return values.map(
        lambda v: isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
    ).to_numpy(dtype=bool)


def parse_numbers(
    values: pd.Series,
    *,
    decimal: str | None = None,
    source: str = "<data>",
    column: str = "amount",
    rows: Any = None,
    clean: bool = True,
    values_too: bool = True,
) -> tuple[pd.Series, NumberFormat | None]:
    """A column of numbers as floats (NaN where missing or unreadable), and how its text was written.

    ``decimal`` is the user's mark; None decides it from the values. The format is None when no
    cell was text (numbers stay numbers). ``rows`` gives each value's row in the source, for the
    message when the mark cannot be decided; ``clean`` strips spaces and currency signs first;
    ``values_too=False`` decides the format only (the values of text cells are left NaN).

    Examples
    --------
    >>> import pandas as pd
    >>> v, f = parse_numbers(pd.Series(["1.234,50", "2.000", "99,9", None]))
    >>> v.tolist()[:3], f.describe()
    ([1234.5, 2000.0, 99.9], "decimal comma, thousands '.'")
    >>> v, f = parse_numbers(pd.Series(["1234.50", "12.5"]))
    >>> v.tolist(), f.describe()
    ([1234.5, 12.5], 'decimal point')
    >>> try:
    ...     parse_numbers(pd.Series(["1,234", "2,500"]), source="deals.csv", rows=[2, 3])
    ... except ValueError as exc:
    ...     print(str(exc)[:60])
    deals.csv, row 2, column 'amount': found '1,234', expected n
    """
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("float64"), None
    out = np.full(len(values), np.nan)
    is_num = _numbers_in_objects(values) if values.dtype == object else None
    if is_num is not None:
        out[is_num] = values[is_num].to_numpy(dtype=float)
        if is_num.sum() == values.notna().sum():
            return pd.Series(out, index=values.index), None
    is_text, codes, uniq = _distinct_text(values, is_num)  # cleaned and read once per distinct text
    if not len(uniq):
        return pd.Series(out, index=values.index), None
    txt = pd.Series(uniq, dtype=object).astype("str").str.strip()
    r = _Readings.of(txt.str.replace(_NOISE, "", regex=True) if clean else txt)
    fmt = _decide(
        r, decimal, values=values, is_text=is_text, codes=codes, source=source, column=column, rows=rows
    )
    if values_too:
        out[is_text] = np.append(r.values(fmt.decimal), np.nan)[codes]
    return pd.Series(out, index=values.index), fmt


def _distinct_text(values: pd.Series, is_num: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, Any]:
    """Which rows hold text, each one's code into the distinct texts, and those texts. A text
    categorical (a column read dictionary-encoded) already is that: no million-row hashing."""
    if is_num is None and isinstance(values.dtype, pd.CategoricalDtype):
        cat = np.asarray(values.cat.codes)
        is_text = cat >= 0
        codes = cat[is_text]
        if np.bincount(codes, minlength=len(values.cat.categories)).all():  # every category in use
            return is_text, codes, values.cat.categories
    is_text = values.notna().to_numpy() & (~is_num if is_num is not None else True)
    codes, uniq = pd.factorize(values[is_text])
    return is_text, codes, uniq


def _decide(
    r: _Readings,
    decimal: str | None,
    *,
    values: pd.Series,
    is_text: np.ndarray,
    codes: np.ndarray,
    source: str,
    column: str,
    rows: Any,
) -> NumberFormat:
    """The column's format (the given mark, else the one its values prove); raises when the values
    read two ways and none tells which."""
    if decimal is not None:
        return NumberFormat(decimal, r.thousands(decimal), given=True)
    mark, twofold = r.decide()
    if mark is None and twofold is not None:
        pos = int(np.flatnonzero(is_text)[int(np.flatnonzero(codes == twofold)[0])])
        raise ambiguous_number(
            str(values.iloc[pos]).strip(), source=source, column=column,
            row=None if rows is None else int(rows[pos]),
        )
    thousands = r.thousands(mark)
    if mark is None and thousands is None:
        return NumberFormat(None)
    return NumberFormat(mark or ".", thousands)


def ambiguous_number(value: str, *, source: str, column: str, row: int | None) -> InvalidValueError:
    """The error for a column whose numbers read two ways (``1,234``: 1234 or 1.234)."""
    r = _Readings.of(pd.Series([value.replace(" ", "")], dtype="str"))
    as_point, as_comma = (np.format_float_positional(x, trim="-") for x in (r.point[0], r.comma[0]))
    return InvalidValueError(
        source=source, row=row, column=column, value=value,
        expected=(
            f"numbers whose decimal mark the column shows: {value!r} is {as_point} with a decimal point "
            f"and {as_comma} with a decimal comma, and no value in the column tells which"
        ),
        fix=(
            f"say how the file writes numbers: load_history(..., decimal='.') reads {value!r} as {as_point}, "
            f"decimal=',' as {as_comma}."
        ),
    )


def convert_numeric_text(table: Any, *, skip: Sequence[str] = ()) -> Any:
    """A pyarrow table with its text columns that hold numbers only turned into floats, each read
    with the decimal mark its own values prove (columns in ``skip`` are left alone, and so is a
    column whose mark cannot be told: its text is kept as it is).

    The CSV reader leaves every number with a decimal mark as text (so that no mark is assumed);
    this gives the columns that are numbers back as numbers. Numbers written with a plain decimal
    point are checked and cast in pyarrow; others are read once per distinct value.
    """
    import pyarrow as pa

    for i, name in enumerate(table.column_names):
        col = table.column(i)
        if name in skip or not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            continue
        number = _plain_numbers(col)
        if number is None:
            number = _distinct_numbers(col)
        if number is not None:
            table = table.set_column(i, name, number)
    return table


_ANY_NUMBER = f"^(?:{_POINT}|{_COMMA})$"
_PLAIN = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
_TWOFOLD_POINT = r"^[+-]?[1-9]\d{0,2}(?:\.\d{3})+$"  # 1.234: a thousand, or one point two


def _plain_numbers(col: Any) -> Any:
    """A text column of numbers written with a plain decimal point (``12.5``, ``-3``, ``1e3``) as
    floats, cast in pyarrow; None when some value is written otherwise, or when every value with a
    point reads as thousands too (``1.234``: kept as text)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    head = col.slice(0, 1000).drop_null()
    if not len(head) or not pc.all(pc.match_substring_regex(head, _PLAIN)).as_py():
        return None
    if not pc.all(pc.match_substring_regex(col, _PLAIN)).as_py():
        return None
    twofold = not _proves_point(head) and not _proves_point(col)
    if twofold and pc.any(pc.match_substring_regex(col, _TWOFOLD_POINT)).as_py():
        return col  # ambiguous: stays text
    try:
        return pc.cast(col, pa.float64())
    except pa.ArrowInvalid:
        return None


def _proves_point(col: Any) -> bool:
    """Whether some plain number in ``col`` has a point (or exponent) that cannot separate thousands."""
    import pyarrow.compute as pc

    marked = pc.match_substring_regex(col, r"[.eE]")
    return bool(pc.any(pc.and_(marked, pc.invert(pc.match_substring_regex(col, _TWOFOLD_POINT)))).as_py())


def _distinct_numbers(col: Any) -> Any:
    """A text column of numbers written otherwise (``12,5``, ``1,234.50``) as floats, read once per
    distinct value with the mark they prove; None when it is text, or its mark cannot be told."""
    import pyarrow as pa
    import pyarrow.compute as pc

    head = col.slice(0, 1000).drop_null()
    if not len(head) or not pc.all(pc.match_substring_regex(head, _ANY_NUMBER)).as_py():
        return None
    uniq = pc.unique(col).drop_null()
    r = _Readings.of(pd.Series(uniq.to_pylist(), dtype="str"))
    mark, twofold = r.decide()
    parsed = r.values(mark)
    if (mark is None and twofold is not None) or np.isnan(parsed).any():
        return None  # its mark cannot be told, or some values are no numbers: text
    return pc.take(pa.array(parsed, type=pa.float64()), pc.index_in(col, value_set=uniq))
