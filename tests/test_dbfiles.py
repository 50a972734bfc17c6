"""Issued files kept in the PostgreSQL store (config.toml ``files = "database"``, issue 17), on
the run's own PostgreSQL server: written in the transaction that records the document, once per
content, read back through a checked local cache by the engine, the web app and the CLI,
checked by ``verify`` (a row changed in SQL is reported), and carried by ``store copy`` to a
folder and back, byte for byte. Kills in each window, with files in the database, are in
test_kill.py."""
from __future__ import annotations

import hashlib
import json
import shutil
import stat
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
from pypdf import PdfReader

from engine import Engine, load_config
from engine.errors import DealerDocsError, IntegrityError
from engine.store.postgres import PostgresStore
from helpers import (database_state, example, keep_files_in_database, make_dealer_dir,
                     run_cli)
from web_support import DEMO_PASSWORD, client, sign_in


def _text(path: Path) -> str:
    return "".join(page.extract_text() for page in PdfReader(str(path)).pages)


def _on_database(folder: Path, postgres, converter) -> tuple[str, Path, Engine]:
    """A dealership in ``folder`` whose store and files are in a new database: (its URL,
    its config, an engine on it)."""
    url = postgres.new_database()
    config = keep_files_in_database(make_dealer_dir(folder / "dealer"), url)
    return url, config, Engine(load_config(config), converter=converter)


def _two_quotes(engine: Engine) -> tuple[str, str]:
    """刘晓明's quote issued, and 王芳's drafted: their case ids."""
    kept = engine.create("quote", example("quote"), "zhang").id
    engine.fire(kept, "issue", "zhang")
    other = engine.create("quote", example("quote", customer_name="王芳",
                                           customer_mobile="13900139000"), "zhang").id
    return kept, other


@pytest.fixture(scope="module")
def group(tmp_path_factory, postgres, converter):
    """A dealership whose store and files are in one database: two quotes issued, the
    second revised (its first version's PDF stamped 已收回). Shared by the module's tests,
    which leave it as they found it."""
    folder = tmp_path_factory.mktemp("group")
    url, config, engine = _on_database(folder, postgres, converter)
    try:
        kept, revised = _two_quotes(engine)
        engine.fire(revised, "issue", "zhang")
        engine.fire(revised, "revise", "zhang", {"discount": "9000.00"})
        [doc] = engine.case(kept, actor="zhang")["documents"]
        old, new = engine.case(revised, actor="zhang")["documents"]
    finally:
        engine.close()
    return SimpleNamespace(config=config, url=url, folder=folder / "dealer", doc=doc,
                           old=old, new=new)


@pytest.fixture
def engine_of(group, converter):
    made = []

    def open_engine(config: Path | None = None) -> Engine:
        made.append(Engine(load_config(config or group.config), converter=converter))
        return made[-1]

    yield open_engine
    for engine in made:
        engine.close()


def _rows(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def _sql(url: str, sql: str, params: tuple = ()) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql, params)


def test_issued_files_are_rows_written_with_their_document(group, engine_of):
    names = dict(_rows(group.url, "SELECT name, sha256 FROM dd_file_names"))
    doc, old = group.doc, group.old
    expected = {f"{d['year']}/quote/{d['number']}{suffix}": d[f"{kind}_sha256"]
                for d in (doc, old, group.new) for suffix, kind in ((".docx", "docx"),
                                                                     (".pdf", "pdf"))}
    expected[f"{old['year']}/quote/{old['number']}.recalled.pdf"] = old["stamped_sha256"]
    assert names == expected and old["stamped_pdf"].endswith(".recalled.pdf")
    for digest, size, hashed in _rows(group.url, "SELECT sha256, size, encode(sha256(bytes), "
                                                 "'hex') FROM dd_files"):
        assert hashed == digest and size > 1000
    assert not (group.folder / "outbox").exists()   # nothing in an outbox folder
    engine = engine_of()
    assert engine.verify() == []
    life = engine.document(doc["number"], actor="zhang")   # the record keeps names and hashes
    assert life["docx_sha256"] == doc["docx_sha256"] and life["pdf_sha256"] == doc["pdf_sha256"]


