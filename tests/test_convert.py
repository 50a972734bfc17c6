"""Conversion: real LibreOffice for the happy path and garbage input (three soffice runs), fake
``soffice`` scripts for timeouts, crashes and missing output."""
from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path

import docx
import pytest

from engine.convert import FONTS_CONF, SofficeConverter
from engine.errors import ConversionError

from helpers import pdf_text


def make_docx(*paragraphs: str) -> bytes:
    doc = docx.Document()
    for text in paragraphs:
        doc.add_paragraph(text)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def text_of(pdf: bytes, tmp_path: Path, name: str = "out.pdf") -> str:
    path = tmp_path / name
    path.write_bytes(pdf)
    return "".join(pdf_text(path).split())


# --- real LibreOffice ------------------------------------------------------------------------

def test_chinese_document_converts(converter, tmp_path):
    pdf = converter.convert(make_docx("商谈报价单", "客户：刘晓明　合计 ¥152,669.57"))

    assert pdf.startswith(b"%PDF-")
    text = text_of(pdf, tmp_path)
    assert "商谈报价单" in text and "客户：刘晓明" in text and "¥152,669.57" in text


def test_convert_many_keeps_the_order(converter, tmp_path):
    names = ["甲文档 ALPHA", "乙文档 BRAVO", "丙文档 CHARLIE"]

    pdfs = converter.convert_many([make_docx(n) for n in names])

    assert len(pdfs) == 3 and all(p.startswith(b"%PDF-") for p in pdfs)
    texts = [text_of(p, tmp_path, f"{i}.pdf") for i, p in enumerate(pdfs)]
    for i, text in enumerate(texts):
        for j, name in enumerate(names):
            assert (name.replace(" ", "") in text) is (i == j), (i, j, text)


def test_input_that_is_not_a_docx_is_refused_before_libreoffice():
    """LibreOffice would turn b"" into a blank page: refuse anything that is not a zip."""
    with pytest.raises(ConversionError) as raised:
        SofficeConverter(binary="no-such-soffice").convert_many([b"PK\x03\x04", b""])

    assert raised.value.message == "第 2 个输入不是 Word（.docx）文档"


def test_garbage_is_refused_by_libreoffice(converter):
    """LibreOffice cannot load it, exits 0 and writes nothing: the converter must say so."""
    with pytest.raises(ConversionError) as raised:
        converter.convert(b"PK\x03\x04 this is not a docx \x00\x01\x02" * 20)

    assert raised.value.message.startswith("LibreOffice 没有生成 PDF（doc0000.docx）")
    assert "source file could not be loaded" in raised.value.details["stderr"]


# --- fake soffice scripts --------------------------------------------------------------------

def fake_soffice(tmp_path: Path, body: str, name: str = "soffice") -> Path:
    """A shell script standing in for soffice. ``$OUTDIR`` and the ``.docx`` inputs are parsed
    from the arguments the converter passes."""
    script = tmp_path / name
    script.write_text(
        "#!/bin/sh\n"
        'OUTDIR=""; prev=""\n'
        'for a in "$@"; do [ "$prev" = "--outdir" ] && OUTDIR="$a"; prev="$a"; done\n'
        + body, encoding="utf-8")
    script.chmod(0o755)
    return script


FAKE_PDFS = ('mkdir -p "$OUTDIR"\n'
             'for a in "$@"; do case "$a" in *.docx)\n'
             '  printf "%%PDF-1.4 fake %s" "$(cat "$a")" > "$OUTDIR/$(basename "$a" .docx).pdf";;\n'
             'esac; done\n')


def test_missing_binary():
    with pytest.raises(ConversionError) as raised:
        SofficeConverter(binary="no-such-soffice").convert(b"PK-x")

    assert "找不到 LibreOffice（no-such-soffice）" in raised.value.message
    assert raised.value.details == {"binary": "no-such-soffice"}


def test_nothing_to_convert_runs_nothing():
    assert SofficeConverter(binary="no-such-soffice").convert_many([]) == []


def test_results_are_matched_to_inputs_by_name(tmp_path):
    conv = SofficeConverter(binary=str(fake_soffice(tmp_path, FAKE_PDFS)), timeout=10)

    pdfs = conv.convert_many([f"PK-doc-{i}".encode() for i in range(12)])

    assert pdfs == [f"%PDF-1.4 fake PK-doc-{i}".encode() for i in range(12)]


