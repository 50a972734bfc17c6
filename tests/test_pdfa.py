"""PDF/A-2b for the archive (issue 18): a document kind with ``pdf_a = true`` (the shipped
config.toml: the contract) is exported by LibreOffice as PDF/A-2b, and finishing keeps it so
(its XMP rewritten to say what the Info dictionary says, empty signature fields with an
appearance). Checked with :func:`engine.pdfa.problems` (structural rules; veraPDF is not
installable here: it needs Java and is in no registry this project installs from)."""
from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import NameObject

from engine import pdfa
from engine.convert import ArchivalDocx, SofficeConverter
from engine.pdf import finish
from helpers import ROOT, contract_data, pdf_text


@pytest.fixture
def contract(engine, clock):
    """An issued contract: (its register entry, its PDF's bytes)."""
    case_id = engine.create("contract", contract_data(clock.now.date()), "zhang").id
    if engine.fire(case_id, "submit", "zhang").state == "pending_approval":
        engine.fire(case_id, "approve", "wang")
    [doc] = engine.fire(case_id, "issue", "zhang").documents
    return doc, doc.pdf.read_bytes()


def test_an_issued_contract_is_pdf_a_2b(contract):
    doc, pdf = contract
    assert pdfa.problems(pdf) == []
    reader = PdfReader(io.BytesIO(pdf))
    assert pdfa.identification(reader) == ("2", "B")
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode("utf-8")
    assert f"{doc.title} {doc.number}" in xmp and "北京星辰汽车销售服务有限公司" in xmp
    assert reader.metadata["/DealerDocsNumber"] == doc.number   # our own keys are kept
    signature_widgets = [a.get_object() for p in reader.pages for a in p.get("/Annots") or []
                         if a.get_object().get("/FT") == "/Sig"]
    assert len(signature_widgets) == 2 and all("/N" in w["/AP"] for w in signature_widgets)
    assert doc.number in pdf_text(doc.pdf) and len(reader.pages) == 5


def test_a_kind_without_pdf_a_is_plain_pdf_and_the_check_says_so(engine, quote_data):
    case_id = engine.create("quote", quote_data, "zhang").id
    [doc] = engine.fire(case_id, "issue", "zhang").documents
    found = pdfa.problems(doc.pdf.read_bytes())
    assert any("PDF/A 标识" in p for p in found) and any("GTS_PDFA1" in p for p in found)


def test_the_check_catches_what_finishing_could_break(contract):
    _, pdf = contract
    # the Info changed and the XMP not: the two must agree
    reader = PdfReader(io.BytesIO(pdf))
    writer = PdfWriter(clone_from=reader)
    writer.pdf_header = reader.pdf_header
    writer.add_metadata({"/Title": "另一个标题"})
    out = io.BytesIO()
    writer.write(out)
    assert any("Title" in p and "不一致" in p for p in pdfa.problems(out.getvalue()))
    # no output intent
    del writer._root_object[NameObject("/OutputIntents")]
    out = io.BytesIO()
    writer.write(out)
    assert any("GTS_PDFA1" in p for p in pdfa.problems(out.getvalue()))


def test_finishing_a_pdf_a_rewrites_its_xmp(contract):
    doc, pdf = contract
    again = finish(pdf, {"Title": "购车合同 <测试> & 副本", "Keywords": f"C-1 {doc.number}"}, {})
    assert pdfa.problems(again) == []
    reader = PdfReader(io.BytesIO(again))
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    assert "购车合同 &lt;测试&gt; &amp; 副本".encode() in xmp
    assert reader.metadata["/Keywords"] == f"C-1, {doc.number}"   # as XMP spells the list


def test_pdf_dates_become_xmp_dates():
    assert pdfa.xmp_date("D:20261205080352+08'00'") == "2026-12-05T08:03:52+08:00"
    assert pdfa.xmp_date("D:20261205080352Z'") == "2026-12-05T08:03:52Z"
    assert pdfa.xmp_date("D:2026") == "2026-01-01T00:00:00Z"
    assert pdfa.xmp_date("yesterday") is None


def test_the_cold_converter_makes_pdf_a_for_archival_documents_only(cold_converter):
    template = (ROOT / "templates" / "docx" / "quote.docx").read_bytes()
    plain, archival = cold_converter.convert_many([template, ArchivalDocx(template)])
    assert pdfa.problems(archival) == []
    assert pdfa.identification(PdfReader(io.BytesIO(plain))) is None
    assert re.search(rb"/GTS_PDFA1", archival) and not re.search(rb"/GTS_PDFA1", plain)
    assert isinstance(cold_converter, SofficeConverter)


def test_stamped_versions_and_controlled_copies_stay_pdf_a(contract, engine):
    from engine.stamps import controlled_copy, void_stamp

    _, pdf = contract
    assert pdfa.problems(void_stamp(pdf, word="作废", when="2026年11月26日", reason="客户取消",
                                    converter=engine.converter)) == []
    assert pdfa.problems(controlled_copy(pdf, copy_label="受控副本 01",
                                         converter=engine.converter)) == []
