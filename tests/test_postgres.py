"""The store on PostgreSQL, as a dealer group runs it (issue 17): chosen in config.toml with no
password in the file; readers never wait for a writer; concurrent issuing clients get unique,
gap-free numbers; `dealerdocs store copy` moves the demo store to PostgreSQL and back with
`verify` passing and the chain heads unchanged. The behavioural suites that run on both
backends are in test_store.py, test_engine.py and test_kill.py."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine import Engine, load_config
from engine.errors import ConfigError, StorageError
from engine.store.postgres import PostgresStore

from helpers import ROOT, dealerdocs_bin, example, run_cli, use_database


def _config_text(tmp_path: Path, store: str) -> Path:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(f"store = {json.dumps(store)}\n{text}", encoding="utf-8")
    return path


@pytest.mark.parametrize("store, words", [
    ("postgresql://dealerdocs:secret@db.example/dealerdocs", "PGPASSWORD"),
    ("postgresql://dealerdocs@db/x?password=secret", "PGPASSWORD"),
    ("mysql://dealerdocs@db/x", "PostgreSQL 连接地址"),
    ("/srv/store", "PostgreSQL 连接地址"),
])
def test_the_database_is_named_without_its_password(tmp_path, store, words):
    with pytest.raises(ConfigError) as raised:
        load_config(_config_text(tmp_path, store))
    assert words in raised.value.message and raised.value.details["key"] == "store"


def test_an_unreachable_server_is_a_clear_error(tmp_path):
    store = PostgresStore("postgresql://dealerdocs@127.0.0.1:1/nowhere", lock_timeout=2)
    with pytest.raises(StorageError) as raised:
        with store.snapshot():
            pass
    assert "无法连接 PostgreSQL 数据库" in raised.value.message


def test_readers_do_not_wait_for_a_writer(postgres):
    url = postgres.new_database()
    writer, reader = PostgresStore(url), PostgresStore(url, lock_timeout=0.2)
    try:
        with writer.transaction() as tx:
            tx.put_case({"id": "Q-1", "workflow": "quote", "state": "draft", "data": {},
                         "created_at": "2026-11-20T09:00:00+08:00", "created_by": "zhang",
                         "updated_at": "2026-11-20T09:00:00+08:00", "updated_by": "zhang"})
        with writer.transaction() as tx:   # a writer holding the lock, its change not committed
            tx.put_case({**tx.case("Q-1"), "state": "issued"})
            with reader.snapshot() as seen:  # answered at once, from the last commit
                assert seen.case("Q-1")["state"] == "draft"
            with pytest.raises(StorageError) as raised:   # a second writer waits, then says so
                with reader.transaction():
                    pass
            assert "另一个 dealerdocs 进程" in raised.value.message
        with reader.snapshot() as seen:
            assert seen.case("Q-1")["state"] == "issued"
    finally:
        writer.close()
        reader.close()


def test_two_servers_starting_together_make_the_tables_once(postgres):
    url = postgres.new_database()
    script = (f"import sys; sys.path[:0] = [{str(ROOT)!r}]\n"
              f"from engine.store.postgres import PostgresStore\n"
              f"with PostgresStore({url!r}).snapshot() as tx: print(tx.peek_counter('x'))\n")
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, results
    assert [out.strip() for out, _ in results] == ["0"] * 4


@pytest.mark.slow
def test_eight_concurrent_issuing_clients_get_unique_gap_free_numbers(dealer, postgres,
                                                                      converter):
    use_database(dealer / "config.toml", postgres.new_database())
    engine = Engine(load_config(dealer / "config.toml"), converter=converter)
    try:
        ids = [engine.create("quote", {**example("quote"), "customer_name": f"客户{i}",
                                        "customer_mobile": f"1390000{i:04d}"}, "zhang").id
               for i in range(8)]
    finally:
        engine.close()
    env = {k: v for k, v in os.environ.items() if k != "DEALERDOCS_TODAY"}
    procs = [subprocess.Popen([dealerdocs_bin(), "fire", case_id, "issue", "--as", "zhang",
                               "--json"], cwd=dealer, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for case_id in ids]
    outcomes = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in outcomes]
    engine = Engine(load_config(dealer / "config.toml"), converter=converter)
    try:
        numbers = sorted(d["number"] for d in engine.documents(actor="zhao"))
        year = numbers[0].split("-")[1]
        assert numbers == [f"BJ-{year}-{n:06d}" for n in range(1, 9)]
        assert engine.verify() == []
    finally:
        engine.close()


def _seen(config: Path) -> dict:
    """What a store shows: its lists, documents and chain heads (for comparing copies)."""
    engine = Engine(load_config(config))
    try:
        with engine.store.snapshot() as tx:
            heads = {name: tx.chain_head(name) for name in ("audit", "register_log")}
            counters = tx.counters()
        return {"heads": heads, "counters": counters,
                "cases": engine.cases(actor="wang"),
                "documents": engine.documents(actor="zhao"),
                "problems": engine.verify()}
    finally:
        engine.close()


@pytest.mark.slow
def test_store_copy_round_trips_the_demo_store(dealer, postgres):
    demo = subprocess.run([sys.executable, str(ROOT / "examples" / "demo.py"), "--config",
                           str(dealer / "config.toml")], cwd=dealer, capture_output=True,
                          text=True, timeout=600)
    assert demo.returncode == 0, demo.stderr[-3000:]
    original = _seen(dealer / "config.toml")
    assert original["problems"] == [] and len(original["documents"]) >= 20

    url = postgres.new_database()
    copied = run_cli("store", "copy", "--to", url, "--json", cwd=dealer)
    result = json.loads(copied.stdout)
    assert result["heads"] == original["heads"] and result["documents"] == len(
        original["documents"])
    on_pg = dealer / "config-pg.toml"
    on_pg.write_text(f"store = {json.dumps(url)}\n"
                     + (dealer / "config.toml").read_text(encoding="utf-8"), encoding="utf-8")
    assert _seen(on_pg) == original

    # a second copy into the same database is refused, and changes nothing
    again = run_cli("store", "copy", "--to", url, cwd=dealer, check=False)
    assert again.returncode != 0 and "已有数据" in again.stderr

    back = run_cli("store", "copy", "--to", str(dealer / "back"), "--config", str(on_pg),
                   cwd=dealer)
    assert "已复制到" in back.stdout
    folder = dealer / "config-back.toml"
    folder.write_text((dealer / "config.toml").read_text(encoding="utf-8").replace(
        'store = "store"', f'store = {json.dumps(str(dealer / "back"))}'), encoding="utf-8")
    assert _seen(folder) == original


@pytest.mark.slow
def test_two_servers_on_one_database_behave_as_one(dealer, postgres):
    """Two `dealerdocs serve` processes on two ports against one database (the dealership's
    folder, with its keys and outbox, shared as servers would mount it): a token made on one
    works on the other, a quote issued on one is shown, numbered and verifiable on the other,
    and eight clients issuing at once across both get unique, gap-free numbers."""
    import threading

    import httpx
    from test_serve import _free_port, _wait_for
    from web_support import DEMO_PASSWORD

    use_database(dealer / "config.toml", postgres.new_database())
    ports = [_free_port(), _free_port()]
    servers = [subprocess.Popen([dealerdocs_bin(), "serve", "--port", str(port),
                                 "--tick-seconds", "0"], cwd=dealer, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for port in ports]
    try:
        for port, proc in zip(ports, servers):
            _wait_for(port, proc)
        a, b = (httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) for port in ports)
        token = a.post("/api/token", json={"login": "zhang", "password": DEMO_PASSWORD})
        h = {"Authorization": f"Bearer {token.json()['token']}"}
        assert b.get("/api/me", headers=h).json()["login"] == "zhang"   # sessions are shared

        case_id = a.post("/api/cases", headers=h, json={"workflow": "quote",
                                                        "data": example("quote")}).json()["id"]
        issued = a.post(f"/api/cases/{case_id}/fire/issue", headers=h).json()
        number = issued["documents"][0]["number"]
        shown = b.get(f"/api/cases/{case_id}", headers=h).json()
        assert shown["state"] == "issued" and shown["documents"][0]["number"] == number
        pdf = b.get(f"/api/documents/{number}/pdf", headers=h)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")

        ids = [a.post("/api/cases", headers=h, json={"workflow": "quote", "data": example(
                   "quote", customer_name=f"客户{i}", customer_mobile=f"1390000{i:04d}")}
                      ).json()["id"] for i in range(8)]
        answers: dict[str, int] = {}

        def issue(client, case):
            answers[case] = client.post(f"/api/cases/{case}/fire/issue", headers=h).status_code

        threads = [threading.Thread(target=issue, args=((a, b)[i % 2], case))
                   for i, case in enumerate(ids)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert answers == {case: 200 for case in ids}
        numbers = sorted(d["number"] for d in b.get("/api/documents", headers=h).json())
        year = numbers[0].split("-")[1]
        assert numbers == [f"BJ-{year}-{n:06d}" for n in range(1, 10)]
        a.close()
        b.close()
    finally:
        for proc in servers:
            proc.send_signal(signal.SIGTERM)
        for proc in servers:
            proc.communicate(timeout=60)
    verified = run_cli("verify", cwd=dealer)
    assert "校验通过：9 份文档" in verified.stdout
