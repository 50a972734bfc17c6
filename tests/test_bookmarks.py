"""The signature labels' bookmarks: put at the label's first character in the .docx, exported by
LibreOffice (warm and cold) as named destinations, and read by finishing instead of the pages'
text (engine/bookmarks.py, engine/pdf.py)."""
from __future__ import annotations

import io

import docx
import pytest
from docx.oxml.ns import qn
from docx.shared import Pt
from pypdf import PdfReader

from engine.bookmarks import mark_last
from engine.pdf import LABEL_LINE, SIG_GAP, finish, signature_bookmarks, signature_fields

from helpers import contract_data
from test_pdf import BUYER, METADATA, SELLER, SIGNATURES, signing_docx, word_boxes


def bookmarks_of(document) -> list[tuple[str, str]]:
    """(bookmark name, text of the run right after it) for each bookmark of the body."""
    out = []
    for start in document.element.body.iter(qn("w:bookmarkStart")):
        run = next(e for e in start.itersiblings() if e.tag == qn("w:r"))
        out.append((start.get(qn("w:name")), "".join(t.text for t in run.iter(qn("w:t")))))
    return out


def test_the_last_occurrence_is_marked_at_its_first_character():
    doc = docx.Document()
    doc.add_paragraph(f"签名见末页{SELLER}栏")          # an earlier mention, mid-run
    split = doc.add_paragraph()
    split.add_run("乙方（签字")                           # the label split over two runs …
    split.add_run("或盖章）：").bold = True
    mid = doc.add_paragraph()
    mid.add_run(f"（此处）{SELLER}：").font.size = Pt(14)  # … and one starting inside a run
    texts = [p.text for p in doc.paragraphs]

    missing = mark_last(doc.element.body, {"S": SELLER, "B": BUYER, "X": "丙方（签字）"})

    assert missing == ["X"]
    assert [p.text for p in doc.paragraphs] == texts        # not a character moved
    assert bookmarks_of(doc) == [("B", "乙方（签字"), ("S", f"{SELLER}：")]
    before, after = mid.runs
    assert (before.text, after.text) == ("（此处）", f"{SELLER}：")
    assert before.font.size == after.font.size == Pt(14)   # the split keeps the run's look


def test_two_labels_inside_one_run_are_both_marked_where_they_start():
    doc = docx.Document()
    p = doc.add_paragraph()
    p.add_run(f"签章：{SELLER}　　{BUYER}：").italic = True

    assert mark_last(doc.element.body, {"B": BUYER, "S": SELLER}) == []

    assert p.text == f"签章：{SELLER}　　{BUYER}："
    assert [r.text for r in p.runs] == ["签章：", f"{SELLER}　　", f"{BUYER}："]
    assert all(r.italic for r in p.runs)
    assert sorted(bookmarks_of(doc)) == [("B", f"{BUYER}："), ("S", f"{SELLER}　　")]


def test_bookmark_ids_do_not_collide_with_the_templates_own():
    doc = docx.Document()
    p = doc.add_paragraph(SELLER)
    own = p._p.makeelement(qn("w:bookmarkStart"), {qn("w:id"): "7", qn("w:name"): "_GoBack"})
    p._p.insert(0, own)

    mark_last(doc.element.body, {"S": SELLER})

    ids = [b.get(qn("w:id")) for b in doc.element.body.iter(qn("w:bookmarkStart"))]
    assert sorted(ids) == ["7", "8"]


@pytest.mark.slow
@pytest.mark.parametrize("which", ["converter", "cold_converter"])
def test_both_converters_export_the_marks_and_finishing_places_the_fields_by_them(
        request, which, tmp_path):
    pdf = request.getfixturevalue(which).convert(signing_docx(signature_bookmarks(SIGNATURES)))

    destinations = PdfReader(io.BytesIO(pdf)).named_destinations
    assert set(destinations) >= {"/DealerDocsSig1", "/DealerDocsSig2"}
    fields = signature_fields(finish(pdf, METADATA, SIGNATURES))
    boxes = word_boxes(pdf, tmp_path / "s.pdf")
    for (name, anchor), mark in zip(SIGNATURES.items(), ["/DealerDocsSig1", "/DealerDocsSig2"]):
        dest = destinations[mark]
        x0, y0, x1, y1 = fields[name]["rect"]
        # placed by the destination (the text search would put the top at baseline − gap) …
        assert (x0, y1) == (round(float(dest["/Left"]), 2),
                            round(float(dest["/Top"]) - LABEL_LINE - SIG_GAP, 2))
        # … which is where the label is printed: its left edge, just below it, on page 2
        [(page, _, (ax0, ay0, _, _))] = [b for b in boxes if b[1] == anchor]
        assert fields[name]["page"] == page == 1
        assert abs(x0 - ax0) < 2 and ay0 - 20 < y1 <= ay0 + 2


@pytest.mark.slow
def test_a_label_without_its_mark_is_found_by_its_text(converter, tmp_path):
    marks = signature_bookmarks(SIGNATURES)
    pdf = converter.convert(signing_docx({"DealerDocsSig1": marks["DealerDocsSig1"]}))

    fields = signature_fields(finish(pdf, METADATA, SIGNATURES))

    dest = PdfReader(io.BytesIO(pdf)).named_destinations["/DealerDocsSig1"]
    assert fields["seller_signature"]["rect"][3] == round(
        float(dest["/Top"]) - LABEL_LINE - SIG_GAP, 2)
    [(page, _, (ax0, ay0, _, _))] = [b for b in word_boxes(pdf, tmp_path / "s.pdf")
                                     if b[1] == BUYER]
    x0, _, _, y1 = fields["buyer_signature"]["rect"]
    assert fields["buyer_signature"]["page"] == page == 1
    assert abs(x0 - ax0) < 2 and ay0 - 20 < y1 <= ay0 + 2


@pytest.mark.slow
def test_an_issued_contract_places_its_fields_by_the_marks(engine, clock, tmp_path):
    """The issuing service asks the renderer for the marks: the contract's .docx has them at
    its signature labels, and its PDF's fields stand where its destinations say."""
    case_id = engine.create("contract", contract_data(clock.now.date()), "zhang").id
    if engine.fire(case_id, "submit", "zhang").state == "pending_approval":
        engine.fire(case_id, "approve", "wang")
    [doc] = engine.fire(case_id, "issue", "zhang").documents
    labels = engine.workflows["contract"].documents["contract"].signatures

    marked = dict(bookmarks_of(docx.Document(io.BytesIO(doc.docx.read_bytes()))))
    assert {name: marked[name].startswith(label)
            for name, label in signature_bookmarks(labels).items()} == {
        "DealerDocsSig1": True, "DealerDocsSig2": True}
    pdf = doc.pdf.read_bytes()
    destinations = PdfReader(io.BytesIO(pdf)).named_destinations
    fields = signature_fields(pdf)
    assert set(fields) == set(labels)
    for name, mark in zip(labels, signature_bookmarks(labels)):
        dest = destinations[f"/{mark}"]
        assert fields[name]["rect"][0] == round(float(dest["/Left"]), 2)
        assert fields[name]["rect"][3] == round(float(dest["/Top"]) - LABEL_LINE - SIG_GAP, 2)
