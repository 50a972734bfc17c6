"""What makes two documents the same conversion (engine/prepared.py): a rehearsal's .docx and
the real run's are found equal by content, whatever their zip headers say."""
from __future__ import annotations

import io
import zipfile

from engine.prepared import Conversions, content_key


def zipped(parts: dict[str, bytes], when: tuple) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in parts.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=when), data)
    return out.getvalue()


PARTS = {"word/document.xml": b"<w:document>BJ-2026-000001</w:document>",
         "[Content_Types].xml": b"<Types/>"}


def test_the_same_parts_written_a_second_later_are_the_same_document():
    now, later = zipped(PARTS, (2026, 11, 26, 10, 30, 0)), zipped(PARTS, (2026, 11, 26, 10, 30, 2))
    assert now != later
    assert content_key(now) == content_key(later) == content_key(now)   # asked again: same
    other = zipped({**PARTS, "word/document.xml": b"<w:document>BJ-2026-000002</w:document>"},
                   (2026, 11, 26, 10, 30, 0))
    assert content_key(other) != content_key(now)
    assert content_key(now, ".svg") != content_key(now)    # what it is converted as counts


def test_a_pdf_to_stamp_is_known_by_its_bytes_and_conversions_find_it():
    pdf = b"%PDF-1.7 one page"
    conversions = Conversions()
    conversions.add([pdf], [b"%PDF-stamped"], ".pdf")
    assert conversions.get(pdf, ".pdf") == b"%PDF-stamped"
    assert conversions.get(pdf + b" ", ".pdf") is None
    assert conversions.missing([pdf, pdf + b" "], ".pdf") == [pdf + b" "]
