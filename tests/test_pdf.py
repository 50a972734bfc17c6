"""PDF finishing: metadata goes in, pages and text stay as LibreOffice made them."""
from __future__ import annotations

import io
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader

from engine.errors import ConversionError
from engine.pdf import finish, read_metadata

from helpers import pdf_text


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
    assert meta["Producer"] == before["Producer"]  # what was there stays, unless replaced
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

    assert raised.value.message.startswith("无法完成 PDF（元数据 / 签名域）：")
    assert raised.value.__cause__ is not None
