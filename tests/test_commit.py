"""The commit point is final and readers never wait for LibreOffice: the store's reader/writer
lock, conversions made before the exclusive lock is taken, what an interruption after the
journal leaves, short writes, a failing ``syncfs``, an empty or corrupt journal, private
files. Real store, real LibreOffice."""
from __future__ import annotations

import os
import signal
import stat
import threading
from pathlib import Path

import pytest

from engine import Engine, load_config
from engine.lock import LockTimeout, RWFileLock
from engine.store import deferred_signals
from helpers import pdf_text, refused, run_cli


class GatedConverter:
    """The real converter, stopping inside its first conversion until the test lets it go:
    the test then knows an issue is mid-conversion, without any sleep."""

    def __init__(self, real) -> None:
        self.real = real
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def convert_many(self, documents, suffix=".docx"):
        self.calls += 1
        if self.calls == 1:
            self.entered.set()
            assert self.release.wait(120), "the test never released the conversion"
        return self.real.convert_many(documents, suffix)

    def convert(self, data, suffix=".docx"):
        return self.convert_many([data], suffix)[0]

    def close(self):
        pass


def _engine(config_path, converter, clock, lock_timeout=None):
    config = load_config(config_path)
    if lock_timeout is not None:
        import dataclasses
        config = dataclasses.replace(config, lock_timeout=lock_timeout)
    return Engine(config, converter=converter, clock=clock)


def _outbox_files(engine) -> list[Path]:
    return sorted(p for p in engine.archive.root.rglob("*") if p.is_file())


# --- the lock ----------------------------------------------------------------------------------

def test_readers_share_the_lock_and_a_writer_waits_for_them(tmp_path):
    lock = RWFileLock(tmp_path / "x.lock", timeout=0.2)
    other = RWFileLock(tmp_path / "x.lock", timeout=0.2)   # another process, as far as flock sees
    holding, done = threading.Event(), threading.Event()

    def reader():
        with other.shared():
            holding.set()
            done.wait(30)

    t = threading.Thread(target=reader)
    t.start()
    assert holding.wait(30)
    with lock.shared():                      # a second reader goes in at once
        assert lock.held() == "shared"
    with pytest.raises(LockTimeout):         # a writer waits for the reader
        with lock.exclusive():
            pass
    done.set()
    t.join(30)
    with lock.exclusive():                   # and goes in once it has left
        with lock.shared():                  # a read inside a write goes through
            assert lock.held() == "exclusive"
    with lock.shared(), pytest.raises(RuntimeError):
        with lock.exclusive():               # no upgrade: two such threads would deadlock
            pass


def test_signals_wait_until_the_block_is_done():
    got = []
    previous = signal.signal(signal.SIGINT, lambda s, f: got.append("handled"))
    try:
        with deferred_signals():
            os.kill(os.getpid(), signal.SIGINT)
            got.append("inside, not interrupted")
        assert got == ["inside, not interrupted", "handled"]
    finally:
        signal.signal(signal.SIGINT, previous)


# --- readers never wait for a conversion ------------------------------------------------------

def test_a_page_read_does_not_wait_for_an_issue_converting(config_path, converter, clock,
                                                           quote_data):
    gated = GatedConverter(converter)
    writer = _engine(config_path, gated, clock)
    writer.create("quote", quote_data, "zhang")
    # a reader that gives up after 2 s: it fails if the issue holds the store while converting
    reader = _engine(config_path, converter, clock, lock_timeout=2)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("fired", writer.fire("Q-1", "issue",
                                                                              "zhang")))
    t.start()
    try:
        assert gated.entered.wait(120)       # LibreOffice is working on the quote now
        assert reader.case("Q-1", actor="zhang")["state"] == "draft"
        assert [c["id"] for c in reader.cases("quote", actor="wang")] == ["Q-1"]
        other = reader.create("quote", {**quote_data, "customer_mobile": "13900001111"},
                              "li")               # a writer that converts nothing
        assert other.id == "Q-2"
    finally:
        gated.release.set()
        t.join(120)
    assert result["fired"].state == "issued"
    assert reader.case("Q-1", actor="zhang")["documents"][0]["number"] == "BJ-2026-000001"


def test_a_number_taken_during_the_conversion_is_rendered_again(config_path, converter, clock,
                                                                quote_data):
    """Between the rehearsal and the commit another process issues a quote and takes the
    number the rehearsal rendered: the issue is tried again and each PDF shows its own number."""
    gated = GatedConverter(converter)
    first = _engine(config_path, gated, clock)
    second = _engine(config_path, converter, clock)
    first.create("quote", {**quote_data, "customer_name": "王芳"}, "zhang")
    second.create("quote", {**quote_data, "customer_name": "李强"}, "zhang")
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("q1", first.fire("Q-1", "issue", "zhang")))
    t.start()
    assert gated.entered.wait(120)
    q2 = second.fire("Q-2", "issue", "zhang")      # takes BJ-2026-000001 meanwhile
    gated.release.set()
    t.join(180)
    assert q2.documents[0].number == "BJ-2026-000001"
    q1 = out["q1"].documents[0]
    assert q1.number == "BJ-2026-000002"
    text = pdf_text(q1.pdf).replace(" ", "")
    assert "BJ-2026-000002" in text and "王芳" in text and "BJ-2026-000001" not in text
    assert first.verify() == []


