"""Reading spreadsheets row by row (openpyxl's streaming mode): flat memory for any size.

Example:
    >>> rows = read_rows("Annotation_Boxes.xlsx")          # doctest: +SKIP
    >>> next(rows)                                          # doctest: +SKIP
    ('Patient ID', 'Start Row', 'End Row', 'Start Column', 'End Column', 'Start Slice', 'End Slice')
"""
from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

from . import ImporterError


def norm(value) -> str:
    """A header cell compared as text: whitespace runs collapsed, case folded
    (``"Slice Thickness "`` and ``"slice  thickness"`` are the same column)."""
    return " ".join(str(value).split()).casefold() if value is not None else ""


def read_rows(path: str | Path, *, sheet: str | None = None) -> Iterator[tuple]:
    """Every row of one sheet as a tuple of cell values (``None`` for empty cells).

    Args:
        path: the ``.xlsx`` file.
        sheet: the sheet's name; the first sheet if None or absent.

    Raises:
        ImporterError: the file is missing or not a readable ``.xlsx`` workbook (named).
    """
    from openpyxl import load_workbook

    path = Path(path)
    if not path.is_file():
        raise ImporterError(f"{path}: spreadsheet not found")
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImporterError(f"{path}: not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from exc
    try:
        ws = wb[sheet] if sheet and sheet in wb.sheetnames else wb.worksheets[0]
        for row in ws.iter_rows(values_only=True):
            yield row
    finally:
        wb.close()


def sheet_title(path: str | Path, sheet: str | None = None) -> str:
    """The name of the sheet :func:`read_rows` reads (for messages)."""
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True)
    try:
        return sheet if sheet and sheet in wb.sheetnames else wb.sheetnames[0]
    finally:
        wb.close()