def test_a_pdf_downloads_from_the_database_through_the_engine_and_the_web(group, engine_of):
    cache = group.folder / "store" / "cache" / "files"
    shutil.rmtree(cache, ignore_errors=True)   # what the issuing server kept: read it again
    engine = engine_of()
    number = group.doc["number"]
    pdf = engine.document_file(number, "pdf", actor="zhang")
    assert pdf.parent.parent == cache and pdf.name == f"{group.doc['pdf_sha256']}.pdf"
    assert stat.S_IMODE(pdf.stat().st_mode) == 0o600
    text = _text(pdf)
    assert number in text and "刘晓明" in text
    assert engine.document_file(number, "docx", actor="zhang").read_bytes().startswith(b"PK")
    stamped = engine.document_file(group.old["number"], "stamped", actor="zhang")
    assert "已收回" in _text(stamped)
    assert engine.page_count(number, actor="zhang") >= 1
    assert engine.page_image(number, 1, actor="zhang").read_bytes().startswith(b"\x89PNG")

    from engine.web.app import create_app

    shutil.rmtree(cache)
    c = client(create_app(engine))
    assert sign_in(c, "zhang").status_code == 200
    page = c.get(f"/documents/{number}/file/pdf")
    assert page.status_code == 200 and page.headers["content-type"] == "application/pdf"
    assert hashlib.sha256(page.content).hexdigest() == group.doc["pdf_sha256"]
    token = c.post("/api/token", json={"login": "zhang", "password": DEMO_PASSWORD}).json()
    api = c.get(f"/api/documents/{number}/pdf",
                headers={"Authorization": f"Bearer {token['token']}"})
    assert api.status_code == 200 and api.content == page.content


def test_local_copies_are_kept_a_few_days_after_their_last_use(group, engine_of):
    """The cache holds buyers' ID numbers: a copy unused for longer than the archive keeps
    them goes when another is made; one used again is kept from then on."""
    import os
    import time

    shutil.rmtree(group.folder / "store" / "cache" / "files", ignore_errors=True)
    engine = engine_of()
    keep = engine.archive.keep_seconds
    used = engine.document_file(group.doc["number"], "pdf", actor="zhang")
    stale = engine.document_file(group.new["number"], "pdf", actor="zhang")
    long_ago = time.time() - keep - 3600
    for path in (used, stale):
        os.utime(path, (long_ago, long_ago))
    assert engine.document_file(group.doc["number"], "pdf", actor="zhang") == used  # used now
    engine.document_file(group.old["number"], "docx", actor="zhang")   # a new copy made

    assert used.is_file() and not stale.exists()
    assert engine.document_file(group.new["number"], "pdf", actor="zhang").is_file()


def test_the_same_content_is_kept_once_and_goes_with_its_last_name(postgres):
    store = PostgresStore(postgres.new_database())
    data = b"%PDF-1.4 the same bytes"
    digest = hashlib.sha256(data).hexdigest()
    try:
        with store.transaction() as tx:
            tx.put_file("2026/quote/A.pdf", digest, data)
            tx.put_file("2026/quote/B.pdf", digest, data)
        state = database_state(store.url)
        assert len(state["dd_files"]) == 1 and len(state["dd_file_names"]) == 2
        with store.transaction() as tx:
            tx.drop_file("2026/quote/A.pdf")
        with store.snapshot() as tx:
            assert tx.file(digest) == data and tx.file_names() == [("2026/quote/B.pdf", digest)]
        with store.transaction() as tx:
            tx.drop_file("2026/quote/B.pdf")
        assert "dd_files" not in database_state(store.url)
    finally:
        store.close()


def test_a_step_that_fails_before_its_commit_leaves_no_file_row(group, engine_of):
    engine = engine_of()
    before = database_state(group.url)
    written = []

    def step(tx, work):
        work.write(engine.archive, tx, "2026/quote/never.pdf", b"%PDF-1.4 never committed")
        if not work.rehearsal:   # the real run, under the lock, fails before its commit
            written.extend(work.written)
            raise DealerDocsError("这一步在提交前失败")

    with pytest.raises(DealerDocsError):
        engine.units.run(step)
    assert database_state(group.url) == before
    assert written and not any(path.exists() for path in written)   # nor its cached copy


