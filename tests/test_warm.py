"""One behavioural suite for both converters (cold soffice, warm unoserver pool), plus what only
the warm pool does: start idempotently, survive a killed LibreOffice, stop cleanly."""
from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from pathlib import Path

import docx
import pytest

from engine import Engine, load_config
from engine.convert import SofficeConverter
from engine.errors import ConversionError
from engine.warm import WarmConverter, find_unoserver

from helpers import pdf_text


def chinese_docx(text: str) -> bytes:
    document = docx.Document()
    document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    if find_unoserver() is None:
        pytest.fail("unoserver is not installed: run `make setup` (it builds .venv-uno)")
    pool = WarmConverter(tmp_path_factory.mktemp("warm"), instances=1, timeout=60)
    pool.start()
    yield pool
    pool.stop()


@pytest.fixture(params=["cold", "warm"])
def any_converter(request, converter):
    return converter if request.param == "cold" else request.getfixturevalue("warm")


def test_converts_chinese_text(any_converter, tmp_path):
    pdf = any_converter.convert(chinese_docx("商谈报价单 刘晓明 壹拾伍万元整"))
    assert pdf.startswith(b"%PDF-")
    (tmp_path / "x.pdf").write_bytes(pdf)
    assert "商谈报价单 刘晓明 壹拾伍万元整" in pdf_text(tmp_path / "x.pdf")


def test_many_documents_come_back_in_order(any_converter, tmp_path):
    names = ["甲方文件", "乙方文件", "丙方文件"]
    pdfs = any_converter.convert_many([chinese_docx(n) for n in names])
    for i, (name, pdf) in enumerate(zip(names, pdfs)):
        (tmp_path / f"{i}.pdf").write_bytes(pdf)
        assert name in pdf_text(tmp_path / f"{i}.pdf")


def test_svg_for_stamps(any_converter):
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="210mm" height="297mm">'
           '<text x="50" y="100" font-family="Noto Sans CJK SC">作废</text></svg>')
    assert any_converter.convert(svg.encode("utf-8"), suffix=".svg").startswith(b"%PDF-")


def test_non_docx_is_refused(any_converter):
    with pytest.raises(ConversionError) as raised:
        any_converter.convert_many([chinese_docx("好"), b"not a docx"])
    assert "第 2 个输入不是 Word" in raised.value.message


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/status") as fh:
        return "State:\tZ" not in fh.read()


def test_start_is_idempotent_and_a_killed_instance_is_replaced(warm, tmp_path):
    before = warm.status()
    assert [i["alive"] for i in before] == [True]
    assert [i["pid"] for i in warm.start()] == [before[0]["pid"]]

    os.killpg(before[0]["pid"], signal.SIGKILL)  # LibreOffice and its unoserver die
    pdf = warm.convert(chinese_docx("实例崩溃后仍能转换"))  # converted cold meanwhile
    (tmp_path / "x.pdf").write_bytes(pdf)
    assert "实例崩溃后仍能转换" in pdf_text(tmp_path / "x.pdf")
    [replaced] = warm._load()
    assert replaced["pid"] != before[0]["pid"]
    deadline = time.monotonic() + 60
    while not warm._alive(replaced) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert warm.status()[0]["alive"]


def test_two_commands_restarting_the_same_dead_instance_start_one(warm):
    [dead] = warm._load()
    other = WarmConverter(warm.state_dir, instances=1, timeout=60)  # a second command
    os.killpg(dead["pid"], signal.SIGKILL)
    warm._restart(dead)
    other._restart(dead)   # saw the same instance die: finds it already replaced
    [now] = warm._load()
    assert now["pid"] != dead["pid"] and _alive(now["pid"])
    deadline = time.monotonic() + 60
    while not warm._alive(now) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [i["pid"] for i in warm.status() if i["alive"]] == [now["pid"]]
    assert _sessions_using(warm.state_dir) == {now["pid"]}  # no orphaned second instance


