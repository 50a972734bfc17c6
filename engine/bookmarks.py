"""Bookmarks at texts of a rendered .docx, so that its PDF says where those texts are printed.

Why: a finished PDF's signature fields go below the labels its template prints ("乙方（签字或
盖章）"). Finding a label in the PDF by its text means extracting the pages' text with pypdf,
which was most of finishing's cost (≈ 25 ms of the contract's 38, issue 20). Instead the
renderer bookmarks the label's last occurrence in the .docx, LibreOffice exports bookmarks as
named destinations (``ExportBookmarksToPDFDestination``: the page and the top-left corner of
the bookmarked position), and finishing reads those few objects (:mod:`engine.pdf`). The label
text stays the contract between a template and the engine: staff who move it in Word move the
field with it. Knows nothing of signatures or PDFs; works on the lxml tree of ``w:body``.
"""
from __future__ import annotations

import copy
from typing import Mapping

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"


def mark_last(body, marks: Mapping[str, str]) -> list[str]:
    """Put a bookmark named after each key of ``marks`` where the last occurrence of its text
    (searched in document order, within one paragraph) begins; a text that starts inside a
    run splits the run there, so the bookmark is exactly at its first character. Returns the
    names whose text was not found (a caller may look for those in the PDF instead)."""
    next_id = 1 + max((int(b.get(f"{_W}id")) for b in body.iter(f"{_W}bookmarkStart")
                       if (b.get(f"{_W}id") or "").isdigit()), default=0)
    paragraphs = _paragraphs(body)
    missing = []
    for name, text in marks.items():
        found = next(((ts, joined.rfind(text)) for ts, joined in reversed(paragraphs)
                      if text and text in joined), None)
        if found is None:
            missing.append(name)
            continue
        ts, at = found
        for t in ts:
            length = len(t.text or "")
            if at < length:
                break
            at -= length
        run, split = _run_starting_at(t, at)
        start = run.makeelement(f"{_W}bookmarkStart", {f"{_W}id": str(next_id),
                                                        f"{_W}name": name})
        end = run.makeelement(f"{_W}bookmarkEnd", {f"{_W}id": str(next_id)})
        run.addprevious(start)
        run.addprevious(end)
        next_id += 1
        if split:   # a run was cut in two: its new w:t must be seen by the next texts
            paragraphs = _paragraphs(body)
    return missing


def _paragraphs(body) -> list[tuple[list, str]]:
    """Each paragraph's runs' w:t elements in document order, and their text joined (a text
    box's paragraphs are their own, not their anchoring paragraph's)."""
    out = []
    for paragraph in body.iter(f"{_W}p"):
        nested = next(paragraph.iterdescendants(f"{_W}p"), None) is not None
        ts = [t for t in paragraph.iter(f"{_W}t") if t.getparent().tag == f"{_W}r"
              and (not nested or next(t.iterancestors(f"{_W}p")) is paragraph)]
        if ts:
            out.append((ts, "".join(t.text or "" for t in ts)))
    return out


def _run_starting_at(t, offset: int):
    """The run whose first content is character ``offset`` of ``t``: ``t``'s run, split in
    two when anything of it comes before (the part before becomes a run of its own, with the
    same properties); and whether it was split."""
    run = t.getparent()
    index = run.index(t)
    content_before = [c for c in run[:index] if c.tag != f"{_W}rPr"]
    if offset == 0 and not content_before:
        return run, False
    before = copy.deepcopy(run)
    for child in list(before)[index + (1 if offset else 0):]:
        before.remove(child)
    if offset:
        before[index].text = t.text[:offset]
        before[index].set(_XML_SPACE, "preserve")
    for child in content_before:
        run.remove(child)
    t.text = t.text[offset:]
    t.set(_XML_SPACE, "preserve")
    run.addprevious(before)
    return run, True
