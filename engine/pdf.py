"""PDF finishing with pypdf: document metadata and empty signature fields. Knows nothing of
cases or workflows.

Title, author and subject are also set in the .docx core properties before conversion, so the
Info dictionary LibreOffice writes and the XMP packet agree; here we add dealerdocs' own keys
(document number, case, template and hashes) that make a printed-out PDF traceable, and, for
documents that are signed electronically, empty AcroForm ``/Sig`` fields placed where the
template prints the signature labels (found by their text, so editing the template in Word
moves the fields with it), and on every page of an issued document the QR code of its
verification URL (:mod:`engine.qr`).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Mapping

from pypdf import PdfReader, PdfWriter
from pypdf.errors import PyPdfError
from pypdf.generic import (ArrayObject, DecodedStreamObject, DictionaryObject, FloatObject,
                           NameObject, NumberObject, TextStringObject)

from . import qr as qr_code
from .errors import ConversionError, TemplateError
from .pdfa import identification, sync_xmp

# The signature box: from the label's left edge, below its baseline (points; 1 cm ≈ 28.35).
SIG_WIDTH, SIG_HEIGHT, SIG_GAP = 150.0, 56.0, 4.0


@dataclass(frozen=True)
class Placement:
    name: str
    page: int  # 0-based
    rect: tuple[float, float, float, float]


def finish(pdf: bytes, metadata: Mapping[str, str],
           signatures: Mapping[str, str] | None = None, qr: str | None = None) -> bytes:
    """Return ``pdf`` with ``metadata`` merged into its Info dictionary (keys without ``/``),
    an empty signature field named after each key of ``signatures`` at its anchor text and,
    with ``qr`` (a verification URL), that URL's QR code on every page and in the Info key
    ``DealerDocsVerify`` (:mod:`engine.qr`)."""
    if qr:
        metadata = {**metadata, qr_code.INFO_KEY: qr}
    try:
        reader = PdfReader(io.BytesIO(pdf))
        placements = locate_signatures(reader, signatures or {})
        pdfa = identification(reader)
        writer = PdfWriter(clone_from=reader)
        writer.pdf_header = reader.pdf_header   # pypdf's own would say 1.3
        writer.add_metadata({f"/{k}": str(v) for k, v in metadata.items()})
        if placements:
            _add_signature_fields(writer, placements)
        if qr:
            qr_code.draw(writer, qr)
        if pdfa is not None:   # a PDF/A stays one: its XMP says what the Info now says
            sync_xmp(writer, pdfa)
        out = io.BytesIO()
        writer.write(out)
    except (PyPdfError, ValueError) as err:
        raise ConversionError(f"无法完成 PDF（元数据 / 签名域）：{err}") from err
    return out.getvalue()


def locate_signature(reader: PdfReader, name: str, anchor: str) -> Placement:
    """Where the signature box for ``anchor`` goes: below the last occurrence of the text,
    searching from the last page (signature blocks end a document)."""
    return locate_signatures(reader, {name: anchor})[0]


def locate_signatures(reader: PdfReader, anchors: Mapping[str, str]) -> list[Placement]:
    """:func:`locate_signature` for each ``{field name: anchor}``, reading each page's text
    once (pypdf's text extraction is most of finishing's cost), from the last page on and
    no further than the earliest page an anchor needs."""
    found: dict[str, Placement] = {}
    for index in range(len(reader.pages) - 1, -1, -1):
        if len(found) == len(anchors):
            break
        text = _PageText(reader.pages[index])
        for name, anchor in anchors.items():
            if name in found:
                continue
            position = text.last(anchor)
            if position is not None:
                x, y = position
                found[name] = Placement(name, index, (x, y - SIG_GAP - SIG_HEIGHT,
                                                      x + SIG_WIDTH, y - SIG_GAP))
    for name, anchor in anchors.items():
        if name not in found:
            raise TemplateError(f"PDF 中找不到签名位置文字「{anchor}」（签名域 {name}）；"
                                f"模板的签名区须原样包含这段文字", anchor=anchor)
    return [found[name] for name in anchors]


class _PageText:
    """A page's text with where each piece starts (page space), extracted once."""

    def __init__(self, page) -> None:
        self.pieces: list[tuple[int, float, float]] = []
        chunks: list[str] = []
        length = 0

        def visit(chunk, cm, tm, font_dict, font_size):
            nonlocal length
            if not chunk:
                return
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            self.pieces.append((length, x, y))
            chunks.append(chunk)
            length += len(chunk)

        page.extract_text(visitor_text=visit)
        self.text = "".join(chunks)

    def last(self, anchor: str) -> tuple[float, float] | None:
        """Baseline start (x, y) of the last occurrence of ``anchor``, or None."""
        at = self.text.rfind(anchor)
        if at < 0:
            return None
        start = max((p for p in self.pieces if p[0] <= at), key=lambda p: p[0])
        return start[1], start[2]


def _add_signature_fields(writer: PdfWriter, placements: list[Placement]) -> None:
    fields = ArrayObject()
    for p in placements:
        page = writer.pages[p.page]
        widget = DictionaryObject({
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/Widget"),
            NameObject("/FT"): NameObject("/Sig"),
            NameObject("/T"): TextStringObject(p.name),
            NameObject("/Rect"): ArrayObject([FloatObject(round(v, 2)) for v in p.rect]),
            NameObject("/F"): NumberObject(4),  # print
            NameObject("/P"): page.indirect_reference,
            # an empty appearance until signed: PDF/A wants one on every annotation
            NameObject("/AP"): DictionaryObject({NameObject("/N"): _empty_appearance(writer, p)}),
        })
        ref = writer._add_object(widget)
        annots = page.get("/Annots")
        annots = annots.get_object() if annots is not None else None
        if annots is None:
            annots = ArrayObject()
            page[NameObject("/Annots")] = annots
        annots.append(ref)
        fields.append(ref)
    writer._root_object[NameObject("/AcroForm")] = DictionaryObject({
        NameObject("/Fields"): fields,
        NameObject("/SigFlags"): NumberObject(1),  # SignaturesExist
    })


def _empty_appearance(writer: PdfWriter, p: Placement) -> object:
    x0, y0, x1, y1 = p.rect
    form = DecodedStreamObject()
    form.set_data(b"")
    form.update({NameObject("/Type"): NameObject("/XObject"),
                 NameObject("/Subtype"): NameObject("/Form"),
                 NameObject("/BBox"): ArrayObject([FloatObject(0), FloatObject(0),
                                                   FloatObject(round(x1 - x0, 2)),
                                                   FloatObject(round(y1 - y0, 2))])})
    return writer._add_object(form)


def signature_fields(pdf: bytes) -> dict[str, dict[str, object]]:
    """The document's signature fields: ``{name: {"page": n, "rect": [...], "signed": bool}}``."""
    reader = PdfReader(io.BytesIO(pdf))
    out = {}
    for index, page in enumerate(reader.pages):
        for ref in page.get("/Annots") or []:
            annot = ref.get_object()
            if annot.get("/FT") == "/Sig":
                out[str(annot["/T"])] = {"page": index, "rect": [float(v) for v in annot["/Rect"]],
                                         "signed": "/V" in annot}
    return out


def read_metadata(pdf: bytes) -> dict[str, str]:
    """The Info dictionary as plain ``{key: value}`` (keys without ``/``)."""
    meta = PdfReader(io.BytesIO(pdf)).metadata or {}
    return {k.lstrip("/"): str(v) for k, v in meta.items()}
