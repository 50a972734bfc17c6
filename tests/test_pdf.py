"""PDF finishing: metadata goes in, pages and text stay as LibreOffice made them."""
from __future__ import annotations

import io
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from engine.errors import ConversionError, TemplateError
from engine.pdf import SIG_HEIGHT, SIG_WIDTH, finish, locate_signature, read_metadata, signature_fields

from helpers import pdf_text

pytestmark = pytest.mark.slow  # every test reads a PDF LibreOffice made for the module


@pytest.fixture(scope="module")
def two_page_pdf(converter) -> bytes:
    """One real LibreOffice PDF for the module: two pages, a title from the core properties."""
    doc = docx.Document()
    doc.core_properties.title = "原标题"
    doc.add_paragraph("第一页 ALPHA 刘晓明")
    doc.add_page_break()
    doc.add_paragraph("第二页 BRAVO")
    out = io.BytesIO()
    doc.save(out)
    return converter.convert(out.getvalue())


def text_of(pdf: bytes, path: Path) -> str:
    path.write_bytes(pdf)
    return pdf_text(path)


METADATA = {
    "DealerDocsNumber": "BJ-2026-000001", "DealerDocsCase": "Q-1",
    "Author": "北京星辰汽车销售服务有限公司", "Title": "商谈报价单 BJ-2026-000001",
    "DealerDocsTemplateSHA256": "ab" * 32,
}


def test_finish_adds_metadata_and_keeps_pages_and_text(two_page_pdf, tmp_path):
    before = read_metadata(two_page_pdf)

    finished = finish(two_page_pdf, METADATA)

    assert finished.startswith(b"%PDF-")
    meta = read_metadata(finished)
    assert {k: meta[k] for k in METADATA} == METADATA
    assert before["Title"] == "原标题"  # LibreOffice took it from the core properties
    # an incremental update: LibreOffice's bytes stay as they were, the finishing follows
    assert finished.startswith(two_page_pdf)
    assert meta["Producer"].startswith(before["Producer"])   # the finisher is named after it
    assert len(PdfReader(io.BytesIO(finished)).pages) == 2
    original_text = text_of(two_page_pdf, tmp_path / "a.pdf")
    assert "第一页 ALPHA 刘晓明" in original_text and "第二页 BRAVO" in original_text
    assert text_of(finished, tmp_path / "b.pdf") == original_text


def test_values_are_stored_as_text(two_page_pdf):
    meta = read_metadata(finish(two_page_pdf, {"DealerDocsVersion": 2, "Flag": True}))

    assert meta["DealerDocsVersion"] == "2" and meta["Flag"] == "True"


def test_finishing_twice_replaces_values(two_page_pdf):
    once = finish(two_page_pdf, {"DealerDocsNumber": "BJ-2026-000001", "A": "1"})

    meta = read_metadata(finish(once, {"DealerDocsNumber": "BJ-2026-000002"}))

    assert meta["DealerDocsNumber"] == "BJ-2026-000002" and meta["A"] == "1"


def test_input_bytes_are_not_changed(two_page_pdf):
    copy = bytes(two_page_pdf)

    finish(two_page_pdf, METADATA)

    assert two_page_pdf == copy and "DealerDocsNumber" not in read_metadata(two_page_pdf)


