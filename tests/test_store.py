"""The store: atomic, locked read-modify-write; survives kill -9; two processes lose nothing."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from engine.errors import StorageError
from engine.store import SCHEMA_VERSION, Store

from helpers import ROOT


def test_commit_once_on_success(tmp_path):
    store = Store(tmp_path)
    with store.transaction() as tx:
        assert tx.next_counter("a") == 1
        assert tx.next_counter("a") == 2
        tx.put("cases", "id", {"id": "Q-1", "state": "draft"})
        tx.put("cases", "id", {"id": "Q-1", "state": "issued"})  # upsert by key
    with store.snapshot() as tx:
        assert tx.search("cases") == [{"id": "Q-1", "state": "issued",
                                       "schema_version": SCHEMA_VERSION}]
        assert tx.peek_counter("a") == 2


def test_exception_writes_nothing(tmp_path):
    store = Store(tmp_path)
    with store.transaction() as tx:
        tx.put("cases", "id", {"id": "Q-1", "state": "draft"})
    before = store.storage.path.read_bytes()
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.put("cases", "id", {"id": "Q-1", "state": "issued"})
            tx.next_counter("a")
            raise RuntimeError("boom")
    assert store.storage.path.read_bytes() == before
    assert not list(tmp_path.glob(".dealerdocs.json.*.tmp"))


def test_snapshot_is_read_only_and_needs_no_file(tmp_path):
    store = Store(tmp_path / "new")
    with store.snapshot() as tx:
        assert tx.all("cases") == []
        with pytest.raises(StorageError):
            tx.put("cases", "id", {"id": "x"})
    assert not (tmp_path / "new").exists()


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


def test_lock_timeout_is_a_clear_error(tmp_path):
    holder = Store(tmp_path)
    waiter = Store(tmp_path, lock_timeout=0.2)
    with holder.transaction():
        with pytest.raises(StorageError) as raised:
            with waiter.transaction():
                pass
    assert "另一个 dealerdocs 进程" in raised.value.message


_COUNTER_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from engine.store import Store
store = Store({path!r})
for _ in range({n}):
    with store.transaction() as tx:
        value = tx.next_counter("shared")
        tx.append("log", {{"who": {who!r}, "value": value}})
"""


def test_two_processes_lose_no_update(tmp_path):
    n = 150
    procs = [subprocess.Popen([sys.executable, "-c", _COUNTER_SCRIPT.format(
        root=str(ROOT), path=str(tmp_path), n=n, who=who)]) for who in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with Store(tmp_path).snapshot() as tx:
        log = tx.all("log")
        assert tx.peek_counter("shared") == 2 * n
    values = sorted(r["value"] for r in log)
    assert values == list(range(1, 2 * n + 1))
    assert {r["who"] for r in log} == {"a", "b"}


_WRITER_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from engine.store import Store
store = Store({path!r})
blob = "数据" * 100_000   # ~600 KB per write: a wide window for the kill to land in
while True:
    with store.transaction() as tx:
        value = tx.next_counter("writes")
        tx.put("blobs", "id", {{"id": "b", "value": value, "blob": blob}})
    print(value, flush=True)
"""


def test_kill_9_during_writes_leaves_a_readable_store(tmp_path):
    rng = random.Random(7)
    for round_ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER_SCRIPT.format(
            root=str(ROOT), path=str(tmp_path))], stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()  # at least one commit happened
        time.sleep(rng.uniform(0.05, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        printed = [int(line) for line in proc.stdout.read().split()]
        proc.wait()
        with Store(tmp_path).snapshot() as tx:  # parses, or raises StorageError
            writes = tx.peek_counter("writes")
            blob = tx.get("blobs", "id", "b")
        assert blob["value"] == writes
        if printed:
            # what was acknowledged is durable; at most the one in flight is extra
            assert printed[-1] <= writes <= printed[-1] + 1
    assert writes >= 5


def test_a_version_1_store_is_migrated_to_hash_chains(tmp_path):
    from engine import chain

    v1 = {
        "_meta": {"1": {"schema_version": 1}},
        "cases": {"1": {"id": "Q-1", "workflow": "quote", "state": "issued", "data": {},
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
    store = Store(tmp_path)
    with store.transaction() as tx:  # migrated on load, written back with the next change
        audit, log = tx.all("audit"), tx.all("register_log")
        assert chain.check(audit, tx.chain_head("audit")) is None
        assert chain.check(log, tx.chain_head("register_log")) is None
        assert [e["trigger"] for e in sorted(audit, key=lambda e: e["seq"])] == ["create", "issue"]
        assert [(e["event"], e["number"]) for e in log] == [("issued", "BJ-2026-000001")]
        tx.append_chained("audit", {"trigger": "accept", "case_id": "Q-1"})
    with store.snapshot() as tx:
        assert chain.check(tx.all("audit"), tx.chain_head("audit")) is None
        assert len(tx.all("audit")) == 3
    stored = json.loads((tmp_path / "dealerdocs.json").read_text(encoding="utf-8"))
    assert stored["_meta"]["1"]["schema_version"] == SCHEMA_VERSION
