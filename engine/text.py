"""Text hygiene shared by data normalisation and rendering."""
from __future__ import annotations

import re

# XML 1.0 forbids these; docxtpl also gives \a and \f special meanings (new paragraph, page
# break), so they are removed along with the rest. \t and \n are kept (tab, line break).
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")


def clean_text(value: str) -> str:
    """Normalise newlines and drop characters that cannot appear in a Word document."""
    return _ILLEGAL_XML.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