@pytest.mark.parametrize("make", [
    lambda pdf: b"this is not a pdf",
    lambda pdf: b"",
    lambda pdf: b"%PDF-1.4\n%%EOF\n",
    lambda pdf: pdf[: len(pdf) // 2],
], ids=["garbage", "empty", "header-only", "truncated"])
def test_unreadable_pdf(two_page_pdf, make):
    with pytest.raises(ConversionError) as raised:
        finish(make(two_page_pdf), METADATA)

    from pyhanko.pdf_utils.misc import PdfError

    cause = raised.value.__cause__   # the PDF reader's reason (pyHanko's, which reads first), kept
    assert isinstance(cause, (PdfError, PyPdfError, ValueError)), repr(cause)
    assert raised.value.message == f"无法完成 PDF（元数据 / 签名域）：{cause}"


# --- signature fields --------------------------------------------------------------------------

SELLER, BUYER = "甲方（盖章）", "乙方（签字或盖章）"
SIGNATURES = {"seller_signature": SELLER, "buyer_signature": BUYER}


def signing_docx(marks: dict[str, str] | None = None) -> bytes:
    """The signature tests' document: the anchors are mentioned on page 1 and printed in a
    signature table at the end of page 2 (the contract template's layout); ``marks`` are
    bookmarked as the renderer does (engine/bookmarks.py)."""
    from engine.bookmarks import mark_last

    doc = docx.Document()
    doc.add_paragraph(f"第一页 ALPHA：签名见末页的{SELLER}与{BUYER}栏")
    doc.add_page_break()
    doc.add_paragraph("第二页 BRAVO")
    table = doc.add_table(rows=2, cols=2)
    table.cell(0, 0).text = SELLER
    table.cell(0, 1).text = BUYER
    table.cell(1, 0).text = "日期："
    table.cell(1, 1).text = "日期："
    assert mark_last(doc.element.body, marks or {}) == []
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def signing_pdf(converter) -> bytes:
    """One real LibreOffice PDF for the signature tests, with no marks: the anchors are found
    by their text."""
    return converter.convert(signing_docx())


def word_boxes(pdf: bytes, path: Path) -> list[tuple[int, str, tuple[float, float, float, float]]]:
    """(page, word, (x0, y0, x1, y1)) in PDF space (origin bottom left), as poppler sees them:
    a reference independent of the pypdf text walk the engine uses."""
    import re
    import subprocess

    path.write_bytes(pdf)
    xml = subprocess.run(["pdftotext", "-bbox", str(path), "-"], capture_output=True, text=True,
                         check=True).stdout
    out = []
    for index, page in enumerate(xml.split("<page ")[1:]):
        height = float(re.search(r'height="([0-9.]+)"', page).group(1))
        for x0, top, x1, bottom, word in re.findall(
                r'<word xMin="([0-9.]+)" yMin="([0-9.]+)" xMax="([0-9.]+)" yMax="([0-9.]+)">'
                r"(.*?)</word>", page):
            out.append((index, word, (float(x0), height - float(bottom), float(x1),
                                      height - float(top))))
    return out


def test_finish_places_signature_fields_below_their_anchors_on_the_last_page(signing_pdf,
                                                                              tmp_path):
    finished = finish(signing_pdf, METADATA, SIGNATURES)

    fields = signature_fields(finished)
    assert set(fields) == {"seller_signature", "buyer_signature"}
    pages = len(PdfReader(io.BytesIO(finished)).pages)
    assert pages == 2
    boxes = word_boxes(signing_pdf, tmp_path / "s.pdf")
    for name, anchor in SIGNATURES.items():
        [(page, _, (ax0, ay0, ax1, ay1))] = [b for b in boxes if b[1] == anchor]
        field = fields[name]
        x0, y0, x1, y1 = field["rect"]
        assert field["page"] == page == pages - 1, field  # the table, not the mention on page 1
        assert field["signed"] is False
        assert abs(x0 - ax0) < 2  # starts at the anchor's left edge …
        assert y1 <= ay0 + 2 and y1 > ay0 - 20  # … just below it
        assert (round(x1 - x0, 2), round(y1 - y0, 2)) == (SIG_WIDTH, SIG_HEIGHT)
        assert y0 > 0 and x1 < 612
    assert fields["seller_signature"]["rect"][2] <= fields["buyer_signature"]["rect"][0] + 1


def test_signature_fields_are_acroform_sig_fields(signing_pdf, tmp_path):
    finished = finish(signing_pdf, METADATA, SIGNATURES)

    reader = PdfReader(io.BytesIO(finished))
    fields = reader.get_fields()
    assert {k: v.get("/FT") for k, v in fields.items()} == {
        "seller_signature": "/Sig", "buyer_signature": "/Sig"}
    assert reader.trailer["/Root"]["/AcroForm"]["/SigFlags"] == 1
    assert len(reader.pages[1]["/Annots"]) == 2 and "/Annots" not in reader.pages[0]
    meta = read_metadata(finished)
    assert {k: meta[k] for k in METADATA} == METADATA  # metadata still goes in
    assert text_of(finished, tmp_path / "b.pdf") == text_of(signing_pdf, tmp_path / "a.pdf")


@pytest.mark.parametrize("signatures", [None, {}])
def test_no_signatures_no_fields(signing_pdf, signatures):
    finished = finish(signing_pdf, METADATA, signatures)

    assert signature_fields(finished) == {}
    assert "/AcroForm" not in PdfReader(io.BytesIO(finished)).trailer["/Root"]
    assert signature_fields(signing_pdf) == {}


def test_a_missing_anchor_is_a_template_error_naming_it(signing_pdf):
    with pytest.raises(TemplateError) as raised:
        finish(signing_pdf, METADATA, {**SIGNATURES, "guarantor_signature": "丙方（签字）"})

    err = raised.value
    assert err.message == ("PDF 中找不到签名位置文字「丙方（签字）」（签名域 guarantor_signature）；"
                           "模板的签名区须原样包含这段文字")
    assert err.details == {"anchor": "丙方（签字）"}


@pytest.mark.parametrize("anchor, page", [
    ("ALPHA", 0),
    ("BRAVO", 1),
    (SELLER, 1),  # on both pages: the last occurrence, searching from the last page
])
def test_locate_signature_searches_from_the_last_page(signing_pdf, anchor, page):
    placement = locate_signature(PdfReader(io.BytesIO(signing_pdf)), "f", anchor)

    assert (placement.name, placement.page) == ("f", page)
