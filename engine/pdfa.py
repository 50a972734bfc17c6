"""PDF/A-2b (ISO 19005-2, level B) for the archive: keeping it while finishing, and checking it.

LibreOffice makes the PDF/A (``SelectPdfVersion = 2`` in its PDF export, see
:mod:`engine.convert`): every font embedded, an sRGB output intent, an XMP packet that names
the part and level. What we change afterwards must keep it so. The document information
dictionary that :func:`engine.pdf.finish` fills (title, author, subject, keywords) has
analogues in XMP, and ISO 19005-2 §6.6.3 wants both to say the same: finishing and signing are
incremental updates by pyHanko, which updates the XMP packet with the Info dictionary and keeps
the PDF/A identification (:mod:`engine.pdf` makes the two agree where pyHanko would not).
dealerdocs' own keys (``DealerDocsNumber`` …) have no XMP analogue and need none. Signature
widgets carry an appearance stream (§6.3.3), even while empty.

:func:`problems` checks a finished file against the rules that what we do could break, with
pypdf alone: header, identification, Info ↔ XMP, output intent, embedded fonts, annotations'
appearance and print flag, no encryption, no JavaScript, a file identifier. It is no full
validator (veraPDF, which is, needs Java and is in none of the package registries this project
installs from); the tests run it on every PDF/A the engine makes.
"""
from __future__ import annotations

import io
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from pypdf import PdfReader

# Info key → (XMP namespace prefix, property, kind): ISO 19005-2 §6.6.3, table 3 of PDF/A-1.
ANALOGUES = {
    "/Title": ("dc", "title", "alt"),
    "/Author": ("dc", "creator", "seq"),
    "/Subject": ("dc", "description", "alt"),
    "/Keywords": ("pdf", "Keywords", "text"),
    "/Creator": ("xmp", "CreatorTool", "text"),
    "/Producer": ("pdf", "Producer", "text"),
    "/CreationDate": ("xmp", "CreateDate", "date"),
    "/ModDate": ("xmp", "ModifyDate", "date"),
}
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NAMESPACES = {"dc": "http://purl.org/dc/elements/1.1/", "pdf": "http://ns.adobe.com/pdf/1.3/",
              "xmp": "http://ns.adobe.com/xap/1.0/", "pdfaid": "http://www.aiim.org/pdfa/ns/id/"}
_PDF_DATE = re.compile(r"D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?([Zz+-])?(\d{2})?'?(\d{2})?'?")


def identification(reader: PdfReader) -> tuple[str, str] | None:
    """(part, conformance) of a PDF/A, from its XMP packet; None for any other PDF."""
    props = xmp_properties(reader)
    part, level = props.get(("pdfaid", "part")), props.get(("pdfaid", "conformance"))
    return (part, level.upper()) if part and level else None


def xmp_properties(reader: PdfReader) -> dict[tuple[str, str], str]:
    """The XMP packet's simple properties by (prefix, name), whichever form the writer chose
    (LibreOffice writes elements, pyHanko attributes): a text value, or the first item of an
    ``rdf:Alt`` / ``rdf:Seq``. Empty when there is no packet or it does not parse."""
    import xml.etree.ElementTree as ET

    text = _xmp_text(reader)
    if text is None:
        return {}
    try:
        root = ET.fromstring(re.sub(r"<\?xpacket[^>]*\?>", "", text).strip())
    except ET.ParseError:
        return {}
    prefixes = {uri: prefix for prefix, uri in NAMESPACES.items()}
    found: dict[tuple[str, str], str] = {}

    def named(tag: str) -> tuple[str, str] | None:
        uri, _, local = tag[1:].partition("}")
        return (prefixes[uri], local) if tag.startswith("{") and uri in prefixes else None

    for description in root.iter(f"{{{RDF}}}Description"):
        for tag, value in description.attrib.items():
            if named(tag):
                found[named(tag)] = value.strip()
        for child in description:
            if named(child.tag):
                item = child.find(f".//{{{RDF}}}li")
                found[named(child.tag)] = ((item.text if item is not None else child.text)
                                           or "").strip()
    return found


def xmp_date(value: str) -> str | None:
    """A PDF date (``D:20261205080352+08'00'``) as an XMP date (``2026-12-05T08:03:52+08:00``)."""
    when = pdf_date(value)
    if when is None:
        return None
    text = when.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def pdf_date(value: str) -> datetime | None:
    m = _PDF_DATE.match(value.strip())
    if not m:
        return None
    year, month, day, hour, minute, second, sign, oh, om = m.groups()
    zone = timezone.utc
    if sign in ("+", "-"):
        offset = timedelta(hours=int(oh or 0), minutes=int(om or 0))
        zone = timezone(offset if sign == "+" else -offset)
    return datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                    int(second or 0), tzinfo=zone)


# --- checking ----------------------------------------------------------------------------------

