"""Text hygiene for everything a person types that ends up in a document, a register, a file
name or a page: one place, so every field gets the same treatment.

Removed: characters XML 1.0 forbids (docxtpl also gives ``\\a`` and ``\\f`` special meanings:
new paragraph, page break), other control characters (C0 but tab and newline, DEL, C1),
and the Unicode direction controls (U+202A–U+202E embeddings and overrides, U+2066–U+2069
isolates, U+200E/U+200F/U+061C marks): a right-to-left override can make a name or a file
name read differently from what it is ("gnp.exe" shown as "exe.png").
"""
from __future__ import annotations

import re

_REMOVED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
                      "\u2066-\u2069\ufffe\uffff\ud800-\udfff]")


def clean_text(value: str) -> str:
    """Normalise newlines and drop what cannot or must not appear in a document."""
    return _REMOVED.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def clean_line(value: str, *, max_length: int | None = None) -> str:
    """:func:`clean_text` on one line: runs of whitespace (newlines too) become one space,
    ends are trimmed. Raises ``ValueError`` (Chinese) when longer than ``max_length``."""
    text = " ".join(clean_text(value).split())
    if max_length is not None and len(text) > max_length:
        raise ValueError(f"过长：{len(text)} 个字符，最多 {max_length} 个")
    return text
