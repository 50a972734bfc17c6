"""Shared fixtures: one warm LibreOffice pool for the whole run (a cold start costs >1 s a
document; the few tests about the cold converter ask for ``cold_converter``), a fresh
dealership folder per test made the way ``dealerdocs init`` makes it, and a clock tests can
move."""
from __future__ import annotations

import json
import shutil
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from engine import Engine, load_config
from engine.convert import SofficeConverter
from engine.warm import WarmConverter, find_office_python
from helpers import CST, ROOT, Clock, Day, keep_seal_key_beside, make_dealer_dir, run_cli, use_pool


@pytest.fixture(scope="session")
def cold_converter():
    """A cold ``soffice --convert-to pdf`` per call (its own profile)."""
    if not shutil.which("soffice"):
        pytest.fail("LibreOffice (soffice) is not installed: run `make setup` first")
    conv = SofficeConverter(timeout=180)
    yield conv
    conv.close()


@pytest.fixture(scope="session")
def warm_pool_dir(tmp_path_factory, cold_converter) -> Path:
    """A pool of two warm LibreOffice instances for the whole run; CLI commands of the test
    dealerships find it through ``[libreoffice] pool`` (see ``dealer``)."""
    if find_office_python() is None:
        pytest.fail("no Python with LibreOffice's uno module: run `make setup` (python3-uno)")
    folder = tmp_path_factory.mktemp("pool")
    pool = WarmConverter(folder, instances=2, timeout=180)
    pool.start()
    yield folder
    pool.stop()


@pytest.fixture(scope="session")
def converter(warm_pool_dir):
    """The converter engine tests use: the session's warm pool (the behavioural suite in
    test_warm.py and test_convert.py shows both converters make the same PDFs)."""
    return WarmConverter(warm_pool_dir, instances=2, timeout=180)


@pytest.fixture(scope="session")
def postgres():
    """The run's own PostgreSQL server (started on first use, stopped at the end)."""
    from postgres_server import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["folder", "postgresql"])
def backend(request, tmp_path):
    """The store's behavioural tests run on both backends: the embedded folder and a new
    database on the run's PostgreSQL server."""
    from helpers import Backend

    if request.param == "folder":
        made = Backend("folder", str(tmp_path / "store"))
    else:
        made = Backend("postgresql", request.getfixturevalue("postgres").new_database())
    yield made
    made.close()


@pytest.fixture
def config_path(tmp_path) -> Path:
    return make_dealer_dir(tmp_path / "dealer")


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 26, 10, 30, tzinfo=CST))


@pytest.fixture
def engine(config_path, converter, clock):
    eng = Engine(load_config(config_path), converter=converter, clock=clock)
    yield eng
    eng.close()


@pytest.fixture
def quote_data() -> dict:
    """examples/quote.json, parsed the way the CLI parses data files."""
    return json.loads((ROOT / "examples" / "quote.json").read_text(encoding="utf-8"),
                      parse_float=Decimal)


@pytest.fixture(scope="session")
def initialized(tmp_path_factory) -> Path:
    """The folder one real `dealerdocs init` (its own process, as a user runs it) made: every
    path in its config.toml is relative, so a copy of it is what init makes anywhere."""
    parent = tmp_path_factory.mktemp("init")
    run_cli("init", str(parent / "store"), cwd=parent, process=True)
    return parent / "store"


def initialized_copy(initialized: Path, tmp_path: Path) -> Path:
    """This test's own copy of :func:`initialized` (modes kept), its seal key in the test's
    folder: the same files as an `init` of its own, without a new Python for each test."""
    store = shutil.copytree(initialized, tmp_path / "store")
    keep_seal_key_beside(store / "config.toml")
    return store


@pytest.fixture
def dealer(tmp_path, initialized, warm_pool_dir) -> Path:
    """A dealership folder made by `dealerdocs init` (for tests that drive the CLI); its
    commands convert on the session's warm pool."""
    store = initialized_copy(initialized, tmp_path)
    use_pool(store / "config.toml", warm_pool_dir)
    return store


@pytest.fixture
def cold_dealer(tmp_path, initialized) -> Path:
    """A dealership folder as `dealerdocs init` makes it, with no warm pool: its commands
    start LibreOffice cold, or a pool of their own (`dealerdocs converter start`)."""
    return initialized_copy(initialized, tmp_path)


@pytest.fixture
def today() -> Day:
    """This test's day (helpers.Day): its dates, the year in its numbers, and the day of every
    CLI call it makes, so that a run across midnight cannot mix two days."""
    return Day.now()


@pytest.fixture
def cli(today):
    """``dealerdocs … --json`` on this test's day."""
    return today.cli


@pytest.fixture
def refused(today):
    """The one-line refusal of a command, on this test's day."""
    return today.refused
