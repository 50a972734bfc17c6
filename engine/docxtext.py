"""The paragraphs of a .docx as Word shows them: body, table cells, headers and footers, each
with a place a person can find in Word ("段落 3", "页眉（header1.xml）表格 1 第 2 行第 1 格").

Shared by the template lint (which checks each paragraph's tags) and ``dealerdocs templates
diff`` (which compares the text of two versions of a template). Reads only; python-docx.
"""
from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docx import Document
from docx.opc.constants import RELATIONSHIP_TYPE as RT

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


@dataclass(frozen=True)
class Paragraph:
    where: str  # "段落 3", "页眉（header1.xml）表格 1 第 2 行第 1 格" …
    text: str
    element: Any  # the w:p
    cell: Any  # the enclosing w:tc element, or None


def nearest(element: Any, tag: str) -> Any:
    return next(element.iterancestors(tag), None)


def own(parent: Any, tag: str, owner_tag: str) -> list[Any]:
    """``tag`` descendants of ``parent`` whose nearest ``owner_tag`` ancestor is ``parent``."""
    return [e for e in parent.iter(tag) if nearest(e, owner_tag) is parent]


def text_of(p: Any) -> str:
    """The text of one w:p (its own runs, not those of a table nested in it)."""
    return "".join(t.text or "" for t in own(p, W + "t", W + "p"))


def open_docx(source: Path | bytes) -> Any:
    """A python-docx Document from a path or bytes (exceptions of python-docx pass through)."""
    return Document(io.BytesIO(source) if isinstance(source, bytes) else str(source))


def parts(doc: Any) -> list[tuple[str, Any]]:
    """(label, root element) of the body, then every header and footer part."""
    found = [("", doc.element.body)]
    rels = sorted((r for r in doc.part.rels.values() if not r.is_external
                   and r.reltype in (RT.HEADER, RT.FOOTER)), key=lambda r: r.target_part.partname)
    for rel in rels:
        kind = "页眉" if rel.reltype == RT.HEADER else "页脚"
        found.append((f"{kind}（{Path(rel.target_part.partname).name}）", rel.target_part.element))
    return found


def paragraphs_of(label: str, root: Any) -> Iterator[Paragraph]:
    """Every paragraph of one part, in document order, with its place."""
    tables = {t: i for i, t in enumerate(root.iter(W + "tbl"), 1)}
    count = 0
    for p in root.iter(W + "p"):
        text, cell = text_of(p), nearest(p, W + "tc")
        if cell is None:
            count += 1
            where = f"段落 {count}"
        else:
            row = nearest(cell, W + "tr")
            table = nearest(row, W + "tbl")
            where = (f"表格 {tables[table]} 第 {own(table, W + 'tr', W + 'tbl').index(row) + 1} 行"
                     f"第 {own(row, W + 'tc', W + 'tr').index(cell) + 1} 格")
        yield Paragraph(f"{label}{where}", text, p, cell)


def paragraphs(doc: Any) -> Iterator[Paragraph]:
    """Every paragraph of the body, then of each header and footer."""
    for label, root in parts(doc):
        yield from paragraphs_of(label, root)