def test_verify_reports_a_row_changed_or_missing_in_sql(group, engine_of):
    doc = group.doc
    engine = engine_of()
    kept = _rows(group.url, "SELECT n.name, f.sha256, f.size, f.bytes FROM dd_file_names n "
                            "JOIN dd_files f USING (sha256) WHERE n.name IN (%s, %s)",
                 (f"{doc['year']}/quote/{doc['number']}.pdf",
                  f"{doc['year']}/quote/{doc['number']}.docx"))
    assert len(kept) == 2
    shutil.rmtree(group.folder / "store" / "cache" / "files", ignore_errors=True)
    try:
        _sql(group.url, "UPDATE dd_files SET bytes = bytes || '\\x00'::bytea WHERE sha256 = %s",
             (doc["pdf_sha256"],))
        _sql(group.url, "UPDATE dd_files SET bytes = 'not a docx' WHERE sha256 = %s",
             (doc["docx_sha256"],))
        problems = {(p["number"], p["problem"], p["path"]) for p in engine.verify()}
        where = f"数据库 {group.url} 中的 {doc['year']}/quote/{doc['number']}"
        assert problems == {(doc["number"], "changed", f"{where}.pdf"),
                            (doc["number"], "changed", f"{where}.docx")}
        with pytest.raises(IntegrityError) as raised:   # never handed out
            engine.document_file(doc["number"], "pdf", actor="zhang")
        assert "与登记的 sha256 不符" in raised.value.message
        verified = run_cli("verify", "--config", str(group.config), cwd=group.folder,
                           check=False)
        assert verified.returncode == 10 and "文件已被改动" in verified.stderr

        _sql(group.url, "DELETE FROM dd_file_names WHERE sha256 = %s", (doc["docx_sha256"],))
        _sql(group.url, "DELETE FROM dd_files WHERE sha256 = %s", (doc["docx_sha256"],))
        assert {(p["problem"], Path(p["path"]).suffix) for p in engine.verify()} == {
            ("changed", ".pdf"), ("missing", ".docx")}
        assert not engine.document_file(doc["number"], "docx", actor="zhang").exists()
    finally:
        for name, digest, size, data in kept:   # the rows as they were
            _sql(group.url, "INSERT INTO dd_files (sha256, size, bytes) VALUES (%s, %s, %s) "
                            "ON CONFLICT (sha256) DO UPDATE SET bytes = EXCLUDED.bytes",
                 (digest, size, data))
            _sql(group.url, "INSERT INTO dd_file_names (name, sha256) VALUES (%s, %s) "
                            "ON CONFLICT DO NOTHING", (name, digest))
    assert engine.verify() == []


def _files(url: str) -> dict[str, bytes]:
    return {name: bytes(data) for name, data in _rows(
        url, "SELECT n.name, f.bytes FROM dd_file_names n JOIN dd_files f USING (sha256)")}


def test_store_copy_carries_the_files_to_a_folder_and_back(group, engine_of, postgres):
    shutil.rmtree(group.folder / "store" / "cache" / "files", ignore_errors=True)
    original = _files(group.url)
    folder = group.folder
    refused = run_cli("store", "copy", "--to", str(folder / "back"), "--config",
                      str(group.config), cwd=folder, check=False)
    assert refused.returncode != 0 and "--outbox DIR" in refused.stderr

    out = run_cli("store", "copy", "--to", str(folder / "back"), "--outbox",
                  str(folder / "back-outbox"), "--config", str(group.config), "--json",
                  cwd=folder)
    result = json.loads(out.stdout)
    assert result["files"] == 7 and result["files_skipped"] == [] \
        and result["files_setting"] == "outbox"
    assert {str(p.relative_to(folder / "back-outbox")): p.read_bytes()
            for p in (folder / "back-outbox").rglob("*") if p.is_file()} == original
    on_folder = folder / "config-folder.toml"
    on_folder.write_text(
        group.config.read_text(encoding="utf-8").split("\n", 1)[1]   # without store = …
        .replace('files = "database"', 'files = "outbox"')
        .replace('store = "store"', f'store = {json.dumps(str(folder / "back"))}')
        .replace('outbox = "outbox"', f'outbox = {json.dumps(str(folder / "back-outbox"))}'),
        encoding="utf-8")
    assert engine_of(on_folder).verify() == []

    url = postgres.new_database()
    out = run_cli("store", "copy", "--to", url, "--files", "database", "--config",
                  str(on_folder), "--json", cwd=folder)
    assert json.loads(out.stdout)["files"] == 7
    assert _files(url) == original
    again = folder / "config-again.toml"
    again.write_text(f"store = {json.dumps(url)}\n"
                     + on_folder.read_text(encoding="utf-8").replace('files = "outbox"',
                                                                     'files = "database"'),
                     encoding="utf-8")
    assert engine_of(again).verify() == []


def test_a_purge_erases_the_rows_of_the_files_it_erases(postgres, converter, tmp_path):
    url, _, engine = _on_database(tmp_path, postgres, converter)
    try:
        _, gone = _two_quotes(engine)
        [doc] = engine.fire(gone, "issue", "zhang").documents
        engine.fire(gone, "cancel", "zhang")
        local = engine.document_file(doc.number, "pdf", actor="zhang")
        assert local.is_file()

        result = engine.purge(actor="wang", customer="13900139000")

        assert gone in [p["case"] for p in result["purged"]]
        names = {n for (n,) in _rows(url, "SELECT name FROM dd_file_names")}
        assert not any(doc.number in n for n in names) and len(names) == 2   # kept's two
        hashes = {h for (h,) in _rows(url, "SELECT sha256 FROM dd_files")}
        assert doc.pdf_sha256 not in hashes and doc.docx_sha256 not in hashes
        assert not local.exists()
        assert engine.verify() == []
    finally:
        engine.close()
