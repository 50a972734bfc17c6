"""A spreadsheet read as a table: the first worksheet of an .xlsx file, its first row the column
names, each later row with its row number as Excel shows it (``dealerdocs import``).

Cells are kept as openpyxl gives them (text, int, float, bool, datetime; formulas as their last
computed value), so whoever knows the columns' meaning converts them. Blank rows are left out.
openpyxl is loaded only when a file is read: commands that never read one start fast.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError


@dataclass(frozen=True)
class Sheet:
    """A table read from a spreadsheet: ``header`` (row 1's cells) and the data ``rows``,
    each ``(row number, cells)``; ``source`` names the file in messages."""

    source: str
    header: tuple[Any, ...]
    rows: tuple[tuple[int, tuple[Any, ...]], ...]


def column_letter(index: int) -> str:
    """Excel's name of the column at ``index`` (0 → A, 26 → AA)."""
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def read_xlsx(source: Path | bytes, name: str | None = None) -> Sheet:
    """The first worksheet of an .xlsx file (a path, or its bytes: an upload); ``name`` is
    how messages call it (default: the file's name). A file that is missing, not .xlsx, or
    has no column names is refused with :class:`InputError`."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    label = name or (Path(source).name if isinstance(source, (str, Path)) else "表格")
    try:
        book = load_workbook(io.BytesIO(source) if isinstance(source, bytes) else source,
                             data_only=True)
    except FileNotFoundError:
        raise InputError(f"找不到文件 {source}", field="file") from None
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError) as err:
        raise InputError(f"{label} 不是 .xlsx 文件（Excel 2007 及以后的格式；.xls 或 .csv 请先在 "
                         f"Excel / WPS 中另存为 .xlsx）", field="file") from err
    except OSError as err:
        raise InputError(f"无法读取 {label}：{err.strerror or err}", field="file") from err
    try:
        found = list(enumerate(book.worksheets[0].iter_rows(values_only=True), start=1)) \
            if book.worksheets else []
    finally:
        book.close()
    if not found or all(is_blank(v) for v in found[0][1]):
        raise InputError(f"{label} 的第 1 行应为列名（如 客户姓名、联系电话），但它是空的",
                         field="file")
    (_, header), *rest = found
    rows = tuple((number, _trimmed(cells)) for number, cells in rest
                 if not all(is_blank(v) for v in cells))
    return Sheet(label, _trimmed(header), rows)


def _trimmed(cells: tuple[Any, ...]) -> tuple[Any, ...]:
    """The cells without the blank ones at the end of the row."""
    end = len(cells)
    while end and is_blank(cells[end - 1]):
        end -= 1
    return cells[:end]
