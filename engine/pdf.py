"""PDF finishing with pypdf: document metadata. Knows nothing of cases or workflows.

Title, author and subject are also set in the .docx core properties before conversion, so the
Info dictionary LibreOffice writes and the XMP packet agree; here we add dealerdocs' own keys
(document number, case, template and hashes) that make a printed-out PDF traceable.
"""
from __future__ import annotations

import io
from typing import Mapping

from pypdf import PdfReader, PdfWriter
from pypdf.errors import PyPdfError

from .errors import ConversionError


def finish(pdf: bytes, metadata: Mapping[str, str]) -> bytes:
    """Return ``pdf`` with ``metadata`` merged into its Info dictionary (keys without ``/``)."""
    try:
        reader = PdfReader(io.BytesIO(pdf))
        writer = PdfWriter(clone_from=reader)
        writer.add_metadata({f"/{k}": str(v) for k, v in metadata.items()})
        out = io.BytesIO()
        writer.write(out)
    except (PyPdfError, ValueError) as err:
        raise ConversionError(f"无法写入 PDF 元数据：{err}") from err
    return out.getvalue()


def read_metadata(pdf: bytes) -> dict[str, str]:
    """The Info dictionary as plain ``{key: value}`` (keys without ``/``)."""
    meta = PdfReader(io.BytesIO(pdf)).metadata or {}
    return {k.lstrip("/"): str(v) for k, v in meta.items()}