def _sessions_using(folder) -> set[int]:
    """Session ids of the processes whose command line names ``folder`` (a pool's)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(folder) in (entry / "cmdline").read_bytes().decode(
                    errors="replace").replace("\0", " "):
                found.add(os.getsid(int(entry.name)))
        except (OSError, ProcessLookupError):
            continue
    return found


def test_an_instance_is_recycled_after_its_share_of_documents(tmp_path):
    pool = WarmConverter(tmp_path / "pool", instances=1, timeout=60, recycle_after=2)
    [first] = pool.start()
    try:
        texts = ["第一份", "第二份", "第三份"]
        pdfs = [pool.convert(chinese_docx(t)) for t in texts]
        for i, (text, pdf) in enumerate(zip(texts, pdfs)):
            (tmp_path / f"{i}.pdf").write_bytes(pdf)
            assert text in pdf_text(tmp_path / f"{i}.pdf")
        [now] = pool._load()
        assert now["pid"] != first["pid"] and not _alive(first["pid"])
        assert _sessions_using(pool.state_dir) == {now["pid"]}
    finally:
        pool.stop()


def _soffice_of(inst: dict) -> list[int]:
    """The LibreOffice processes of a warm instance (its session)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getsid(int(entry.name)) == inst["pid"] and \
                    (entry / "comm").read_text().strip() == "soffice.bin":
                pids.append(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
    return pids


def test_an_instance_killed_mid_document_still_gives_the_pdf(warm, tmp_path):
    [inst] = [i for i in warm.status() if i["alive"]]
    [office] = _soffice_of(inst)
    os.kill(office, signal.SIGSTOP)          # the document is in flight and stays there …
    result = {}
    worker = threading.Thread(target=lambda: result.update(
        pdf=warm.convert(chinese_docx("转换途中实例被杀"))))
    worker.start()
    time.sleep(1.0)
    os.killpg(inst["pid"], signal.SIGKILL)   # … when the instance is killed
    os.kill(office, signal.SIGKILL)
    worker.join(timeout=120)
    (tmp_path / "x.pdf").write_bytes(result["pdf"])
    assert "转换途中实例被杀" in pdf_text(tmp_path / "x.pdf")
    [replaced] = warm._load()
    assert replaced["pid"] != inst["pid"]
    deadline = time.monotonic() + 60
    while not warm._alive(replaced) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "恢复后" in _text_of(warm.convert(chinese_docx("恢复后")), tmp_path)


def _text_of(pdf: bytes, folder) -> str:
    (folder / "t.pdf").write_bytes(pdf)
    return pdf_text(folder / "t.pdf")


def test_a_hanging_document_times_out_restarts_the_instance_and_converts_cold(tmp_path):
    pool = WarmConverter(tmp_path / "pool", instances=1, timeout=8)
    [inst] = pool.start()
    try:
        pool.convert(chinese_docx("预热"))
        [office] = _soffice_of(inst)
        os.kill(office, signal.SIGSTOP)      # LibreOffice hangs on the next document
        started = time.monotonic()
        pdf = pool.convert(chinese_docx("卡住的文档"))
        waited = time.monotonic() - started
        assert "卡住的文档" in _text_of(pdf, tmp_path)   # converted cold after the timeout
        assert waited < 60   # bounded by the per-document timeout, not hanging for ever
        [replaced] = pool._load()
        assert replaced["pid"] != inst["pid"] and not _alive(office)
    finally:
        pool.stop()


def test_stop_leaves_no_process(tmp_path):
    pool = WarmConverter(tmp_path / "pool", instances=1, timeout=60)
    [inst] = pool.start()
    assert pool.stop() == 1
    time.sleep(1)
    assert not _alive(inst["pid"]) and pool.status() == []


def test_engine_uses_a_started_pool_and_falls_back_when_it_is_gone(config_path, tmp_path):
    config = load_config(config_path)
    state = config.store_dir / "converter"
    state.mkdir(parents=True)
    (state / "pool.json").write_text(json.dumps([{"slot": 0, "pid": 999999, "port": 1,
                                                  "uno_port": 2, "profile": str(tmp_path),
                                                  "log": str(tmp_path / "log")}]))
    engine = Engine(config)
    assert isinstance(engine.converter, WarmConverter)
    try:
        pdf = engine.converter.convert(chinese_docx("冷启动兜底"))
        assert pdf.startswith(b"%PDF-")
        [restarted] = engine.converter._load()  # the dead instance was replaced
        assert restarted["pid"] != 999999
    finally:
        engine.converter.stop()
        engine.close()
    plain = Engine(load_config(config_path))
    (state / "pool.json").unlink()
    assert isinstance(plain.converter, SofficeConverter)
