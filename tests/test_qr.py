"""The QR code of the verification URL: what it says (pure) and that zbar reads it on every
page of a finished PDF, with the page's text where LibreOffice put it."""
from __future__ import annotations

import io

import docx
import pytest
from pypdf import PdfReader

from engine import qr
from engine.pdf import finish, read_metadata

from helpers import pdf_text, qr_codes

DOCX_SHA = "ab" * 32


def test_the_url_names_number_version_and_the_docx_hash_prefix():
    url = qr.verification_url("https://verify.example.cn/", "BJ01-BJ-2026-000001", 2, DOCX_SHA)
    assert url == "https://verify.example.cn/v/BJ01-BJ-2026-000001?v=2&h=abababababababab"
    assert qr.parse_url(url) == qr.Payload("BJ01-BJ-2026-000001", 2, "abababababababab")


@pytest.mark.parametrize("text", [
    "", "not a url", "https://x.cn/v/BJ-2026-000001?v=1",             # no hash
    "https://x.cn/v/BJ-2026-000001?v=one&h=abababababababab",          # version not a number
    "https://x.cn/v/BJ-2026-000001?v=1&h=ABABABABABABABAB",            # not our lower-case hex
    "https://x.cn/v/BJ-2026-000001?v=1&h=abab",                        # too short
    "https://x.cn/docs/BJ-2026-000001?v=1&h=abababababababab",         # not the page
])
def test_parse_url_refuses_what_is_not_a_verification_url(text):
    assert qr.parse_url(text) is None


def test_short_hash_wants_a_sha256():
    with pytest.raises(ValueError) as err:
        qr.short_hash("abc")
    assert "sha256" in str(err.value)


@pytest.fixture(scope="module")
def three_pages(converter) -> bytes:
    doc = docx.Document()
    for n, word in enumerate(("ALPHA", "BRAVO", "CHARLIE")):
        if n:
            doc.add_page_break()
        doc.add_paragraph(f"第{n + 1}页 {word}")
    out = io.BytesIO()
    doc.save(out)
    return converter.convert(out.getvalue())


@pytest.mark.slow
def test_finish_draws_the_code_on_every_page_and_names_the_url(three_pages, tmp_path):
    url = qr.verification_url("http://127.0.0.1:8000", "BJ-2026-000007", 1, DOCX_SHA)
    out = tmp_path / "out.pdf"
    out.write_bytes(finish(three_pages, {"DealerDocsNumber": "BJ-2026-000007"}, qr=url))

    assert qr_codes(out) == [[url], [url], [url]]
    assert read_metadata(out.read_bytes())[qr.INFO_KEY] == url
    text = pdf_text(out)
    assert "ALPHA" in text and "CHARLIE" in text
    # one form shared by the pages, drawn in the bottom-left corner
    reader = PdfReader(out)
    forms = {p["/Resources"]["/XObject"].raw_get("/DealerDocsQR").idnum for p in reader.pages}
    assert len(forms) == 1


@pytest.mark.slow
def test_without_a_url_nothing_is_drawn(three_pages, tmp_path):
    out = tmp_path / "plain.pdf"
    out.write_bytes(finish(three_pages, {"Title": "x"}))
    assert qr_codes(out) == [[], [], []]
    assert qr.INFO_KEY not in read_metadata(out.read_bytes())