def problems(pdf: bytes) -> list[str]:
    """What in ``pdf`` breaks PDF/A-2b among the rules finishing, QR codes and signing could
    break; empty when none does (see the module docstring for what it does not check)."""
    reader = PdfReader(io.BytesIO(pdf))
    found: list[str] = []
    if not re.match(rb"%PDF-1\.[0-7]\r?\n%[\x80-\xff]{4}", pdf[:20]):
        found.append("文件头不是 %PDF-1.n 加一行四个高位字节的注释")
    pdfa = identification(reader)
    if pdfa is None or pdfa[0] != "2" or pdfa[1] != "B":
        found.append(f"XMP 中的 PDF/A 标识不是 2B（{pdfa}）")
    meta = reader.trailer["/Root"].get("/Metadata")
    if meta is not None and "/Filter" in meta.get_object():
        found.append("XMP 元数据流不应压缩（/Filter）")
    found += _info_vs_xmp(reader)
    intents = reader.trailer["/Root"].get("/OutputIntents")
    if not intents or not any(i.get_object().get("/S") == "/GTS_PDFA1"
                              and "/DestOutputProfile" in i.get_object()
                              for i in intents.get_object()):
        found.append("缺少 GTS_PDFA1 输出意图（ICC 配置文件）")
    if "/Encrypt" in reader.trailer:
        found.append("文件已加密")
    if "/ID" not in reader.trailer:
        found.append("文件尾缺少 /ID")
    root = reader.trailer["/Root"]
    if "/JavaScript" in (root.get("/Names") or {}) or "/AA" in root:
        found.append("含有 JavaScript 或自动动作")
    for number, page in enumerate(reader.pages, start=1):
        found += [f"第 {number} 页：{p}" for p in _page_problems(page)]
    return found


def _info_vs_xmp(reader: PdfReader) -> list[str]:
    props = xmp_properties(reader)
    out = []
    for key, (prefix, name, kind) in ANALOGUES.items():
        value = (reader.metadata or {}).get(key)
        if value is None:
            continue
        said = props.get((prefix, name))
        if kind == "date":
            same = said is not None and pdf_date_equal(said, xmp_date(str(value)))
        else:
            same = said == str(value).strip()
        if not same:
            out.append(f"文档信息 {key[1:]}「{value}」与 XMP {prefix}:{name}「{said}」不一致")
    return out


def pdf_date_equal(xmp: str, expected: str | None) -> bool:
    try:
        return expected is not None and (datetime.fromisoformat(xmp.replace("Z", "+00:00"))
                                         == datetime.fromisoformat(expected.replace("Z", "+00:00")))
    except ValueError:
        return False


def _page_problems(page: Any) -> list[str]:
    out = []
    for ref in page.get("/Annots") or []:
        annot = ref.get_object()
        kind = annot.get("/Subtype")
        if kind == "/Popup":
            continue
        flags = int(annot.get("/F", 0))
        if not flags & 4 or flags & (1 | 2 | 32):
            out.append(f"注释 {kind} 未设为可打印（/F = {flags}）")
        rect = [float(v) for v in annot.get("/Rect", [0, 0, 0, 0])]
        empty = rect[0] == rect[2] or rect[1] == rect[3]
        if not empty and "/N" not in (annot.get("/AP") or {}):
            out.append(f"注释 {kind} 缺少外观流（/AP /N）")
    resources = page.get("/Resources")
    for font in _fonts(resources.get_object() if resources is not None else {}):
        if not _embedded(font):
            out.append(f"字体 {font.get('/BaseFont')} 未嵌入")
    return out


def _fonts(resources: Any, seen: set[int] | None = None) -> list[Any]:
    """Every font a page's resources use, its form XObjects' included."""
    seen = seen if seen is not None else set()
    out = []
    for ref in (resources.get("/Font") or {}).values():
        out.append(ref.get_object())
    for ref in (resources.get("/XObject") or {}).values():
        xobject = ref.get_object()
        if xobject.get("/Subtype") == "/Form" and id(xobject) not in seen:
            seen.add(id(xobject))
            inner = xobject.get("/Resources")
            if inner is not None:
                out += _fonts(inner.get_object(), seen)
    return out


def _embedded(font: Any) -> bool:
    if font.get("/Subtype") == "/Type3":
        return True   # drawn by the document itself
    if font.get("/Subtype") == "/Type0":
        return all(_embedded(d.get_object()) for d in font.get("/DescendantFonts", []))
    descriptor = font.get("/FontDescriptor")
    descriptor = descriptor.get_object() if descriptor is not None else {}
    return any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))


def _xmp_text(reader: PdfReader) -> str | None:
    meta = reader.trailer["/Root"].get("/Metadata")
    if meta is None:
        return None
    return meta.get_object().get_data().decode("utf-8", "replace")
