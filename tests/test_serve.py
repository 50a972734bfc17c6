"""`dealerdocs serve` as the real process a store runs: it starts on its port, warns about
the demo passwords, signs a user in over HTTP, answers the API, and stops cleanly on SIGTERM."""
from __future__ import annotations

import re
import signal
import socket
import subprocess
import time

import httpx
import pytest

from helpers import dealerdocs_bin
from web_support import DEMO_PASSWORD

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, proc: subprocess.Popen, deadline: float = 60) -> None:
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"dealerdocs serve did not listen on {port} within {deadline} s")


def test_serve_runs_signs_in_answers_and_stops_on_sigterm(dealer):
    port = _free_port()
    proc = subprocess.Popen([dealerdocs_bin(), "serve", "--port", str(port)], cwd=dealer,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(port, proc)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, follow_redirects=True, timeout=30) as web:
            page = web.get("/login")
            csrf = re.search(r'name="_csrf" value="([^"]*)"', page.text).group(1)
            home = web.post("/login", data={"login": "zhang", "password": DEMO_PASSWORD,
                                            "_csrf": csrf, "next": "/"})
            assert home.status_code == 200 and "我的工作台" in home.text and "张伟" in home.text
            assert web.get("/cases").status_code == 200
        with httpx.Client(base_url=base, timeout=30) as api:
            token = api.post("/api/token", json={"login": "wang", "password": DEMO_PASSWORD})
            assert token.status_code == 200
            me = api.get("/api/me", headers={"Authorization": f"Bearer {token.json()['token']}"})
            assert me.json()["login"] == "wang" and me.json()["roles"] == ["sales_manager"]
            assert api.get("/api/me").status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    # a graceful stop: uvicorn finishes the app, then exits by the signal it got (it re-raises it)
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err
    assert f"http://127.0.0.1:{port}/" in out
    assert "演示密码" in err   # the demo passwords are named as demo-only at start


def _workers(pid: int) -> list[int]:
    """The worker processes uvicorn spawned under ``pid`` (not its resource tracker)."""
    from pathlib import Path

    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children
            if "multiprocessing.spawn" in Path(f"/proc/{c}/cmdline").read_bytes().decode(
                "utf-8", "replace")]


@pytest.mark.parametrize("store", ["folder", "postgresql"])
def test_workers_serve_as_one(dealer, store, request):
    """`dealerdocs serve --workers 2`: two worker processes on one port; a token made by one
    works on every request, failures counted in the store hold back every worker (none of
    them can be asked for fresh tries), and a failure made through any worker is counted
    there."""
    import json
    import time

    from engine import load_config
    from engine.store import open_store
    from engine.web.throttle import Throttle
    from helpers import use_database
    from processes import wait_for

    if store == "postgresql":
        use_database(dealer / "config.toml", request.getfixturevalue("postgres").new_database())
    port = _free_port()
    proc = subprocess.Popen([dealerdocs_bin(), "serve", "--port", str(port), "--workers", "2",
                             "--tick-seconds", "0"], cwd=dealer, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    book = open_store(load_config(dealer / "config.toml"))
    try:
        _wait_for(port, proc)
        wait_for(lambda: len(_workers(proc.pid)) == 2, "two worker processes")
        base = f"http://127.0.0.1:{port}"
        token = httpx.post(f"{base}/api/token", json={"login": "wang", "password": DEMO_PASSWORD},
                           timeout=60).json()["token"]
        for _ in range(8):   # a new connection each: the workers take turns as the kernel likes
            me = httpx.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token}"},
                           timeout=60)
            assert me.json()["login"] == "wang"

        # twelve failures of this address and login, counted in the store as any worker
        # would count them: the next try waits 300 s, whichever worker is asked
        pair = Throttle._keys("127.0.0.1", "wang")["pair"]
        with book.failures([pair], forget_before=0.0, capacity=100) as counts:
            counts[pair] = (12, time.time())
        for _ in range(8):
            refused = httpx.post(f"{base}/api/token", timeout=60,
                                 json={"login": "wang", "password": DEMO_PASSWORD})
            assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 60

        wrong = httpx.post(f"{base}/api/token", json={"login": "zhang", "password": "wrong"},
                           timeout=60)
        assert wrong.status_code == 401
        key = Throttle._keys("127.0.0.1", "zhang")["pair"]
        with book.failures([key], forget_before=0.0, capacity=100) as counts:
            assert counts[key][0] == 1 and json.loads(key) == ["pair", "127.0.0.1", "zhang"]
    finally:
        book.close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "2 个工作进程" in err