# --- the commit point is final ----------------------------------------------------------------

def test_an_interruption_after_the_journal_keeps_the_files(engine, quote_data, monkeypatch):
    """Ctrl-C (or a full disk) while the committed journal is applied: the issue happened,
    so its PDF and .docx stay, the next process finishes the write and verify passes."""
    engine.create("quote", quote_data, "zhang")

    def interrupted(manifest):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(type(engine.store.commits), "apply", lambda self, manifest: interrupted(manifest))
        with pytest.raises(KeyboardInterrupt):
            engine.fire("Q-1", "issue", "zhang")
    assert engine.store.journal.exists()
    names = [p.name for p in _outbox_files(engine)]
    assert names == ["BJ-2026-000001.docx", "BJ-2026-000001.pdf"]
    case = engine.case("Q-1", actor="zhang")          # the next read finishes the write
    assert case["state"] == "issued" and not engine.store.journal.exists()
    assert engine.verify() == []


def test_a_failing_syncfs_keeps_the_journal(engine, quote_data, monkeypatch):
    engine.create("quote", quote_data, "zhang")

    def failing(path):
        raise OSError(5, "Input/output error (test)")

    with monkeypatch.context() as patched:
        patched.setattr("engine.store.journal.sync_filesystem", failing)
        result = engine.fire("Q-1", "issue", "zhang")   # committed: the journal is durable
        assert engine.store.journal.exists()              # kept, since the files may be lost
    assert result.documents[0].pdf.is_file()
    assert engine.case("Q-1", actor="zhang")["state"] == "issued"
    assert not engine.store.journal.exists() and engine.verify() == []


def test_short_writes_are_completed(engine, quote_data, monkeypatch):
    real_write = os.write
    calls = []

    def short(fd, data):
        calls.append(len(data))
        return real_write(fd, bytes(data[:7]))

    engine.create("quote", quote_data, "zhang")
    with monkeypatch.context() as patched:
        patched.setattr(os, "write", short)
        engine.fire("Q-1", "issue", "zhang")
    assert max(calls) > 7                      # there were writes to cut short
    assert engine.verify() == []               # every file and log line came out whole
    assert engine.case("Q-1", actor="zhang")["history"][-1]["trigger"] == "issue"


@pytest.mark.parametrize("content, what", [(b"", "是空的"), (b'{"replace": {"meta.json": 1}',
                                                           "已损坏"),
                                           (b'{"replace": {}, "append": {"../x": [0, ""]}}',
                                            "之外")])
def test_an_empty_or_corrupt_journal_is_reported_with_a_way_out(dealer, content, what):
    run_cli("new", "quote", "--data", str(Path(__file__).parent.parent / "examples" / "quote.json"),
            "--as", "zhang", cwd=dealer)
    journal = dealer / "store" / "journal" / "commit.json"
    journal.parent.mkdir(exist_ok=True)
    journal.write_bytes(content)
    line = refused(dealer, "show", "Q-1", "--as", "zhang")
    assert what in line and "dealerdocs recover --discard-journal" in line
    proc = run_cli("recover", "--discard-journal", cwd=dealer)
    assert "已把数据库日志移到" in proc.stdout and "校验：通过" in proc.stdout
    assert not journal.exists() and list(journal.parent.glob("discarded-*.json"))
    assert run_cli("show", "Q-1", "--as", "zhang", "--json", cwd=dealer).returncode == 0
    assert not (dealer / "x").exists()


def test_store_and_outbox_files_are_private(engine, quote_data):
    engine.create("quote", quote_data, "zhang")
    engine.fire("Q-1", "issue", "zhang")
    paths = [p for root in (engine.store.directory, engine.archive.root)
             for p in [root, *root.rglob("*")]]
    assert len(paths) > 10
    loose = [str(p) for p in paths if stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert loose == []


def test_a_rehearsal_writes_no_file_and_the_files_are_durable_before_the_commit(
        engine, quote_data, monkeypatch):
    """The outbox is written once, by the real run, and every file it writes is fsynced
    (with its folder) before the journal, the commit point, is written: after a power cut a
    committed document has its files."""
    import engine.files as files

    engine.create("quote", quote_data, "zhang")
    events: list[tuple[str, str]] = []
    real_fsync, real_write = os.fsync, type(engine.archive).write

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def write(self, relative, data):
        events.append(("outbox", relative))
        return real_write(self, relative, data)

    monkeypatch.setattr(files.os, "fsync", fsync)
    monkeypatch.setattr(type(engine.archive), "write", write)
    doc = engine.fire("Q-1", "issue", "zhang").documents[0]
    written = [path for kind, path in events if kind == "outbox"]
    assert written == [str(Path(doc.docx).relative_to(engine.archive.root)),
                       str(Path(doc.pdf).relative_to(engine.archive.root))]
    synced = [path for kind, path in events if kind == "fsync"]
    journal = next(i for i, p in enumerate(synced) if "/journal/" in p)
    before = synced[:journal]
    for path in (doc.docx, doc.pdf):
        assert any(p.startswith(str(path.parent) + "/." + path.name) for p in before), path
        assert str(path.parent) in before      # the folder, so the new name survives too
