"""The QR code on every page of an issued PDF: what it says and where it is drawn.

A reader of a printed page scans it and lands on the store's public verification page,
``{base_url}/v/<number>?v=<version>&h=<short hash>`` (``engine/web/verify.py``), or runs
``dealerdocs check FILE.pdf``. Knows nothing of cases or stores: text in, PDF pages out.

**The short hash** is the first 16 hex digits (64 bits) of the sha256 of the document's
**.docx** (``DealerDocsDocxSHA256``, the register's ``docx_sha256``). Why that one:

- the QR is inside the PDF, so it cannot carry the PDF's own hash; the .docx is what the PDF
  was converted from, it is hashed before the PDF exists, and it is unique to one issue (the
  number, version and date are printed in it);
- it is recorded in the register forever, so the check needs no key: a lost or rotated secret
  (a keyed hash's weakness) would turn every paper ever printed into "does not match", and
  ``dealerdocs check`` works from the register alone;
- 64 bits cannot be guessed, so the public page can show a document's facts only to someone
  who holds the paper (a wrong ``h`` shows nothing), while the QR stays small (version 5 at
  error level M for a typical address).

The number and version travel beside it in the URL, and the page requires all three to agree
with the register: a QR copied onto another paper leads to the facts of the document it was
copied from, never to a "valid" for the paper it is on (the PDF's own bytes are compared by
uploading the file, or by ``check``).

**The drawing** is vector (one filled rectangle per run of dark modules, plain DeviceRGB
black, no transparency: PDF/A-friendly) in one Form XObject shared by every page, placed by
two small content streams wrapped around each page's own (``q`` … ``Q``), so LibreOffice's
bytes stay as they are and nothing is re-laid out. Where: the bottom-left corner, inside the
left (25 mm) and bottom (20 mm) margins of the house templates, clear of the centred footer;
a template with narrower margins must keep that corner free (templates/README.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit


__all__ = ["HASH_CHARS", "Payload", "short_hash", "verification_url", "parse_url", "draw",
           "payload_in", "read_pages", "INFO_KEY", "PT_PER_MM", "SIZE_MM", "LEFT_MM",
           "BOTTOM_MM"]

HASH_CHARS = 16
INFO_KEY = "DealerDocsVerify"  # the URL, also in the Info dictionary (check without a decoder)

PT_PER_MM = 72 / 25.4
SIZE_MM = 17.0    # the symbol without its quiet zone; modules of about 0.45 mm
LEFT_MM = 6.0     # from the page's left edge (printers leave 4–5 mm unprinted)
BOTTOM_MM = 5.0   # from the page's bottom edge: top at 22 mm, beside the text column's 25 mm

_XOBJECT = "/DealerDocsQR"
_HEX = re.compile(r"^[0-9a-f]{%d}$" % HASH_CHARS)
_PATH = re.compile(r"^(?P<prefix>.*)/v/(?P<number>[^/?#]+)$")


@dataclass(frozen=True)
class Payload:
    """What a page's QR says: the document's number and version, and its short hash."""

    number: str
    version: int
    h: str


def short_hash(docx_sha256: str) -> str:
    """The short hash of a document whose .docx has ``docx_sha256`` (module docstring)."""
    if not re.fullmatch(r"[0-9a-f]{64}", docx_sha256 or ""):
        raise ValueError(f"not a sha256 in hex: {docx_sha256!r}")
    return docx_sha256[:HASH_CHARS]


def verification_url(base_url: str, number: str, version: int, docx_sha256: str) -> str:
    """``{base_url}/v/<number>?v=<version>&h=<short hash>``."""
    return (f"{base_url.rstrip('/')}/v/{quote(number, safe='')}"
            f"?v={int(version)}&h={short_hash(docx_sha256)}")


def parse_url(text: str) -> Payload | None:
    """The payload of a verification URL (any base address), or None if ``text`` is not
    one: a path ending in ``/v/<number>`` with a version and a 16-digit hex hash."""
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        return None
    found = _PATH.match(parts.path)
    query = parse_qs(parts.query)
    version, h = query.get("v", [""])[0], query.get("h", [""])[0]
    if found is None or not version.isdigit() or not _HEX.match(h):
        return None
    return Payload(found.group("number"), int(version), h)


def modules(text: str) -> list[bytearray]:
    """The QR symbol of ``text`` as rows of 0/1 (1 = dark), without quiet zone: segno, a
    pure-Python encoder without dependencies that follows ISO/IEC 18004 closely; error level
    M (15 % may be soiled or folded) and never a Micro QR, which many phone readers skip."""
    import segno

    return [bytearray(row) for row in segno.make(text, error="m", boost_error=False,
                                                 micro=False).matrix]


def _form_content(matrix: list[bytearray]) -> bytes:
    """The symbol in a 1-unit-per-module space, y up: one rectangle per horizontal run."""
    n = len(matrix)
    ops = ["0 0 0 rg"]
    for row_index, row in enumerate(matrix):
        y = n - 1 - row_index
        x = 0
        while x < n:
            if row[x]:
                start = x
                while x < n and row[x]:
                    x += 1
                ops.append(f"{start} {y} {x - start} 1 re")
            else:
                x += 1
    ops.append("f")
    return "\n".join(ops).encode("ascii")


def draw(writer: Any, text: str, corners: list[tuple[float, float]]) -> None:
    """Draw the QR code of ``text`` on every page of ``writer`` (pyHanko's incremental
    writer; ``corners``: each page's crop box's bottom-left corner, as the page stands before
    any /Rotate), in the bottom-left corner of its visible area. The page's own content is
    wrapped in q … Q, so whatever it leaves in the graphics state cannot move the code."""
    # pyHanko loads here: the register's readers (the public facts, ``check``) need the
    # payload functions above, and commands that only read must not load the PDF stack
    from pyhanko.pdf_utils import generic

    matrix = modules(text)
    n = len(matrix)
    form = generic.StreamObject({
        generic.pdf_name("/Type"): generic.pdf_name("/XObject"),
        generic.pdf_name("/Subtype"): generic.pdf_name("/Form"),
        generic.pdf_name("/BBox"): generic.ArrayObject(
            [generic.FloatObject(0), generic.FloatObject(0), generic.FloatObject(n),
             generic.FloatObject(n)]),
        generic.pdf_name("/Resources"): generic.DictionaryObject(),
    }, stream_data=_form_content(matrix))
    form_ref = writer.add_object(form)
    resources = generic.DictionaryObject({generic.pdf_name("/XObject"): generic.DictionaryObject(
        {generic.pdf_name(_XOBJECT): form_ref})})
    scale = SIZE_MM * PT_PER_MM / n
    opening = writer.add_object(generic.StreamObject(stream_data=b"q\n"))
    closings: dict[tuple[float, float], Any] = {}
    for index, (left, bottom) in enumerate(corners):
        corner = (round(left, 2), round(bottom, 2))
        if corner not in closings:
            x = corner[0] + LEFT_MM * PT_PER_MM
            y = corner[1] + BOTTOM_MM * PT_PER_MM
            closings[corner] = writer.add_object(generic.StreamObject(
                stream_data=f"\nQ\nq {scale:.5f} 0 0 {scale:.5f} {x:.3f} {y:.3f} cm "
                            f"{_XOBJECT} Do Q\n".encode("ascii")))
        writer.add_stream_to_page(index, opening, prepend=True)
        _, own = writer.find_page_for_modification(index)
        xobjects = own.get_object().get("/XObject")   # pages often share one dictionary
        known = xobjects is not None and _XOBJECT in xobjects.get_object()
        writer.add_stream_to_page(index, closings[corner], resources=None if known else resources)


def payload_in(pdf: bytes) -> Payload | None:
    """The payload of a finished PDF: from its Info dictionary (``DealerDocsVerify``), or, when
    another program dropped that, read off its pages (:func:`read_pages`) if zbar is there;
    None if neither gives a verification URL."""
    import io

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        info = PdfReader(io.BytesIO(pdf)).metadata or {}
    except (PyPdfError, ValueError) as err:
        raise ValueError(f"PDF 无法读取：{err}") from err
    found = parse_url(str(info.get(f"/{INFO_KEY}", "")))
    if found is not None:
        return found
    import subprocess

    try:
        texts = read_pages(pdf)
    except (ImportError, OSError, subprocess.SubprocessError):
        return None  # no zbar or no poppler here: the metadata was the way
    return next((p for p in map(parse_url, texts) if p is not None), None)


def read_pages(pdf: bytes, dpi: int = 150) -> list[str]:
    """The texts of the QR codes on the pages of ``pdf``, rendered by poppler's pdftoppm and
    read by zbar (pyzbar, which needs Debian's libzbar0; ImportError without it)."""
    import subprocess
    import tempfile
    from pathlib import Path

    from pyzbar.pyzbar import decode

    with tempfile.TemporaryDirectory(prefix="dealerdocs-qr-") as folder:
        source = Path(folder) / "in.pdf"
        source.write_bytes(pdf)
        subprocess.run(["pdftoppm", "-gray", "-r", str(dpi), str(source),
                        str(Path(folder) / "page")], check=True, capture_output=True, timeout=120)
        texts = []
        for image in sorted(Path(folder).glob("page-*.pgm")):
            data = image.read_bytes()
            header = re.match(rb"P5\s+(\d+)\s+(\d+)\s+255\s", data)
            if header is None:
                continue
            width, height = int(header.group(1)), int(header.group(2))
            texts += [c.data.decode("utf-8", "replace")
                      for c in decode((data[header.end():], width, height))]
    return texts
