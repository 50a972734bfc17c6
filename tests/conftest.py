"""Shared fixtures: one LibreOffice converter for the whole run (a cold start costs >1 s),
a fresh dealership folder per test made the way ``dealerdocs init`` makes it, and a clock
tests can move."""
from __future__ import annotations

import json
import shutil
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from engine import Engine, load_config
from engine.convert import SofficeConverter
from helpers import CST, ROOT, Clock, keep_seal_key_beside, make_dealer_dir, run_cli


@pytest.fixture(scope="session")
def converter():
    if not shutil.which("soffice"):
        pytest.fail("LibreOffice (soffice) is not installed: run `make setup` first")
    conv = SofficeConverter(timeout=180)
    yield conv
    conv.close()


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




@pytest.fixture
def dealer(tmp_path) -> Path:
    """A dealership folder made by `dealerdocs init` (for tests that drive the CLI)."""
    run_cli("init", str(tmp_path / "store"), cwd=tmp_path)
    keep_seal_key_beside(tmp_path / "store" / "config.toml")
    return tmp_path / "store"
