"""Failed sign-ins counted in the store (engine/store/failures.py, issue 17): one behavioural
suite for the three books (in memory, the store folder, PostgreSQL), then the throttle of two
engines — and of two processes — on one store counting the same failures, and the workers of
one `dealerdocs serve --workers 2` reading them."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.store.failures import MemoryBook
from engine.web.throttle import Throttle

from helpers import ROOT, Backend


@pytest.fixture(params=["memory", "folder", "postgresql"])
def book(request, tmp_path):
    """Each book: one in memory, a store folder's, a database's."""
    if request.param == "memory":
        yield MemoryBook()
        return
    where = (str(tmp_path / "store") if request.param == "folder"
             else request.getfixturevalue("postgres").new_database())
    made = Backend(request.param, where)
    yield made.open()
    made.close()


def _seen(book, keys, forget_before=0.0, capacity=100):
    with book.failures(keys, forget_before=forget_before, capacity=capacity) as counts:
        return dict(counts)


def test_a_book_keeps_what_a_block_leaves_and_forgets_the_old(book):
    with book.failures(["a", "b"], forget_before=0.0, capacity=100) as counts:
        assert counts == {}
        counts["a"] = (1, 1000.0)
        counts["b"] = (2, 1005.5)
        counts["elsewhere"] = (9, 1000.0)   # not a key of this block: not kept
    assert _seen(book, ["a", "b", "elsewhere"]) == {"a": (1, 1000.0), "b": (2, 1005.5)}

    with book.failures(["a", "b"], forget_before=0.0, capacity=100) as counts:
        counts.pop("a")                       # taken out: forgotten
        counts["b"] = (3, 1010.25)
    assert _seen(book, ["a", "b"]) == {"b": (3, 1010.25)}

    with pytest.raises(RuntimeError):
        with book.failures(["b"], forget_before=0.0, capacity=100) as counts:
            counts["b"] = (4, 1020.0)
            raise RuntimeError("the block failed")
    assert _seen(book, ["b"]) == {"b": (3, 1010.25)}   # a failed block keeps nothing

    # a count whose last failure is before forget_before is gone, for good
    assert _seen(book, ["b"], forget_before=1010.0) == {"b": (3, 1010.25)}
    assert _seen(book, ["b"], forget_before=1011.0) == {}
    assert _seen(book, ["b"]) == {}


def test_a_book_keeps_the_most_recent_within_its_capacity(book):
    for i in range(8):
        with book.failures([f"k{i}"], forget_before=0.0, capacity=5) as counts:
            counts[f"k{i}"] = (1, 1000.0 + i)
    kept = _seen(book, [f"k{i}" for i in range(8)], capacity=5)
    assert kept == {f"k{i}": (1, 1000.0 + i) for i in range(3, 8)}


def test_two_engines_on_one_store_throttle_as_one(backend):
    """Two processes serving one store (here two store objects, as two workers or two servers
    would have): the failures made through one hold the other back, and a success through
    either takes them back."""
    now = [1000.0]
    first, second = (Throttle(clock=lambda: now[0], book=backend.open()) for _ in range(2))
    for throttle in (first, second, first):
        assert throttle.attempt("10.0.0.5", "wang").wait == 0   # three failures, shared
    assert second.attempt("10.0.0.5", "wang").wait == 1
    assert first.attempt("10.0.0.5", "wang").wait == 1
    assert second.attempt("10.0.0.6", "wang").wait == 0          # another address: at once
    second.succeeded("10.0.0.6", "wang")
    now[0] += 1
    assert first.attempt("10.0.0.5", "wang").wait == 0   # a second later: the 4th try
    first.succeeded("10.0.0.5", "wang")
    assert second.attempt("10.0.0.5", "wang").wait == 0


CHILD = """
import json, sys
sys.path[:0] = [{root!r}]
from engine.store import store_at
from engine.web.throttle import Throttle

store = store_at({where!r})
throttle = Throttle(clock=lambda: 1000.0, book=store)
print(json.dumps([throttle.attempt("10.0.0.5", "wang").wait for _ in range(2)]))
store.close()
"""


def test_failures_in_one_process_hold_back_another(backend):
    """Two child processes one after the other on one store, each making two attempts: the
    second process finds the first one's two failures, so its second attempt waits."""
    waits = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT),
                                                                    where=backend.where)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        waits.append(json.loads(done.stdout))
    assert waits == [[0, 0], [0, 1]]


def test_a_database_made_before_the_counts_is_given_their_table(postgres):
    """Tables of version 1 (made before failures were counted in the database) are brought
    to the current version on first use (2: the failures; 3: files in the database), and the
    counts work there."""
    import psycopg

    from engine.store.postgres import _SCHEMA, TABLES_VERSION, PostgresStore

    url = postgres.new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute("INSERT INTO dd_meta (key, value) VALUES ('tables', '1')")
    store = PostgresStore(url)
    try:
        assert _seen(store, ["a"]) == {}
        with store.failures(["a"], forget_before=0.0, capacity=10) as counts:
            counts["a"] = (1, 1000.0)
        assert _seen(store, ["a"]) == {"a": (1, 1000.0)}
    finally:
        store.close()
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT value FROM dd_meta WHERE key = 'tables'").fetchone()[0]
        files = conn.execute("SELECT to_regclass('dd_files')").fetchone()[0]
    assert found == TABLES_VERSION == 3 and files == "dd_files"
