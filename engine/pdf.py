"""PDF finishing: document metadata, empty signature fields and the QR code, appended to
LibreOffice's PDF as one incremental update. Knows nothing of cases or workflows.

Why an incremental update (pyHanko's writer) rather than pypdf rewriting the file: a PDF/A
from LibreOffice is tagged (some 1,000 objects for a five-page contract), and a rewrite clones
and writes every one (≈ 70 ms and more, issue 20); an update reads what it changes and appends
only that (≈ 5 ms), and LibreOffice's header, identification and structure stay as made. pypdf
still reads the pages' text and geometry, lazily (where the signature labels are).

Title, author and subject are also set in the .docx core properties before conversion, so the
Info dictionary LibreOffice writes and the XMP packet agree; here we add dealerdocs' own keys
(document number, case, template and hashes) that make a printed-out PDF traceable, and, for
documents that are signed electronically, empty AcroForm ``/Sig`` fields placed where the
template prints the signature labels, and on every page of an issued document the QR code of
its verification URL (:mod:`engine.qr`).

Where the labels are: the renderer bookmarks each label's last occurrence
(:func:`signature_bookmarks`, :mod:`engine.bookmarks`) and LibreOffice exports the bookmarks
as named destinations, which finishing reads (a few objects); a label the renderer could not
mark (in a header, or a PDF from elsewhere) is found by the pages' text, which pypdf extracts
(≈ 25 ms for a five-page contract, most of what finishing cost before, issue 20). Either way
the label's text is the anchor, so editing the template in Word moves the fields with it.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Mapping

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from . import qr as qr_code
from .errors import ConversionError, TemplateError

# The signature box: from the label's left edge, below its baseline (points; 1 cm ≈ 28.35).
SIG_WIDTH, SIG_HEIGHT, SIG_GAP = 150.0, 56.0, 4.0
# A named destination gives the top of the label's line, not its baseline: the line is taken as
# this tall (the contract's 10.5 pt labels have their baseline 12.9 pt below the top, measured;
# a label in much larger type than 14 pt would have the box touch its lower edge).
LABEL_LINE = 16.0


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
    ``DealerDocsVerify`` (:mod:`engine.qr`). A PDF/A stays one: the XMP analogues of the
    Info entries are updated with them."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.sign import fields

    if qr:
        metadata = {**metadata, qr_code.INFO_KEY: qr}
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        pages = _pages(writer.root)
        placements = _placements(pdf, writer.root, pages, signatures or {})
        _set_metadata(writer, metadata)
        for p in placements:
            fields.append_signature_field(writer, fields.SigFieldSpec(
                p.name, on_page=p.page, box=tuple(round(v, 2) for v in p.rect)))
        if qr:
            qr_code.draw(writer, qr, [corner for _, corner in pages])
        one_producer(writer)
        out = io.BytesIO()
        writer.write(out)
    except (PyPdfError, PdfError, ValueError, KeyError, TypeError) as err:
        raise ConversionError(f"无法完成 PDF（元数据 / 签名域）：{err}") from err
    return out.getvalue()


def signature_bookmarks(signatures: Mapping[str, str] | None) -> dict[str, str]:
    """The bookmarks the renderer puts at the signature labels (``{field name: label}``):
    ``{bookmark name: label}``, named by the field's place in ``signatures`` (letters and
    digits only, which LibreOffice exports as they are, and short, as Word wants them)."""
    return {f"DealerDocsSig{i}": anchor for i, anchor in enumerate((signatures or {}).values(), 1)}


def _placements(pdf: bytes, root, pages: list, signatures: Mapping[str, str]) -> list[Placement]:
    """Where each signature field goes: below its label's named destination, or, for a label
    that has none, below the label's text (:func:`locate_signatures`)."""
    where = _destinations(root)
    index = {ref: i for i, (ref, _) in enumerate(pages)}
    found: dict[str, Placement] = {}
    for (name, _), bookmark in zip(signatures.items(), signature_bookmarks(signatures)):
        dest = where.get(bookmark)
        if dest is not None and dest[0] in index:
            page, (x, top) = index[dest[0]], dest[1]
            y = top - LABEL_LINE
            found[name] = Placement(name, page, (x, y - SIG_GAP - SIG_HEIGHT,
                                                 x + SIG_WIDTH, y - SIG_GAP))
    rest = {name: anchor for name, anchor in signatures.items() if name not in found}
    if rest:
        found.update((p.name, p) for p in locate_signatures(PdfReader(io.BytesIO(pdf)), rest))
    return [found[name] for name in signatures]


