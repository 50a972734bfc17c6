"""The store: atomic, locked read-modify-write; survives kill -9; two processes lose nothing."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datetime import date

from engine import chain
from engine.errors import StorageError
from engine.store import SCHEMA_VERSION, Journal, Store, Upgrade

# the store's own upgrades, without an engine: owners are the openers, no entry redacted (the
# engine's redaction of personal values is tested in test_privacy.py)
PLAIN = Upgrade(owners=lambda record: [record["created_by"]], redact=lambda entry: entry)

from helpers import ROOT


def _case(case_id: str, state: str = "draft", day: str = "2026-11-20", **extra) -> dict:
    return {"id": case_id, "workflow": "quote", "state": state, "data": {},
            "created_at": f"{day}T09:00:00+08:00", "created_by": "zhang",
            "updated_at": f"{day}T09:00:00+08:00", "updated_by": "zhang", **extra}


def _doc(number: str, case_id: str, day: str = "2026-11-20", status: str = "issued") -> dict:
    return {"number": number, "case_id": case_id, "status": status, "kind": "quote",
            "issued_at": f"{day}T10:00:00+08:00", "issued_by": "zhang",
            "pdf_sha256": "a" * 64, "docx_sha256": "b" * 64}


def test_commit_once_on_success(backend):
    store = backend.open()
    with store.transaction() as tx:
        assert tx.next_counter("a") == 1
        assert tx.next_counter("a") == 2
        tx.put_case(_case("Q-1"))
        tx.put_case(_case("Q-1", "issued"))  # replaced, not added
        assert tx.case("Q-1")["state"] == "issued"   # a unit of work sees its own changes
    with store.snapshot() as tx:
        assert tx.case("Q-1") == {**_case("Q-1", "issued"), "schema_version": SCHEMA_VERSION}
        assert [c["id"] for c in tx.find_cases(state="issued")] == ["Q-1"]
        assert tx.find_cases(state="draft") == []
        assert tx.peek_counter("a") == 2
    assert store.exists()
    if backend.kind == "folder":
        assert not (Path(backend.where) / "journal" / "commit.json").exists()


def test_exception_writes_nothing(backend):
    store = backend.open()
    with store.transaction() as tx:
        tx.put_case(_case("Q-1"))
    before = backend.state()
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.put_case(_case("Q-1", "issued"))
            tx.put_document(_doc("BJ-1", "Q-1"))
            tx.next_counter("a")
            raise RuntimeError("boom")
    assert backend.state() == before and before
    if backend.kind == "folder":
        assert not list(Path(backend.where).rglob("*.tmp"))
    with store.snapshot() as tx:
        assert tx.case("Q-1")["state"] == "draft" and tx.peek_counter("a") == 0


def test_a_rehearsal_is_never_committed(backend):
    store = backend.open()
    with store.transaction() as tx:
        tx.put_case(_case("Q-1"))
    before = backend.state()
    with store.rehearsal() as tx:
        assert tx.next_counter("a") == 1 and tx.next_counter("a") == 2
        tx.put_case(_case("Q-1", "issued"))
        tx.put_document(_doc("BJ-1", "Q-1"))
        tx.append_chained("audit", {"at": "2026-11-20T10:00:00+08:00", "case_id": "Q-1"})
        assert tx.case("Q-1")["state"] == "issued" and tx.peek_counter("a") == 2
        assert [e["seq"] for e in tx.case_log("audit", "Q-1")] == [1]
    assert backend.state() == before
    with store.snapshot() as tx:
        assert tx.case("Q-1")["state"] == "draft" and tx.document("BJ-1") is None
        assert tx.log_entries("audit") == [] and tx.chain_head("audit") is None


def test_snapshot_is_read_only_and_needs_no_file(tmp_path):
    store = Store(tmp_path / "new")
    with store.snapshot() as tx:
        assert tx.find_cases() == [] and tx.case("Q-1") is None and tx.document("x") is None
        with pytest.raises(StorageError):
            tx.put_case(_case("Q-1"))
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("case_id", ["../Q-1", "..-1", "Q-1/../../x-2", "Q", "Q-x", ""])
def test_case_ids_never_name_a_path_outside_the_store(tmp_path, case_id):
    store = Store(tmp_path / "s")
    with store.transaction() as tx:
        tx.put_case(_case("Q-1"))
    with store.snapshot() as tx:
        assert tx.case(case_id) is None
    with pytest.raises(StorageError):
        with store.transaction() as tx:
            tx.put_case(_case(case_id))


def test_documents_copies_and_logs_are_found_by_number_and_case(backend):
    store = backend.open()
    with store.transaction() as tx:
        tx.put_case(_case("Q-1"))
        tx.put_case(_case("Q-2", day="2026-11-21"))
        tx.put_document(_doc("BJ-1", "Q-1"))
        tx.put_document(_doc("BJ-2", "Q-2", day="2026-11-21"))
        tx.put_copy({"key": "BJ-2-01/1", "number": "BJ-2", "copy_no": 1,
                     "issued_at": "2026-11-22T10:00:00+08:00"})
        tx.append_chained("audit", {"at": "2026-11-21T10:00:00+08:00", "case_id": "Q-2"})
        tx.append_chained("register_log", {"at": "2026-12-01T10:00:00+08:00",
                                           "event": "dispatched", "number": "BJ-2"})
    with store.snapshot() as tx:
        assert tx.document("BJ-2")["case_id"] == "Q-2" and tx.case_of("BJ-1") == "Q-1"
        assert [c["key"] for c in tx.copies("BJ-2")] == ["BJ-2-01/1"] and tx.copies("BJ-1") == []
        assert [d["number"] for d in tx.find_documents(issued_from=date(2026, 11, 21))] == ["BJ-2"]
        assert [d["number"] for d in tx.find_documents(issued_to=date(2026, 11, 20))] == ["BJ-1"]
        assert [c["id"] for c in tx.find_cases(opened_from=date(2026, 11, 21),
                                               opened_to=date(2026, 11, 21))] == ["Q-2"]
        assert [e["seq"] for e in tx.case_log("audit", "Q-2")] == [1]
        assert [e["event"] for e in tx.case_log("register_log", "Q-2")] == ["dispatched"]
        assert tx.case_log("audit", "Q-1") == []
        for name in ("audit", "register_log"):
            assert chain.check(tx.log_entries(name), tx.chain_head(name)) is None
    if backend.kind == "folder":
        assert (Path(backend.where) / "log" / "register_log" / "2026-12.jsonl").exists()


def test_listings_marks_sessions_and_definitions_read_back(backend):
    owner = "0123456789abcdef" * 2
    store = backend.open(listing=lambda r: {"due": r["data"].get("due"),
                                            "held": r["data"].get("held", False),
                                            "final": r["state"] == "done",
                                            "people": r["data"].get("people", [])})
    with store.transaction() as tx:
        tx.put_case(_case("F-1", data={"due": "2026-11-25", "people": ["ab12"]}))
        tx.put_case(_case("F-2", data={"due": "2026-12-09", "held": True}))
        tx.put_case(_case("F-3", "done", data={"people": ["ab12"]}))
        tx.set_mark("b1", "F-1", {"made": True})
        tx.set_mark("b1", "F-1", {"sent": 2})
        tx.set_session(owner, "s1", {"login": "zhang"})
        tx.set_session(owner, "s2", {"login": "zhang"})
        tx.set_definition("quote", "h1")
    with store.transaction() as tx:
        tx.set_session(owner, "s1", None)
        tx.put_case(_case("F-2", data={"due": "2026-11-30"}))   # moved due, no longer held
    with store.snapshot() as tx:
        assert [c["id"] for c in tx.due_cases("quote", date(2026, 11, 30))] == ["F-1", "F-2"]
        assert [c["id"] for c in tx.due_cases("quote", date(2026, 11, 29))] == ["F-1"]
        assert tx.held_cases("quote") == []
        assert [c["id"] for c in tx.find_cases(open_only=True)] == ["F-1", "F-2"]
        assert tx.cases_of_person("ab12") == ["F-1", "F-3"] and tx.cases_of_person("x") == []
        assert tx.marks("b1") == {"F-1": {"made": True, "sent": 2}}
        assert list(tx.sessions(owner)) == ["s2"]
        assert tx.definition("quote") == "h1" and tx.definition("other") is None
        assert sorted(c["id"] for c in tx.cases_in_store()) == ["F-1", "F-2", "F-3"]
        with pytest.raises(StorageError):
            tx.set_mark("b1", "F-2", {})


def test_a_committed_journal_is_finished_by_the_next_process(tmp_path, monkeypatch):
    store = Store(tmp_path)
    with store.transaction() as tx:
        tx.put_case(_case("Q-1"))
    with monkeypatch.context() as patched:   # "crash" right after the commit point
        patched.setattr(Journal, "apply", lambda self, manifest: (_ for _ in ()).throw(
            KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            with store.transaction() as tx:
                tx.put_case(_case("Q-1", "issued"))
                tx.put_document(_doc("BJ-1", "Q-1"))
                tx.append_chained("audit", {"at": "2026-11-20T10:00:00+08:00", "case_id": "Q-1"})
    assert (tmp_path / "journal" / "commit.json").exists()
    with Store(tmp_path).snapshot() as tx:    # the next process finishes the unit of work
        assert tx.case("Q-1")["state"] == "issued" and tx.document("BJ-1") is not None
        assert [c["state"] for c in tx.find_cases()] == ["issued"]
        assert chain.check(tx.log_entries("audit"), tx.chain_head("audit")) is None
    assert not (tmp_path / "journal" / "commit.json").exists()
    with Store(tmp_path).snapshot() as tx:    # and replaying never applies twice
        assert len(tx.log_entries("audit")) == 1


@pytest.mark.parametrize("content, words", [
    ("{\"cases\": {", "已损坏"),
    ("{\"cases\": {}}", "schema_version"),
    (json.dumps({"_meta": {"1": {"schema_version": SCHEMA_VERSION + 1}}}), "请升级"),
])
def test_unreadable_or_foreign_store_is_reported(tmp_path, content, words):
    (tmp_path / "dealerdocs.json").write_text(content, encoding="utf-8")
    with pytest.raises(StorageError) as raised:
        with Store(tmp_path).snapshot():
            pass
    assert words in raised.value.message


def test_lock_timeout_is_a_clear_error(backend):
    holder = backend.open()
    waiter = backend.open(lock_timeout=0.2)
    with holder.transaction():
        with pytest.raises(StorageError) as raised:
            with waiter.transaction():
                pass
    assert "另一个 dealerdocs 进程" in raised.value.message


_COUNTER_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from engine.store import store_at
store = store_at({path!r})
for _ in range({n}):
    with store.transaction() as tx:
        value = tx.next_counter("shared")
        tx.append_chained("audit", {{"at": "2026-11-20T10:00:00", "who": {who!r}, "value": value}})
"""