def test_private_profile_fonts_and_headless_plugin(tmp_path):
    script = fake_soffice(tmp_path, 'printf "%s\\n" "$@" > "$0.args"\n'
                                    'echo "$FONTCONFIG_FILE|$SAL_USE_VCLPLUGIN" > "$0.env"\n'
                          + FAKE_PDFS)
    with SofficeConverter(binary=str(script), timeout=10) as conv:
        conv.convert(b"PK-a")
        first = Path(f"{script}.args").read_text().splitlines()
        conv.convert(b"PK-b")
        second = Path(f"{script}.args").read_text().splitlines()

    profile = [a for a in first if a.startswith("-env:UserInstallation=file://")]
    assert len(profile) == 1 and profile[0] in second  # one profile per converter, reused
    assert "--headless" in first and "pdf:writer_pdf_Export" in first
    assert Path(f"{script}.env").read_text().strip() == f"{FONTS_CONF}|svp"
    profile_dir = Path(profile[0].split("file://", 1)[1])
    assert not profile_dir.exists()  # close() removed it


def test_hung_converter_is_killed_with_its_children(tmp_path):
    script = fake_soffice(tmp_path, 'printf "%s\\n" "$@" > "$0.args"\n'
                                    'sleep 300 &\n'
                                    'echo $! > "$0.child"\n'
                                    'sleep 300\n')
    conv = SofficeConverter(binary=str(script), timeout=1)
    started = time.monotonic()

    with pytest.raises(ConversionError) as raised:
        conv.convert(b"PK-x")

    elapsed = time.monotonic() - started
    child = int(Path(f"{script}.child").read_text())
    try:
        assert "超时（1 秒）" in raised.value.message
        assert raised.value.details == {"timeout": 1}
        assert elapsed < 5
        assert wait_until_dead(child, seconds=3), f"child {child} still running"
        profile = next(a for a in Path(f"{script}.args").read_text().splitlines()
                       if a.startswith("-env:UserInstallation="))
        assert not Path(profile.split("file://", 1)[1]).exists()  # a killed office's profile
    finally:
        if not wait_until_dead(child, seconds=0):
            os.kill(child, signal.SIGKILL)


def wait_until_dead(pid: int, seconds: float) -> bool:
    """True once ``pid`` is gone or a zombie (dead, waiting for init to reap it)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            os.kill(pid, 0)
            status = Path(f"/proc/{pid}/status").read_text()
        except (ProcessLookupError, FileNotFoundError):
            return True
        state = next(line for line in status.splitlines() if line.startswith("State:"))
        if state.split()[1] in ("Z", "X"):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def test_exit_zero_without_output(tmp_path):
    conv = SofficeConverter(binary=str(fake_soffice(tmp_path, "exit 0\n")), timeout=10)

    with pytest.raises(ConversionError) as raised:
        conv.convert(b"PK-x")

    assert raised.value.message == "LibreOffice 没有生成 PDF（doc0000.docx）"


def test_output_that_is_not_a_pdf_is_refused(tmp_path):
    body = ('mkdir -p "$OUTDIR"\necho "<html>error</html>" > "$OUTDIR/doc0000.pdf"\n'
            'echo "warning: odd filter" >&2\n')
    conv = SofficeConverter(binary=str(fake_soffice(tmp_path, body)), timeout=10)

    with pytest.raises(ConversionError) as raised:
        conv.convert(b"PK-x")

    assert raised.value.message == ("LibreOffice 没有生成 PDF（doc0000.docx）："
                                    "warning: odd filter")


def test_partial_output_is_never_returned(tmp_path):
    body = ('mkdir -p "$OUTDIR"\nprintf "%%PDF-1.4 one" > "$OUTDIR/doc0000.pdf"\n'
            'printf "%%PDF-1.4 three" > "$OUTDIR/doc0002.pdf"\n')
    conv = SofficeConverter(binary=str(fake_soffice(tmp_path, body)), timeout=10)

    with pytest.raises(ConversionError) as raised:
        conv.convert_many([b"PK-1", b"PK-2", b"PK-3"])

    assert "doc0001.docx" in raised.value.message


def test_non_zero_exit_carries_the_stderr_tail(tmp_path):
    body = 'echo "loading profile" >&2\necho "fatal: cannot open display" >&2\nexit 3\n'
    conv = SofficeConverter(binary=str(fake_soffice(tmp_path, body)), timeout=10)

    with pytest.raises(ConversionError) as raised:
        conv.convert(b"PK-x")

    err = raised.value
    assert err.message == "LibreOffice 退出码 3：loading profile\nfatal: cannot open display"
    assert err.details == {"returncode": 3,
                           "stderr": "loading profile\nfatal: cannot open display\n"}


def test_long_stderr_is_cut_to_its_last_300_characters(tmp_path):
    body = 'printf "HEAD%0500dTAIL" 0 >&2\nexit 1\n'
    conv = SofficeConverter(binary=str(fake_soffice(tmp_path, body)), timeout=10)

    with pytest.raises(ConversionError) as raised:
        conv.convert(b"PK-x")

    assert raised.value.message == "LibreOffice 退出码 1：" + ("0" * 296 + "TAIL")
    assert raised.value.details["stderr"].startswith("HEAD")
