"""What only the warm pool does: start idempotently, replace a killed or hung instance (once,
however many commands saw it die), recycle an instance, stop cleanly, and give every document
back even when its instance dies under it. The behavioural suite of the converter contract runs
against both converters in test_convert.py.

Nothing here sleeps for a guessed time: a test waits for something it can see (a process gone,
a log line, an instance answering) and a hang is caught by the per-test timeout."""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docx
import pytest

from engine import Engine, load_config
from engine.convert import SofficeConverter
from engine.warm import WarmConverter, find_office_python

from helpers import pdf_text
from processes import ready, running, state, wait_for

# A hang inside the pool (its ThreadPoolExecutor waits for a stuck document) cannot be unwound
# by pytest-timeout's default signal method: the thread method ends the run with every stack.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300, method="thread")]


def chinese_docx(text: str) -> bytes:
    document = docx.Document()
    document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def text_of(pdf: bytes, folder: Path) -> str:
    (folder / "t.pdf").write_bytes(pdf)
    return pdf_text(folder / "t.pdf")





def sessions_using(folder) -> set[int]:
    """Session ids of the running processes whose command line names ``folder`` (a pool's):
    one per warm instance (its worker and its LibreOffice share a session)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(folder) in (entry / "cmdline").read_bytes().decode(
                    errors="replace").replace("\0", " ") and running(int(entry.name)):
                found.add(os.getsid(int(entry.name)))
        except (OSError, ProcessLookupError):
            continue
    return found


def soffice_of(inst: dict) -> list[int]:
    """The running LibreOffice processes of a warm instance (its session)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getsid(int(entry.name)) == inst["pid"] and \
                    (entry / "comm").read_text().strip() == "soffice.bin" and \
                    running(int(entry.name)):
                pids.append(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
    return pids


def documents_received(inst: dict) -> int:
    """How many documents the instance's worker has taken in, by its log (it logs each
    before handing it to LibreOffice)."""
    return Path(inst["log"]).read_text(errors="replace").count("converting ")


def kill_instance(inst: dict) -> None:
    """SIGKILL an instance's process group (its worker and its LibreOffice) and wait until the
    processes are gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(inst["pid"], signal.SIGKILL)
    wait_for(lambda: not running(inst["pid"]) and not soffice_of(inst),
             f"the killed instance {inst['pid']} gone")



@pytest.fixture(scope="module")
def warm_pool(tmp_path_factory):
    if find_office_python() is None:
        pytest.fail("no Python with LibreOffice's uno module: run `make setup` (python3-uno)")
    pool = WarmConverter(tmp_path_factory.mktemp("warm"), instances=1, timeout=60)
    pool.start()
    yield pool
    pool.stop()


@pytest.fixture
def warm(warm_pool) -> WarmConverter:
    """The module's one-instance pool, its instance answering."""
    return ready(warm_pool)


def test_start_is_idempotent_and_a_killed_instance_is_replaced(warm, tmp_path):
    before = warm.status()
    assert [i["alive"] for i in before] == [True]
    assert [i["pid"] for i in warm.start()] == [before[0]["pid"]]

    kill_instance(before[0])  # LibreOffice and its worker die between two commands
    pdf = warm.convert(chinese_docx("实例崩溃后仍能转换"))  # converted cold meanwhile

    assert "实例崩溃后仍能转换" in text_of(pdf, tmp_path)
    [replaced] = warm._load()
    assert replaced["pid"] != before[0]["pid"]
    wait_for(lambda: warm._alive(replaced), "the replacement instance answering")
    assert [(i["pid"], i["alive"]) for i in warm.status()] == [(replaced["pid"], True)]


def test_two_commands_restarting_the_same_dead_instance_start_one(warm):
    """Two commands (two converters on one pool folder) saw the same instance die and replace
    it at the same moment: the pool's lock lets one start a replacement; the other finds the
    pool file already naming it and starts none."""
    [dead] = warm._load()
    kill_instance(dead)
    commands = [WarmConverter(warm.state_dir, instances=1, timeout=60) for _ in range(2)]
    together = threading.Barrier(len(commands))

    def restart(command: WarmConverter) -> None:
        together.wait()
        command._restart(dead)

    with ThreadPoolExecutor(max_workers=len(commands)) as threads:
        for done in [threads.submit(restart, command) for command in commands]:
            done.result()

    [now] = warm._load()
    assert now["pid"] != dead["pid"]
    try:
        assert sessions_using(warm.state_dir) == {now["pid"]}  # one replacement, no orphan
    finally:
        for orphan in sessions_using(warm.state_dir) - {now["pid"]}:
            os.killpg(orphan, signal.SIGKILL)  # one the pool no longer knows
    wait_for(lambda: warm._alive(now), "the one replacement answering")


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
        assert now["pid"] != first["pid"]
        wait_for(lambda: not running(first["pid"]) and not soffice_of(first),
                 "the recycled instance gone")
        assert sessions_using(pool.state_dir) == {now["pid"]}
    finally:
        pool.stop()


def stop_office_before_the_document(pool: WarmConverter, office: int) -> None:
    """Make LibreOffice hang after the instance answered the pool's liveness check and before
    the document is sent: wrap the pool's per-document step to SIGSTOP ``office`` first. (Stopped
    any earlier, the instance fails that check and the document never reaches it.)"""
    convert_one = pool._convert_one

    def stopped_then_sent(inst, data, suffix):
        os.kill(office, signal.SIGSTOP)
        return convert_one(inst, data, suffix)

    pool._convert_one = stopped_then_sent


def test_an_instance_killed_mid_document_still_gives_the_pdf(warm, tmp_path):
    [inst] = warm._load()
    [office] = soffice_of(inst)
    received = documents_received(inst)
    stop_office_before_the_document(warm, office)
    result = {}

    def convert() -> None:
        try:
            result["pdf"] = warm.convert(chinese_docx("转换途中实例被杀"))
        except BaseException as err:  # re-raised below, in the test's thread
            result["error"] = err

    worker = threading.Thread(target=convert, daemon=True)
    worker.start()
    try:
        wait_for(lambda: documents_received(inst) > received and state(office) == "T",
                 "the instance holding the document, its LibreOffice stopped")
    finally:
        del warm._convert_one  # the pool's own step again
        kill_instance(inst)    # … when the instance is killed
    worker.join()

    assert "error" not in result, result.get("error")
    assert "转换途中实例被杀" in text_of(result["pdf"], tmp_path)  # converted cold
    [replaced] = warm._load()
    assert replaced["pid"] != inst["pid"]
    wait_for(lambda: warm._alive(replaced), "the replacement instance answering")
    assert "恢复后" in text_of(warm.convert(chinese_docx("恢复后")), tmp_path)


@pytest.mark.timeout(180, method="thread")
def test_a_hanging_document_times_out_restarts_the_instance_and_converts_cold(tmp_path, caplog):
    """The per-document timeout, not the liveness check, gives up on a document LibreOffice
    hangs on; a hang of the pool itself is what this test's timeout would catch."""
    pool = WarmConverter(tmp_path / "pool", instances=1, timeout=8)
    [inst] = pool.start()
    try:
        pool.convert(chinese_docx("预热"))
        [office] = soffice_of(inst)
        stop_office_before_the_document(pool, office)

        with caplog.at_level(logging.WARNING, logger="engine.warm"):
            pdf = pool.convert(chinese_docx("卡住的文档"))

        assert "卡住的文档" in text_of(pdf, tmp_path)  # converted cold after the timeout
        # given up by the pool's socket timeout, the per-document limit
        [warning] = [r.getMessage() for r in caplog.records
                     if r.name == "engine.warm" and r.levelno >= logging.WARNING]
        assert re.fullmatch(
            rf"warm instance 0 \(pid {inst['pid']}\) failed \(TimeoutError: timed out\); "
            r"restarting it, converting cold", warning), warning
        [replaced] = pool._load()
        assert replaced["pid"] != inst["pid"]
        wait_for(lambda: not running(office), f"the hung LibreOffice {office} killed")
    finally:
        pool.stop()


def test_stop_leaves_no_process(tmp_path):
    pool = WarmConverter(tmp_path / "pool", instances=1, timeout=60)
    [inst] = pool.start()
    assert sessions_using(pool.state_dir) == {inst["pid"]}

    assert pool.stop() == 1

    # both, polled: a process on its way out has an empty command line (its memory is gone)
    # a moment before it stops running, so the first can hold while the second does not yet
    wait_for(lambda: not sessions_using(pool.state_dir) and not running(inst["pid"]),
             "every process of the pool gone, the worker too")
    assert pool.status() == []


def test_engine_uses_a_started_pool_and_falls_back_when_it_is_gone(config_path, tmp_path):
    config = load_config(config_path)
    state_dir = config.store_dir / "converter"
    state_dir.mkdir(parents=True)
    (state_dir / "pool.json").write_text(json.dumps([{"slot": 0, "pid": 999999,
                                                      "socket": str(tmp_path / "gone.sock"),
                                                      "profile": str(tmp_path),
                                                      "log": str(tmp_path / "log")}]))
    engine = Engine(config)
    assert isinstance(engine.converter, WarmConverter)
    try:
        pdf = engine.converter.convert(chinese_docx("冷启动兜底"))
        assert "冷启动兜底" in text_of(pdf, tmp_path)
        [restarted] = engine.converter._load()  # the dead instance was replaced
        assert restarted["pid"] != 999999
    finally:
        engine.converter.stop()
        engine.close()
    plain = Engine(load_config(config_path))
    (state_dir / "pool.json").unlink()
    assert isinstance(plain.converter, SofficeConverter)


def test_workers_starting_the_pool_at_once_make_one_pool(tmp_path):
    """Two workers of one server (two converters on one pool folder) start the pool at the
    same moment: one pool of the configured size results, not one each, and both use it."""
    folder = tmp_path / "pool"
    pools = [WarmConverter(folder, instances=2, timeout=60) for _ in range(2)]
    try:
        with ThreadPoolExecutor(max_workers=2) as executor:
            started = [f.result() for f in [executor.submit(p.start) for p in pools]]
        pids = {inst["pid"] for inst in json.loads((folder / "pool.json").read_text())}
        assert len(pids) == 2 and {i["pid"] for i in started[0]} == pids
        assert {i["pid"] for i in started[1]} == pids
        assert sessions_using(folder) == pids      # no third or fourth LibreOffice running
    finally:
        pools[0].stop()
    wait_for(lambda: not sessions_using(folder), "every process of the pool gone")


def test_documents_left_on_the_tmpfs_by_a_killed_conversion_are_swept(warm_pool_dir):
    """A process killed while converting leaves its .docx (a customer's data) in the shared
    work folder; the next converter to use the folder removes what is older than any
    conversion can take."""
    import os
    import time

    from engine.warm import WarmConverter

    first = WarmConverter(warm_pool_dir, instances=2, timeout=180)
    folder = Path(first._work_dir())
    left = folder / "left-by-a-killed-process.docx"
    fresh = folder / "being-converted-now.docx"
    for path in (left, fresh):
        path.write_bytes(b"PK")
    old = time.time() - 4000
    os.utime(left, (old, old))

    WarmConverter(warm_pool_dir, instances=2, timeout=180)._work_dir()

    assert not left.exists() and fresh.exists()
    fresh.unlink()