def _pages(root) -> list[tuple[tuple[int, int], tuple[float, float]]]:
    """Each page's object (number, generation) and its crop box's bottom-left corner (the
    /CropBox or else /MediaBox, both inherited down the page tree), in page order."""
    out = []
    seen: set[tuple[int, int]] = set()

    def walk(ref, inherited: dict) -> None:
        if (ref.idnum, ref.generation) in seen:
            raise ValueError("页面树有环")   # a broken PDF: ConversionError, not a hang
        seen.add((ref.idnum, ref.generation))
        node = ref.get_object()
        boxes = {**inherited, **{k: node[k] for k in ("/MediaBox", "/CropBox") if k in node}}
        if node.get("/Type") == "/Pages" or "/Kids" in node:
            kids = node["/Kids"]
            for i in range(len(kids)):
                walk(kids.raw_get(i), boxes)
        else:
            box = boxes.get("/CropBox") or boxes["/MediaBox"]
            left, bottom, right, top = (float(v) for v in box)
            out.append(((ref.idnum, ref.generation), (min(left, right), min(bottom, top))))

    walk(root.raw_get("/Pages"), {})
    return out


def _destinations(root) -> dict[str, tuple[tuple[int, int], tuple[float, float]]]:
    """The document's /XYZ named destinations: ``{name: (page object, (left, top))}``, from
    the catalog's /Dests dictionary (as LibreOffice writes them) and its /Names tree."""
    out = {}

    def add(name: str, dest) -> None:
        dest = dest.get_object()
        if hasattr(dest, "keys"):   # a dictionary with the array under /D
            dest = dest["/D"]
        if len(dest) >= 4 and dest[1] == "/XYZ" and hasattr(dest.raw_get(0), "idnum"):
            page = dest.raw_get(0)
            try:   # left or top may be null ("unchanged"): then the label's text is looked for
                out[name] = ((page.idnum, page.generation), (float(dest[2]), float(dest[3])))
            except (TypeError, ValueError):
                pass

    if "/Dests" in root:
        for key, value in root["/Dests"].items():
            add(str(key).lstrip("/"), value)
    if "/Names" in root and "/Dests" in root["/Names"]:
        nodes = [root["/Names"]["/Dests"]]
        while nodes:
            node = nodes.pop().get_object()
            nodes.extend(node.get("/Kids", []))
            pairs = node.get("/Names", [])
            for i in range(0, len(pairs) - 1, 2):
                key = pairs[i]
                add(key.decode("latin-1") if isinstance(key, bytes) else str(key),
                    pairs.raw_get(i + 1))
    return out


# Info keys with an analogue in pyHanko's document metadata (and so in XMP)
_MODEL = {"Title": "title", "Author": "author", "Subject": "subject", "Creator": "creator"}


def _set_metadata(writer, metadata: Mapping[str, str]) -> None:
    """``metadata`` into the Info dictionary; title, author, subject and creator also into
    the writer's document metadata, from which pyHanko updates both when it writes. Keywords
    pyHanko keeps as the XMP has them (a PDF/A's: the .docx's, which the renderer sets to the
    same words), joined with ", ": the Info says them so too."""
    from pyhanko.pdf_utils import generic

    if "Keywords" in metadata:   # as pyHanko spells them in XMP: one list, ", " between
        words = [w for w in re.split(r"[,\s]+", str(metadata["Keywords"])) if w]
        metadata = {**metadata, "Keywords": ", ".join(words)}
    if "/Info" in writer.trailer:
        info = writer.trailer["/Info"]
    else:
        info = generic.DictionaryObject()
        writer.set_info(info)
    for key, value in metadata.items():
        info[generic.pdf_name(f"/{key}")] = generic.TextStringObject(str(value))
    writer.update_container(info)
    meta = writer.document_meta
    for key, attribute in _MODEL.items():
        if key in metadata:
            setattr(meta, attribute, str(metadata[key]))


def one_producer(writer) -> None:
    """pyHanko appends itself to the Info dictionary's /Producer ("LibreOffice 7.4; pyHanko
    x") but writes only itself into the XMP packet's pdf:Producer; a PDF/A needs the two to
    agree (ISO 19005-2 §6.6.3). So the Info says what the XMP will say."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.metadata.model import VENDOR

    if "/Info" in writer.trailer and "/Metadata" in writer.root:
        info = writer.trailer["/Info"]
        info["/Producer"] = generic.TextStringObject(VENDOR)
        writer.update_container(info)


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