def test_two_processes_lose_no_update(backend):
    n = 150
    procs = [subprocess.Popen([sys.executable, "-c", _COUNTER_SCRIPT.format(
        root=str(ROOT), path=backend.where, n=n, who=who)]) for who in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with backend.open().snapshot() as tx:
        log = tx.log_entries("audit")
        assert tx.peek_counter("shared") == 2 * n
        assert chain.check(log, tx.chain_head("audit")) is None
    values = sorted(r["value"] for r in log)
    assert values == list(range(1, 2 * n + 1))
    assert {r["who"] for r in log} == {"a", "b"}


_WRITER_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from engine.store import store_at
store = store_at({path!r})
blob = "数据" * 100_000   # ~600 KB per write: a wide window for the kill to land in
while True:
    with store.transaction() as tx:
        value = tx.next_counter("writes")
        tx.put_case({{"id": "B-1", "workflow": "w", "state": str(value), "data": {{"blob": blob}},
                     "created_at": "2026-11-20T09:00", "created_by": "a",
                     "updated_at": "2026-11-20T09:00", "updated_by": "a"}})
        tx.append_chained("audit", {{"at": "2026-11-20T09:00", "case_id": "B-1", "v": value}})
    print(value, flush=True)
"""


def test_kill_9_during_writes_leaves_a_readable_store(backend):
    rng = random.Random(7)
    for round_ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER_SCRIPT.format(
            root=str(ROOT), path=backend.where)], stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()  # at least one commit happened
        time.sleep(rng.uniform(0.05, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        printed = [int(line) for line in proc.stdout.read().split()]
        proc.wait()
        with backend.open().snapshot() as tx:  # parses, or raises StorageError
            writes = tx.peek_counter("writes")
            case = tx.case("B-1")
            assert [c["state"] for c in tx.find_cases()] == [str(writes)]
            assert chain.check(tx.log_entries("audit"), tx.chain_head("audit")) is None
            assert len(tx.case_log("audit", "B-1")) == writes
        assert case["state"] == str(writes)
        if printed:
            # what was acknowledged is durable; at most the one in flight is extra
            assert printed[-1] <= writes <= printed[-1] + 1
    assert writes >= 5


def test_a_version_1_store_is_migrated_to_hash_chains(tmp_path):
    from engine import chain

    v1 = {
        "_meta": {"1": {"schema_version": 1}},
        "cases": {"1": {"id": "Q-1", "workflow": "quote", "state": "issued", "data": {},
                        "created_at": "2026-11-20T09:00:00+08:00", "created_by": "zhang",
                        "updated_at": "2026-11-20T10:00:00+08:00", "updated_by": "zhang",
                        "schema_version": 1}},
        "documents": {"1": {"number": "BJ-2026-000001", "case_id": "Q-1", "status": "issued",
                            "issued_at": "2026-11-20T10:00:00+08:00", "issued_by": "zhang",
                            "pdf_sha256": "a" * 64, "docx_sha256": "b" * 64,
                            "schema_version": 1}},
        "counters": {"1": {"key": "audit", "value": 2, "schema_version": 1}},
        "audit": {"1": {"seq": 1, "at": "2026-11-20T09:00:00+08:00", "actor": "zhang",
                        "trigger": "create", "case_id": "Q-1", "schema_version": 1},
                  "2": {"seq": 2, "at": "2026-11-20T10:00:00+08:00", "actor": "zhang",
                        "trigger": "issue", "case_id": "Q-1", "schema_version": 1}},
    }
    (tmp_path / "dealerdocs.json").write_text(json.dumps(v1), encoding="utf-8")
    store = Store(tmp_path, upgrade=PLAIN)
    with store.transaction() as tx:  # migrated on first use: 1 → 2 (chains) → … → 5
        audit, log = tx.log_entries("audit"), tx.log_entries("register_log")
        assert chain.check(audit, tx.chain_head("audit")) is None
        assert chain.check(log, tx.chain_head("register_log")) is None
        assert [e["trigger"] for e in sorted(audit, key=lambda e: e["seq"])] == ["create", "issue"]
        assert [(e["event"], e["number"]) for e in log] == [("issued", "BJ-2026-000001")]
        tx.append_chained("audit", {"at": "2026-11-21T09:00:00+08:00", "trigger": "accept",
                                    "case_id": "Q-1"})
    with store.snapshot() as tx:
        assert chain.check(tx.log_entries("audit"), tx.chain_head("audit")) is None
        assert len(tx.log_entries("audit")) == 3
        assert [e["trigger"] for e in tx.case_log("audit", "Q-1")] == ["create", "issue", "accept"]
        assert tx.document("BJ-2026-000001")["case_id"] == "Q-1"
        assert [c["id"] for c in tx.find_cases(state="issued")] == ["Q-1"]
    stored = json.loads((tmp_path / "meta.json").read_text(encoding="utf-8"))
    assert stored["_meta"]["1"]["schema_version"] == SCHEMA_VERSION
    assert not (tmp_path / "dealerdocs.json").exists()
    assert (tmp_path / "dealerdocs.v2.json").exists()  # the old file is kept beside it


def test_a_version_2_store_from_the_demo_is_migrated_whole(tmp_path):
    """The single-file store `make demo` wrote before schema 3 (14 cases, 20 documents, copies,
    chained logs) becomes partitions with nothing lost and every chain intact."""
    old = json.loads((ROOT / "tests" / "data" / "store-v2-demo.json").read_text(encoding="utf-8"))
    (tmp_path / "dealerdocs.json").write_text(json.dumps(old, ensure_ascii=False), encoding="utf-8")
    with Store(tmp_path, upgrade=PLAIN).snapshot() as tx:
        cases = list(tx.cases_in_store())
        assert sorted(c["id"] for c in cases) == sorted(c["id"] for c in old["cases"].values())
        assert {c["id"]: c["state"] for c in cases} == \
            {c["id"]: c["state"] for c in old["cases"].values()}
        for doc in old["documents"].values():
            assert tx.document(doc["number"])["pdf_sha256"] == doc["pdf_sha256"]
        for copy in old["copies"].values():
            assert copy["key"] in {c["key"] for c in tx.copies(copy["number"])}
        for name in ("audit", "register_log"):
            entries = tx.log_entries(name)
            assert len(entries) == len(old[name])
            assert chain.check(entries, tx.chain_head(name)) is None
        assert len(tx.find_documents()) == len(old["documents"])
        assert sum(len(tx.case_log("audit", c["id"])) for c in cases) == len(old["audit"])
        counters = {r["key"]: r["value"] for r in old["counters"].values()}
        for key, value in counters.items():
            if not key.startswith("copy:"):
                assert tx.peek_counter(key) == value
    assert (tmp_path / "dealerdocs.v2.json").exists() and not (tmp_path / "dealerdocs.json").exists()


def test_the_index_cache_of_a_long_running_process_stays_within_its_budget(tmp_path, monkeypatch):
    from engine.store import jsonfiles as store_module

    store = Store(tmp_path)
    with store.transaction() as tx:
        for day in range(1, 29):
            tx.put_case(_case(f"Q-{day}", day=f"2026-02-{day:02d}"))
    store_module.clear_index_cache()
    monkeypatch.setattr(store_module, "_INDEX_CACHE_BYTES", 2048)  # a few day files
    with store.snapshot() as tx:
        assert len(tx.find_cases()) == 28   # every day read, correct, though not all kept
    assert 0 < store_module._index_cache_size <= 2048 and len(store_module._INDEX_CACHE) < 28
    assert sum(k[1] for k, _ in store_module._INDEX_CACHE.values()) == store_module._index_cache_size
    store_module.clear_index_cache()


def test_one_registry_brings_every_older_layout_to_the_current_one():
    from engine.store import MIGRATIONS
    from engine.store.migrations import version_of

    assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION))
    assert version_of(ROOT / "no-such-store") == (None, None)


def test_a_stores_view_of_a_groups_store(backend):
    """engine.store.scoped: one store of a group reads and writes only its own cases,
    documents and copies (records from before [stores] are the first store's); the group's
    view reads them all and writes none."""
    from engine.errors import StorageError
    from engine.store.scoped import StoreView

    whole = backend.open()
    with whole.transaction() as tx:   # from before the group had stores: no code
        tx.put_case(_case("Q-1"))
        tx.put_document(_doc("BJ-1", "Q-1"))
    bj, sh = StoreView(whole, "BJ01", "BJ01"), StoreView(whole, "SH01", "BJ01")
    group = StoreView(whole, None, "BJ01")
    with sh.transaction() as tx:
        tx.put_case(_case("Q-2"))
        tx.put_document(_doc("SH01-BJ-1", "Q-2"))
        tx.put_copy({"key": "SH01-BJ-1#1", "number": "SH01-BJ-1", "status": "out",
                     "issued_at": "2026-11-20T11:00:00+08:00"})
        with pytest.raises(StorageError, match="属于门店 BJ01"):
            tx.put_case(_case("Q-1", store="BJ01"))

    with whole.snapshot() as tx:
        assert tx.case("Q-2")["store"] == "SH01" and "store" not in tx.case("Q-1")
        assert tx.document("SH01-BJ-1")["store"] == "SH01"
    for view, cases, numbers in ((bj, ["Q-1"], ["BJ-1"]), (sh, ["Q-2"], ["SH01-BJ-1"]),
                                 (group, ["Q-1", "Q-2"], ["BJ-1", "SH01-BJ-1"])):
        with view.snapshot() as tx:
            assert [c["id"] for c in tx.find_cases()] == cases
            assert [c["id"] for c in tx.find_cases(open_only=True)] == cases
            assert [d["number"] for d in tx.find_documents()] == numbers
            assert [tx.case(i) is not None for i in ("Q-1", "Q-2")] == [
                i in cases for i in ("Q-1", "Q-2")]
            assert [tx.document(n) is not None for n in ("BJ-1", "SH01-BJ-1")] == [
                n in numbers for n in ("BJ-1", "SH01-BJ-1")]
            assert len(tx.find_copies()) == (0 if view is bj else 1)
            assert len(tx.copies("SH01-BJ-1")) == (0 if view is bj else 1)
    before = backend.state()
    with pytest.raises(StorageError, match="集团视图只读"):
        with group.transaction() as tx:
            tx.put_case(_case("Q-3"))
    assert backend.state() == before
